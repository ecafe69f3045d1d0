"""Neurons, backend choice, ANN twin, firing-rate monitor and the registries."""
import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, layer, neuron, surrogate

import restoration
from restoration.registry import Registry
from restoration.spiking import LIF, OLIF, PLIF, FiringRateMonitor, resolve_backend, set_backend, to_ann
from restoration.spiking.backend import cpp_available


def lif_reference(x_seq, tau, v_th, decay_input):
    """Hard-reset (v_reset = 0) multi-step LIF written from its definition."""
    v = torch.zeros_like(x_seq[0])
    out = []
    for x in x_seq:
        v = v + (x - v) / tau if decay_input else v * (1 - 1 / tau) + x
        s = (v >= v_th).to(x)
        v = v * (1 - s)
        out.append(s)
    return torch.stack(out)


@pytest.mark.parametrize("decay_input", [True, False])
def test_lif_matches_definition(decay_input):
    x = torch.rand(6, 2, 3, 5, 4) * 1.5
    node = LIF(tau=2.0, v_threshold=0.15 if not decay_input else 0.5, decay_input=decay_input)
    got = node(x)
    want = lif_reference(x, 2.0, node.v_threshold, decay_input)
    torch.testing.assert_close(got, want)
    assert node.backend == "torch"  # CPU input: 'auto' resolved to torch
    functional.reset_net(node)
    torch.testing.assert_close(node(x), want)  # after a reset, the same input gives the same output


def test_surrogate_gradient_flows():
    x = (torch.rand(4, 2, 8) * 2).requires_grad_(True)
    for surr in ("atan", "sigmoid"):
        node = LIF(surrogate_function=surr)
        node(x).sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        x.grad = None
    with pytest.raises(ValueError, match="unknown surrogate"):
        LIF(surrogate_function="relu")


def test_plif_learns_tau():
    node = PLIF(init_tau=2.0)
    x = torch.rand(4, 3, 8).requires_grad_(True)
    node(x).sum().backward()
    assert node.w.grad is not None


def test_backend_resolution():
    cpu = torch.zeros(1)
    # 'auto' on the CPU: the C++ kernels for float32/float64 where they could be built
    assert resolve_backend("auto", cpu) == ("cpp" if cpp_available() else "torch")
    assert resolve_backend("auto", cpu.half()) == "torch"
    assert resolve_backend("torch", cpu) == "torch"
    with pytest.raises(ValueError, match="unknown spiking backend"):
        resolve_backend("numba", cpu)
    with pytest.raises(ValueError, match="unknown spiking backend"):
        LIF(backend="gpu")


def test_set_backend_reaches_every_neuron():
    net = nn.Sequential(layer.Conv2d(3, 4, 3, step_mode="m"), LIF(), nn.Sequential(PLIF(), OLIF()),
                        neuron.IFNode(step_mode="m"))
    set_backend(net, "torch")
    assert [m.requested_backend for m in net.modules() if hasattr(m, "requested_backend")] == ["torch"] * 3
    assert net[3].backend == "torch"


def make_spiking_net():
    return nn.Sequential(
        layer.Conv2d(3, 8, 3, padding=1, step_mode="m"), LIF(),
        layer.Conv2d(8, 8, 3, padding=1, step_mode="m"), PLIF(),
        layer.SeqToANNContainer(OLIF(lif=4, dim=2)),
        layer.Conv2d(8, 3, 1, step_mode="m"),
    )


def test_to_ann_twin():
    net = make_spiking_net()
    twin = to_ann(net)
    assert not any(isinstance(m, (neuron.BaseNode, OLIF)) for m in twin.modules())
    assert sum(isinstance(m, nn.ReLU) for m in twin.modules()) == 3
    neuron_params = {n for n, _ in net.named_parameters() if n.endswith((".w", ".tau", ".Vth"))}
    assert neuron_params == {"3.w", "4.0.tau", "4.0.Vth"}
    want = {n: p for n, p in net.named_parameters() if n not in neuron_params}
    got = dict(twin.named_parameters())
    assert set(got) == set(want)
    for n in want:
        torch.testing.assert_close(got[n], want[n])
        assert got[n].data_ptr() != want[n].data_ptr()  # copied, the original is untouched
    # the original still spikes
    assert isinstance(net[1], LIF)
    x = torch.rand(2, 1, 3, 8, 8)
    assert twin(x).shape == net(x).shape
    with pytest.raises(ValueError, match="no spiking neuron"):
        to_ann(twin)


