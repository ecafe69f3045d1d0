"""Dehazing models: DehazeSNN S/M/L (+ ANN twins), AECR-Net, its deformable conv,
FastDeconv and contrastive loss, and the loader of the authors' checkpoints."""
import json
import math
import os
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from restoration import build_model
from restoration.models import load_official
from restoration.models._layers import DropPath
from restoration.losses.contrast import VGG19_TAPS, ContrastLoss, VGG19Features
from restoration.models.aecrnet import DCN, FastDeconv, deform_conv2d, isqrt_newton_schulz
from restoration.spiking import OLIF

torch.set_num_threads(1)
FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def fixture(name):
    with open(os.path.join(FIXTURES, f"{name}_keys.json")) as f:
        return json.load(f)


def keys_and_shapes(model):
    return [[k, list(v.shape)] for k, v in model.state_dict().items()]


def perturbed(model, seed=0):
    """Move every parameter and buffer off its initial value, so a load can be checked."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=g) * 0.01)
    return model


# --------------------------------------------------------------------------------------
# Parameter counts and names against the authors' implementations
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, count", [("dehazesnn_s", 1_226_819), ("dehazesnn_m", 2_697_203),
                                         ("dehazesnn_l", 4_751_315), ("aecrnet", 2_614_229)])
def test_parameter_counts_and_names_equal_the_official_ones(name, count):
    model = build_model(name)
    official = fixture(name)
    assert n_params(model) == count == official["num_params"]
    # same names, same shapes, same order as the authors' state_dict()
    assert keys_and_shapes(model) == official["keys"]


def test_dehazesnn_uses_the_shared_olif_with_the_paper_settings():
    model = build_model("dehazesnn_s")
    neurons = [m for m in model.modules() if isinstance(m, OLIF)]
    assert len(neurons) == 2 * sum((2, 4, 8, 4, 2))
    assert {(m.lif, m.tau.item(), m.Vth.item()) for m in neurons} == {(4, 0.25, 0.25)}
    assert sorted({m.dim for m in neurons}) == [2, 3]


def test_keyword_overrides_reach_the_model():
    model = build_model("dehazesnn_s", lif=2, lif_init_tau=0.5, drop_path_rate=0.0)
    neurons = [m for m in model.modules() if isinstance(m, OLIF)]
    assert {(m.lif, m.tau.item()) for m in neurons} == {(2, 0.5)}
    assert not any(isinstance(m, DropPath) for m in model.modules())
    assert n_params(build_model("dehazesnn_s", depths=(1, 1, 1, 1, 1))) < 1_226_819
    with pytest.raises(ValueError, match="multiples of 24"):
        build_model("dehazesnn_s", embed_dims=(16, 32, 64, 32, 16))


# --------------------------------------------------------------------------------------
# Forward / backward / shapes
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dehazesnn_s", "dehazesnn_s_ann", "aecrnet"])
def test_forward_backward_64(name):
    torch.manual_seed(0)
    model = build_model(name)
    x = torch.rand(1, 3, 64, 64)
    y = model(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    y.square().mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    if name == "dehazesnn_s":  # the neurons' tau and Vth learn
        assert any(p.grad.abs().item() > 0 for n, p in model.named_parameters() if n.endswith(".tau"))
        assert any(p.grad.abs().item() > 0 for n, p in model.named_parameters() if n.endswith(".Vth"))
    if name == "aecrnet":  # offsets start at zero but do get a gradient
        assert model.dcn_block.dcn.conv_offset_mask.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ["dehazesnn_s", "dehazesnn_s_ann", "aecrnet"])
@pytest.mark.parametrize("size", [(37, 53), (30, 18)])
def test_odd_sizes_keep_the_input_size(name, size):
    model = build_model(name).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 3, *size)).shape == (2, 3, *size)


def test_repeated_forwards_are_identical():
    """No membrane state survives a forward: two passes over one input agree exactly."""
    model = build_model("dehazesnn_s").eval()
    x = torch.rand(1, 3, 32, 36)
    with torch.no_grad():
        a, b = model(x), model(x)
    assert torch.equal(a, b)


def test_global_residual_adds_the_input_and_adds_no_parameter():
    plain = build_model("dehazesnn_s").eval()
    resid = build_model("dehazesnn_s", global_residual=True).eval()
    resid.load_state_dict(plain.state_dict(), strict=True)          # same tensors: authors' files load
    x = torch.rand(1, 3, 21, 30)                                     # odd size: padded, then cropped
    with torch.no_grad():
        # the input is added in the network's [-1, 1] space: (y + 2x - 1) / 2 + 1/2 = plain - 1/2 + x
        assert torch.allclose(resid(x), plain(x) - 0.5 + x, atol=1e-5)
    assert build_model("dehazesnn_s_ann", global_residual=True).global_residual    # the twin keeps it
    # a network whose last conv outputs zero leaves the image untouched
    last = [m for m in resid.patch_unembed.modules() if isinstance(m, nn.Conv2d)][-1]
    nn.init.zeros_(last.weight), nn.init.zeros_(last.bias)
    with torch.no_grad():
        assert torch.allclose(resid(x), x, atol=1e-6)


def test_aecrnet_mix_and_output_range():
    model = build_model("aecrnet")
    assert torch.sigmoid(model.mix1.w).item() == pytest.approx(1 / (1 + math.e))
    assert torch.sigmoid(model.mix2.w).item() == pytest.approx(1 / (1 + math.exp(0.6)))
    with torch.no_grad():
        y = model(torch.rand(1, 3, 16, 16) * 50)
    assert y.abs().max() <= 1  # Tanh


def test_drop_path_drops_whole_samples_and_keeps_the_mean():
    dp = DropPath(0.5)
    x = torch.ones(400, 2, 3, 3)
    y = dp(x)
    per_sample = y.flatten(1)
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert (per_sample.min(1).values == per_sample.max(1).values).all()  # all or nothing per sample
    assert 0.35 < (per_sample[:, 0] > 0).float().mean() < 0.65
    assert torch.equal(dp.eval()(x), x)


# --------------------------------------------------------------------------------------
# ANN twins
# --------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", ["s", "m", "l"])
def test_ann_twin_has_no_neuron_and_the_same_other_parameters(size):
    torch.manual_seed(3)
    snn = build_model(f"dehazesnn_{size}")
    torch.manual_seed(3)
    twin = build_model(f"dehazesnn_{size}_ann")
    n_olif = sum(isinstance(m, OLIF) for m in snn.modules())
    relus = lambda m: sum(isinstance(c, nn.ReLU) for c in m.modules())  # noqa: E731
    assert not any(isinstance(m, OLIF) for m in twin.modules())
    assert relus(twin) == relus(snn) + n_olif
    snn_sd, twin_sd = snn.state_dict(), twin.state_dict()
    neuron_keys = [k for k in snn_sd if k.endswith((".tau", ".Vth"))]
    assert len(neuron_keys) == 2 * n_olif
    assert list(twin_sd) == [k for k in snn_sd if k not in neuron_keys]
    assert all(torch.equal(twin_sd[k], snn_sd[k]) for k in twin_sd)


# --------------------------------------------------------------------------------------
# load_official: the authors' checkpoint formats
# --------------------------------------------------------------------------------------
class NotAllowed:  # a pickled object that weights_only loading must refuse
    pass


@pytest.fixture(scope="module")
def trained_s():
    return perturbed(build_model("dehazesnn_s"))


def _formats(sd):
    module = {"module." + k: v for k, v in sd.items()}
    return {
        "bare": sd,
        "bare_module": module,
        # DehazeSNN's train.py: DataParallel weights next to optimiser / scheduler states
        "dehazesnn_style": {"state_dict": module, "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]},
                            "lr_scheduler": {"last_epoch": 3}, "epoch": 3},
        # AECR-Net's training script: under 'model', next to numpy metric values
        "aecrnet_style": {"model": module, "step": 10, "max_psnr": np.float64(30.5),
                          "psnrs": [np.float64(29.0), np.float64(30.5)], "losses": [0.1, 0.05]},
        "params": {"params": sd},
        "params_ema": {"params_ema": sd, "params": {k: torch.zeros_like(v) for k, v in sd.items()}},
        "net": {"net": {"_orig_mod." + k: v for k, v in sd.items()}},
    }


@pytest.mark.parametrize("fmt", ["bare", "bare_module", "dehazesnn_style", "aecrnet_style", "params",
                                 "params_ema", "net"])
def test_load_official_reads_every_format(tmp_path, trained_s, fmt):
    path = tmp_path / f"{fmt}.pth"
    torch.save(_formats(trained_s.state_dict())[fmt], path)
    loaded = load_official("dehazesnn_s", path)
    ref = trained_s.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in loaded.state_dict().items())


def test_load_official_aecrnet(tmp_path):
    model = perturbed(build_model("aecrnet"))
    path = tmp_path / "aecr.pk"
    torch.save({"model": {"module." + k: v for k, v in model.state_dict().items()}, "optimizer": {}}, path)
    loaded = load_official("aecrnet", str(path))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_load_official_names_the_file_and_the_keys_that_do_not_fit(tmp_path, trained_s):
    path = tmp_path / "small.pth"
    torch.save({"state_dict": trained_s.state_dict()}, path)
    with pytest.raises(ValueError) as err:
        load_official("dehazesnn_m", path)
    msg = str(err.value)
    assert str(path) in msg and "dehazesnn_m" in msg
    assert "missing keys: layer1.blocks.2." in msg  # S has 2 blocks in stage 1, M has 8
    assert "load_official('dehazesnn_s'" in msg  # and it says which model the weights fit

    sd = dict(trained_s.state_dict())
    sd["extra.weight"] = torch.zeros(1)
    del sd["skip1.bias"]
    sd["skip2.weight"] = torch.zeros(1, 2)
    torch.save(sd, path)
    with pytest.raises(ValueError) as err:
        load_official("dehazesnn_s", path)
    msg = str(err.value)
    assert "1 missing keys: skip1.bias" in msg and "1 unexpected keys: extra.weight" in msg
    assert "skip2.weight: file (1, 2) vs model (48, 48, 1, 1)" in msg


def test_load_official_user_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        load_official("dehazesnn_s", tmp_path / "nowhere.pth")
    path = tmp_path / "no_weights.pth"
    torch.save({"optimizer": {}, "epoch": 1}, path)
    with pytest.raises(ValueError, match="no state dict.*'state_dict'"):
        load_official("dehazesnn_s", path)
    torch.save({"state_dict": NotAllowed()}, path)
    with pytest.raises(ValueError, match="weights_only=False"):
        load_official("dehazesnn_s", path)


# --------------------------------------------------------------------------------------
# Deformable convolution against a per-pixel loop
# --------------------------------------------------------------------------------------
def deform_conv_loop(x, offset, mask, weight, bias, stride, padding, dilation):
    """Per output pixel, per kernel tap: DCNv2's sampling rule written out (bilinear from
    the four neighbours; a neighbour outside the image counts 0; a point with
    y <= -1, x <= -1, y >= H or x >= W samples 0). Autograd gives the reference gradients."""
    n, c, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    ho, wo = offset.shape[2:]
    k = kh * kw
    groups = offset.shape[1] // (2 * k)
    cg = c // groups
    outs = []
    for b in range(n):
        pixels = []
        for yo in range(ho):
            for xo in range(wo):
                col = []
                for gi in range(groups):
                    img = x[b, gi * cg:(gi + 1) * cg]
                    for i in range(kh):
                        for j in range(kw):
                            tap = i * kw + j
                            py = yo * stride[0] - padding[0] + i * dilation[0] + offset[b, gi * 2 * k + 2 * tap, yo, xo]
                            px = xo * stride[1] - padding[1] + j * dilation[1] + offset[b, gi * 2 * k + 2 * tap + 1,
                                                                                        yo, xo]
                            val = torch.zeros(cg, dtype=x.dtype)
                            fy, fx = py.item(), px.item()
                            if -1 < fy < h and -1 < fx < w:
                                y0, x0 = math.floor(fy), math.floor(fx)
                                ly, lx = py - y0, px - x0
                                for yy, xx, wgt in ((y0, x0, (1 - ly) * (1 - lx)), (y0, x0 + 1, (1 - ly) * lx),
                                                    (y0 + 1, x0, ly * (1 - lx)), (y0 + 1, x0 + 1, ly * lx)):
                                    if 0 <= yy < h and 0 <= xx < w:
                                        val = val + wgt * img[:, yy, xx]
                            col.append(val * mask[b, gi * k + tap, yo, xo])
                # col: groups*k vectors of cg channels, ordered (group, tap); reorder to (channel, tap)
                cols = torch.stack(col).view(groups, k, cg).permute(0, 2, 1).reshape(c * k)
                pixels.append(weight.reshape(c_out, c * k) @ cols + bias)
        outs.append(torch.stack(pixels, dim=1).view(c_out, ho, wo))
    return torch.stack(outs)


@pytest.mark.parametrize("cfg", [
    dict(n=2, c=4, groups=2, hw=(5, 6), k=(3, 3), stride=(1, 1), padding=(1, 1), dilation=(1, 1)),
    dict(n=1, c=3, groups=1, hw=(7, 8), k=(3, 2), stride=(2, 1), padding=(2, 1), dilation=(2, 1)),
])
def test_deform_conv_matches_the_per_pixel_loop(cfg):
    g = torch.Generator().manual_seed(1)
    dt = torch.float64
    n, c, (h, w), (kh, kw) = cfg["n"], cfg["c"], cfg["hw"], cfg["k"]
    s, p, d = cfg["stride"], cfg["padding"], cfg["dilation"]
    ho = (h + 2 * p[0] - d[0] * (kh - 1) - 1) // s[0] + 1
    wo = (w + 2 * p[1] - d[1] * (kw - 1) - 1) // s[1] + 1
    k = kh * kw

    def leaf(*shape, scale=1.0, shift=0.0):
        return (torch.randn(*shape, generator=g, dtype=dt) * scale + shift).requires_grad_()

    x = leaf(n, c, h, w)
    offset = leaf(n, 2 * cfg["groups"] * k, ho, wo, scale=1.5)  # some samples land outside
    mask = torch.rand(n, cfg["groups"] * k, ho, wo, generator=g, dtype=dt).requires_grad_()
    weight, bias = leaf(3, c, kh, kw), leaf(3)
    inputs = (x, offset, mask, weight, bias)
    fast = deform_conv2d(*inputs, stride=s, padding=p, dilation=d)
    ref = deform_conv_loop(*inputs, s, p, d)
    assert fast.shape == (n, 3, ho, wo)
    torch.testing.assert_close(fast, ref, rtol=1e-10, atol=1e-10)
    up = torch.randn(fast.shape, generator=g, dtype=dt)
    grads_fast = torch.autograd.grad((fast * up).sum(), inputs)
    grads_ref = torch.autograd.grad((ref * up).sum(), inputs)
    for name, a, b in zip(("x", "offset", "mask", "weight", "bias"), grads_fast, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=lambda m: f"grad {name}: {m}")


@pytest.mark.parametrize("stride, padding, dilation, hw", [(1, 1, 1, (9, 13)), (2, 0, 1, (11, 8)), (1, 2, 2, (7, 10))])
def test_deform_conv_with_zero_offsets_is_an_ordinary_conv(stride, padding, dilation, hw):
    torch.manual_seed(0)
    x, weight, bias = torch.randn(2, 4, *hw), torch.randn(5, 4, 3, 3), torch.randn(5)
    ref = F.conv2d(x, weight, bias, stride, padding, dilation)
    offset = torch.zeros(2, 18, *ref.shape[2:])
    ones = torch.ones(2, 9, *ref.shape[2:])
    torch.testing.assert_close(deform_conv2d(x, offset, ones, weight, bias, stride, padding, dilation), ref)
    # mask 0.5 (a zero-initialised mask logit): half the conv, full bias
    torch.testing.assert_close(deform_conv2d(x, offset, ones / 2, weight, bias, stride, padding, dilation),
                               F.conv2d(x, weight / 2, bias, stride, padding, dilation))


def test_dcn_module_starts_as_half_a_conv():
    torch.manual_seed(0)
    dcn = DCN(4, 6)
    with torch.no_grad():
        dcn.bias.normal_()
    x = torch.randn(1, 4, 9, 7)
    torch.testing.assert_close(dcn(x), F.conv2d(x, dcn.weight / 2, dcn.bias, padding=1))
    with pytest.raises(ValueError, match="offset"):
        deform_conv2d(x, torch.zeros(1, 17, 9, 7), torch.ones(1, 9, 9, 7), dcn.weight)


# --------------------------------------------------------------------------------------
# FastDeconv
# --------------------------------------------------------------------------------------
def test_newton_schulz_inverse_square_root_matches_eigh():
    g = torch.Generator().manual_seed(0)
    b = torch.randn(12, 40, generator=g, dtype=torch.float64)
    a = b @ b.t() / 40 + 0.1 * torch.eye(12, dtype=torch.float64)
    vals, vecs = torch.linalg.eigh(a)
    ref = vecs @ torch.diag(vals.rsqrt()) @ vecs.t()
    torch.testing.assert_close(isqrt_newton_schulz(a, 40), ref, rtol=1e-8, atol=1e-8)


def _to_blocks(cols, nf, n_blocks):
    return cols.reshape(-1, nf, n_blocks).transpose(1, 2).reshape(-1, nf)


@pytest.mark.parametrize("c_in, block, stride", [(3, 64, 1), (6, 3, 1), (6, 3, 2)])
def test_fast_deconv_eval_is_conv_of_whitened_patches(c_in, block, stride):
    """Eval: folding D and the mean into the kernel equals whitening each patch, then conv."""
    torch.manual_seed(0)
    fd = FastDeconv(c_in, 4, 3, stride=stride, padding=1, block=block).double()
    nf, n_blocks = fd.num_features, c_in // fd.block
    m = torch.randn(nf, nf, dtype=torch.float64)
    with torch.no_grad():
        fd.running_deconv.copy_(m @ m.t() / nf + torch.eye(nf, dtype=torch.float64))
        fd.running_mean.normal_()
    fd.eval()
    x = torch.randn(2, c_in, 9, 11, dtype=torch.float64)
    patches = F.unfold(x, 3, padding=1, stride=stride).transpose(1, 2)  # N, L, C*9
    n, L = patches.shape[:2]
    white = (_to_blocks(patches, nf, n_blocks) - fd.running_mean) @ fd.running_deconv.t()
    white = white.view(-1, n_blocks, nf).transpose(1, 2).reshape(n, L, c_in * 9)
    ref = (white @ fd.weight.reshape(4, -1).t() + fd.bias).transpose(1, 2)
    out = fd(x)
    torch.testing.assert_close(out.flatten(2), ref)


def test_fast_deconv_training_whitens_the_sampled_patches():
    torch.manual_seed(0)
    fd = FastDeconv(3, 3, 3, padding=1, n_iter=40, momentum=1.0).double()
    x = torch.rand(2, 3, 24, 30, dtype=torch.float64) * torch.tensor([1.0, 3.0, 0.2]).view(1, 3, 1, 1)
    fd.train()(x)
    rows = F.unfold(x, 3, padding=1, stride=3).transpose(1, 2).reshape(-1, 27)  # every 3rd patch
    cov = torch.cov(rows.t(), correction=0) + fd.eps * torch.eye(27, dtype=torch.float64)
    torch.testing.assert_close(fd.running_mean, rows.mean(0))
    torch.testing.assert_close(fd.running_deconv @ cov @ fd.running_deconv,
                               torch.eye(27, dtype=torch.float64), rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------------------
# VGG19 features and the contrastive loss
# --------------------------------------------------------------------------------------
# torchvision vgg19().features: conv index -> (out, in) channels.
TORCHVISION_VGG19_CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
                           14: (256, 256), 16: (256, 256), 19: (512, 256), 21: (512, 512), 23: (512, 512),
                           25: (512, 512), 28: (512, 512), 30: (512, 512), 32: (512, 512), 34: (512, 512)}


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    """A checkpoint laid out as torchvision's vgg19().state_dict() (random weights)."""
    torch.manual_seed(0)
    vgg = VGG19Features()
    state = {f"features.{k}": v for k, v in vgg.state_dict().items()}
    for i in (30, 32, 34):  # the layers past relu5_1, which the loss does not use
        state[f"features.{i}.weight"] = torch.zeros(512, 512, 3, 3)
        state[f"features.{i}.bias"] = torch.zeros(512)
    state.update({"classifier.0.weight": torch.zeros(8, 4), "classifier.0.bias": torch.zeros(8)})
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save(state, path)
    return path, vgg


