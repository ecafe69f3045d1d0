"""The CUDA paths against the torch path, on a GPU only (``python -m pytest -m cuda``).

The OLIF CuPy kernel has its own tests in test_olif.py. Here: SpikingJelly's CuPy
multi-step LIF/PLIF (what ``backend='auto'`` picks on CUDA) against its torch backend,
odd sizes and gradients included, and every shipped SNN's forward and backward on CUDA
with the auto backend against the same weights with the torch neurons.
"""
import math

import pytest
import torch
from spikingjelly.activation_based import functional

from restoration.registry import build_model
from restoration.spiking import LIF, PLIF, cupy_available, set_backend

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not (torch.cuda.is_available() and cupy_available()),
                                 reason="needs CUDA and cupy")]


@pytest.mark.parametrize("kind", ["lif", "plif"])
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("v_reset", [0.0, None])
@pytest.mark.parametrize("detach_reset", [False, True])
@pytest.mark.parametrize("shape", [(4, 2, 3, 17, 9), (1, 3, 5, 7), (6, 1, 33)])
def test_cupy_lif_matches_torch(kind, decay_input, v_reset, detach_reset, shape):
    gen = torch.Generator().manual_seed(len(shape) * 10 + int(decay_input))
    x = (torch.randn(shape, generator=gen) * 1.5).cuda()
    g = torch.randn(shape, generator=gen).cuda()
    results = {}
    for backend in ("torch", "cupy"):
        kw = dict(v_threshold=1.0 if decay_input else 0.5, v_reset=v_reset, decay_input=decay_input,
                  detach_reset=detach_reset, backend=backend)
        node = (LIF(tau=2.0, **kw) if kind == "lif" else PLIF(init_tau=1.7, **kw)).cuda()
        xx = x.clone().requires_grad_(True)
        y = node(xx)
        assert node._backend == backend  # the forced backend really ran
        (y * g).sum().backward()
        tau_grad = node.w.grad.clone() if kind == "plif" else None
        functional.reset_net(node)
        results[backend] = (y, xx.grad, tau_grad)
    (y_t, gx_t, gw_t), (y_c, gx_c, gw_c) = results["torch"], results["cupy"]
    # float32 rounding may flip a spike that sits on the threshold: allow a handful.
    assert (y_t != y_c).float().mean().item() < 1e-3
    if (y_t == y_c).all():
        torch.testing.assert_close(gx_c, gx_t, rtol=1e-4, atol=1e-5)
        if kind == "plif":
            torch.testing.assert_close(gw_c, gw_t, rtol=1e-3, atol=1e-5)
    else:  # a flipped spike changes the gradient near it only
        assert torch.nn.functional.cosine_similarity(gx_c.flatten(), gx_t.flatten(), dim=0) > 0.999


def test_auto_picks_cupy_for_float32_and_torch_for_float64():
    node = LIF().cuda()
    node(torch.randn(2, 1, 4, device="cuda"))
    assert node._backend == "cupy"
    functional.reset_net(node)
    node(torch.randn(2, 1, 4, device="cuda", dtype=torch.float64))
    assert node._backend == "torch"  # SpikingJelly's CuPy kernels cover float and half only


def _run(model, x, backend):
    set_backend(model, backend)
    model.zero_grad(set_to_none=True)
    torch.manual_seed(0)
    if x.dim() == 5:  # stereo pair: a noiseless channel keeps the comparison deterministic
        out = model(x, snr_db=math.inf)["recon"]
    else:
        out = model(x)
    out.float().square().mean().backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), grads


@pytest.mark.parametrize("name,shape", [("esdnet_tiny", (2, 3, 45, 38)), ("dehazesnn_s", (2, 3, 37, 30)),
                                        ("dhf_jscc_snn", (1, 2, 3, 40, 52))])
def test_snn_on_cuda_auto_matches_torch_neurons(name, shape):
    torch.manual_seed(1)
    model = build_model(name).cuda().train()
    x = torch.rand(shape, generator=torch.Generator().manual_seed(2)).cuda()
    out_t, grads_t = _run(model, x, "torch")
    out_a, grads_a = _run(model, x, "auto")
    assert out_a.shape == out_t.shape and torch.isfinite(out_a).all()
    # a spike flipped at the threshold changes a few outputs: compare in aggregate
    rel = (out_a - out_t).norm() / out_t.norm()
    assert rel < 1e-3, f"{name}: output differs by {rel:.2e} (relative)"
    assert grads_a.keys() == grads_t.keys()
    flat_t = torch.cat([g.flatten() for g in grads_t.values()])
    flat_a = torch.cat([grads_a[k].flatten() for k in grads_t])
    cos = torch.nn.functional.cosine_similarity(flat_a, flat_t, dim=0)
    assert cos > 0.999, f"{name}: gradients differ (cosine {cos:.5f})"