def test_to_ann_activation_choice_and_in_place():
    net = make_spiking_net()
    twin = to_ann(net, activation=nn.Identity, copy_model=False)
    assert twin is net and isinstance(net[1], nn.Identity)
    net2 = make_spiking_net()
    twin2 = to_ann(net2, activation=nn.LeakyReLU(0.2))
    acts = [m for m in twin2.modules() if isinstance(m, nn.LeakyReLU)]
    assert len(acts) == 3 and len({id(a) for a in acts}) == 3


def test_firing_rate_monitor_counts_spikes():
    node = LIF(tau=2.0, v_threshold=0.5)
    # constant input 1.0: v = 0.5 at t0 -> spike (>= threshold) every step
    x = torch.ones(4, 2, 10)
    olif_layer = OLIF(lif=2, dim=3, init_vth=0.25, init_tau=0.25)
    img = torch.tensor([[[[1.0, 0.0, 1.0, 0.0]]]])  # spikes at positions 0 and 2 -> rate 0.5
    net = nn.ModuleDict({"lif": node, "olif": olif_layer})
    with FiringRateMonitor(net) as mon:
        net["lif"](x)
        net["olif"](img)
    rates = mon.rates()
    assert rates["lif"] == pytest.approx(1.0)
    assert rates["olif"] == pytest.approx(0.5)
    # zero input: nothing fires
    functional.reset_net(node)
    mon.reset()
    with mon:
        node(torch.zeros(4, 2, 10))
    assert mon.rates()["lif"] == 0.0
    assert not node._forward_hooks  # hooks removed on exit


def test_registry_errors_and_plugins():
    reg = Registry("widget")

    @reg.register("round_widget")
    def make():
        return "round"

    assert reg.get("round_widget")() == "round"
    with pytest.raises(KeyError, match="Did you mean 'round_widget'"):
        reg.get("round_widgt")
    with pytest.raises(KeyError, match="already registered"):
        reg.register("round_widget", obj=lambda: None)
    with pytest.raises(ValueError, match="lower snake case"):
        reg.register("RoundWidget", obj=lambda: None)
    with pytest.raises(KeyError, match="Registered models"):
        restoration.build_model("no_such_model")


# --- The C++ CPU path of the multi-step LIF/PLIF (cpu_kernels.cpp) ----------------------

import itertools  # noqa: E402

from restoration.spiking import cpu_kernels  # noqa: E402

cpp = pytest.mark.skipif(not cpu_kernels.available(), reason="the C++ CPU kernels could not be built here")

CONFIGS = list(itertools.product(("lif", "plif"), (True, False), (0.0, None, -0.3), ("atan", "sigmoid"),
                                 (False, True)))


def _run_node(backend, kind, decay_input, v_reset, surr, detach, training, x, g, dtype):
    common = dict(v_threshold=0.4, v_reset=v_reset, decay_input=decay_input, surrogate_function=surr,
                  detach_reset=detach, backend=backend)
    node = (LIF(tau=2.0, **common) if kind == "lif" else PLIF(init_tau=1.7, **common)).to(dtype)
    node.train(training)
    xx = x.clone().requires_grad_(True)
    s1 = node(xx)
    s2 = node(xx * 0.5)  # the second call starts from the membrane potential the first left
    v = node.v
    if training:
        ((s1 * g).sum() + (s2 * g).sum() + v.sum()).backward()
    return s1, s2, v.detach(), xx.grad, node.w.grad if kind == "plif" else None