def test_vgg19_layout_equals_torchvision():
    vgg = VGG19Features()
    convs = {i: (m.out_channels, m.in_channels) for i, m in enumerate(vgg) if isinstance(m, nn.Conv2d)}
    assert convs == {i: v for i, v in TORCHVISION_VGG19_CONVS.items() if i < 30}
    assert all(isinstance(vgg[i], nn.MaxPool2d) for i in (4, 9, 18, 27))
    assert all(isinstance(vgg[i], nn.ReLU) for i in VGG19_TAPS)


def test_contrast_loss_without_weights_warns_once_and_is_l1():
    with pytest.warns(UserWarning, match="vgg_weights"):
        loss = ContrastLoss()
    a, p, n = torch.rand(3, 1, 3, 8, 8).unbind(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(loss(a, p, n), F.l1_loss(a, p))
        loss(a, p, n)


def test_contrast_loss_is_l1_plus_weighted_ratio(vgg_file):
    path, vgg = vgg_file
    loss = ContrastLoss(vgg_weights=path)
    assert all(torch.equal(v, vgg.state_dict()[k]) for k, v in loss.vgg.state_dict().items())
    assert not any(p.requires_grad for p in loss.parameters())
    torch.manual_seed(1)
    clear, hazy = torch.rand(2, 1, 3, 32, 32).unbind(0)
    restored = (0.5 * clear + 0.5 * hazy).requires_grad_()
    value = loss(restored, clear, hazy)
    with torch.no_grad():
        fa, fp, fn = vgg(restored), vgg(clear), vgg(hazy)
        cr = sum(w * F.l1_loss(a, p) / (F.l1_loss(a, n) + 1e-7)
                 for w, a, p, n in zip((1 / 32, 1 / 16, 1 / 8, 1 / 4, 1), fa, fp, fn))
    torch.testing.assert_close(value.detach(), F.l1_loss(restored, clear).detach() + 0.1 * cr)
    value.backward()
    assert restored.grad.abs().sum() > 0
    # the ablation drops the negative: CR is then the weighted positive distance alone
    ab = ContrastLoss(vgg_weights=path, ablation=True)
    with torch.no_grad():
        cr_ab = sum(w * F.l1_loss(a, p) for w, a, p in zip((1 / 32, 1 / 16, 1 / 8, 1 / 4, 1), fa, fp))
    torch.testing.assert_close(ab.contrastive(restored, clear, hazy).detach(), cr_ab)


def test_contrast_loss_refuses_weights_of_another_network(tmp_path):
    path = tmp_path / "not_vgg.pth"
    torch.save(build_model("dehazesnn_s").state_dict(), path)
    with pytest.raises(ValueError, match="vgg19"):
        ContrastLoss(vgg_weights=path)


def test_dehazesnn_maps_zero_one_images_to_the_authors_signed_range():
    torch.manual_seed(0)
    net = build_model("dehazesnn_s").eval()
    raw = build_model("dehazesnn_s", signed_io=False).eval()
    raw.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        torch.testing.assert_close(net(x), raw(x * 2 - 1) * 0.5 + 0.5)