@cpp
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("kind,decay_input,v_reset,surr,detach", CONFIGS)
def test_cpp_lif_equals_spikingjelly_torch(kind, decay_input, v_reset, surr, detach, training, dtype):
    gen = torch.Generator().manual_seed(7)
    x = (torch.rand(5, 3, 7, 9, generator=gen, dtype=torch.float64) * 1.6 - 0.2).to(dtype)
    g = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(dtype)
    ref = _run_node("torch", kind, decay_input, v_reset, surr, detach, training, x, g, dtype)
    got = _run_node("cpp", kind, decay_input, v_reset, surr, detach, training, x, g, dtype)
    for a, b in zip(ref[:3], got[:3]):  # spikes of both calls and the final potential: bit-identical
        assert torch.equal(a, b)
    if training:
        tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(got[3], ref[3], **tol)
        if kind == "plif":
            torch.testing.assert_close(got[4], ref[4], **tol)


@cpp
@pytest.mark.parametrize("decay_input", [True, False])
def test_cpp_lif_threshold_boundary(decay_input):
    """A membrane potential exactly at the threshold fires (h - vth >= 0), on both paths."""
    vth = 0.5
    # decay_input: h = v + (x - v) / 2, so x = 1.0 puts h exactly on vth from rest; else x = 0.5
    on = 1.0 if decay_input else 0.5
    x = torch.tensor([on, 0.0, on, on / 2, on / 4]).reshape(5, 1).repeat(1, 6)
    x[:, ::2] *= 0.5  # half the neurons stay just below
    outs = []
    for backend in ("torch", "cpp"):
        node = LIF(tau=2.0, v_threshold=vth, decay_input=decay_input, backend=backend)
        outs.append(node(x))
    assert torch.equal(outs[0], outs[1])
    assert outs[1][0, 1] == 1.0 and outs[1][0, 0] == 0.0


@cpp
def test_cpp_lif_reset_net_and_ann_twin():
    net = make_spiking_net()
    x = torch.rand(3, 2, 3, 8, 8)
    y1 = net(x)
    functional.reset_net(net)
    assert isinstance(net[1].v, float)  # reset_net clears what the C++ path left in v
    torch.testing.assert_close(net(x), y1)
    functional.reset_net(net)
    set_backend(net, "torch")
    torch.testing.assert_close(net(x), y1)
    functional.reset_net(net)
    twin = to_ann(net)
    assert not any(isinstance(m, (neuron.BaseNode, OLIF)) for m in twin.modules())


@cpp
def test_cpp_lif_falls_back_for_what_it_does_not_cover():
    node = LIF(surrogate_function=surrogate.PiecewiseQuadratic())  # no C++ surrogate: the torch path
    x = torch.rand(4, 2, 5)
    assert not cpu_kernels.supports(node, x)
    assert node(x).shape == x.shape
    with pytest.raises(ValueError, match="backend 'cpp' does not cover"):
        LIF(surrogate_function=surrogate.PiecewiseQuadratic(), backend="cpp")(x)
    store = LIF(store_v_seq=True)
    store(x)
    assert store.v_seq.shape == x.shape


# --- SpikingJelly's CuPy argument check under NumPy >= 1.24 (sj_compat.py) -------------

def test_cupy_argument_check_works_without_np_int(monkeypatch):
    """The pinned SpikingJelly checks cupy int arguments with ``np.int`` (gone since NumPy
    1.24): every CUDA training step failed until sj_compat replaced the check. Checked here
    with a stand-in for cupy.ndarray, so it runs without a GPU."""
    import types

    import numpy as np
    from spikingjelly.activation_based.auto_cuda import base

    import restoration.spiking.neurons  # noqa: F401  (applies the fix on import)

    class FakeCupyArray:
        def __init__(self, dtype):
            self.dtype = np.dtype(dtype)

    monkeypatch.setattr(base, "cupy", types.SimpleNamespace(ndarray=FakeCupyArray))
    kernel = types.SimpleNamespace(cparams={"numel": "const int &", "x_seq": "const float *"})
    check = base.CKernel.check_ctypes
    if not hasattr(np, "int"):
        assert check.__module__ == "restoration.spiking.sj_compat"
    check(kernel, {"numel": FakeCupyArray(np.int32), "x_seq": torch.zeros(3)})
    with pytest.raises(AssertionError):  # a float where the kernel takes an int is still caught
        check(kernel, {"numel": FakeCupyArray(np.float32), "x_seq": torch.zeros(3)})
    with pytest.raises(AssertionError):
        check(kernel, {"numel": FakeCupyArray(np.int32), "x_seq": torch.zeros(3, dtype=torch.half)})
