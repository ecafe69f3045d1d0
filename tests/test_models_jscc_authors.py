"""The authors' DHF-JSCC (``dhf_jscc_authors``) and the seed's SNN conversion of it."""
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from restoration import build_model
from restoration.models import load_official
from restoration.models.dhf_jscc_authors import DHFJSCCAuthors, authors_channel
from restoration.spiking import LIF, to_ann

FIXTURES = Path(__file__).parent / "fixtures"
KEYS = json.loads((FIXTURES / "dhf_jscc_keys.json").read_text())


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return build_model("dhf_jscc_authors")


def pair(n=1, h=21, w=27, seed=0):
    return torch.rand(n, 2, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["dhf_jscc_authors", "dhf_jscc_authors_snn", "dhf_jscc_authors_snn_ann"])
def test_names_and_shapes_are_the_authors(name, cnn):
    model = cnn if name == "dhf_jscc_authors" else build_model(name)
    got = [[k, list(v.shape)] for k, v in model.state_dict().items()]
    assert got == KEYS["state_dict"]  # same names, shapes and order: 64 tensors
    assert len(list(model.parameters())) == 64
    assert sum(p.numel() for p in model.parameters()) == KEYS["parameters"] == 21_380_152


@pytest.mark.parametrize("prefix", ["", "module."])
def test_load_official_reads_the_authors_checkpoint_strictly(tmp_path, prefix):
    # main22.py: torch.save({'epoch', 'model_state_dict', 'optimizer_state_dict', 'psnr', 'loss'})
    state = {prefix + k: torch.full(shape, (i + 1) / 100.0) for i, (k, shape) in enumerate(KEYS["state_dict"])}
    path = tmp_path / "epoch_0080_psnr_24.99dB.pth"
    torch.save({"epoch": 80, "model_state_dict": state,
                "optimizer_state_dict": {"state": {}, "param_groups": [{"lr": 1e-4, "amsgrad": True}]},
                "psnr": 24.99, "loss": 0.1}, path)
    model = load_official("dhf_jscc", path, channel="authors")
    assert isinstance(model, DHFJSCCAuthors) and not model.training and model.channel_kind == "authors"
    for i, (k, _) in enumerate(KEYS["state_dict"]):
        assert torch.all(model.state_dict()[k] == (i + 1) / 100.0), k
    # a key of another network is named, not silently dropped
    state.pop(prefix + "decoder.conv4r.bias")
    torch.save({"model_state_dict": state}, path)
    with pytest.raises(ValueError, match="missing keys: decoder.conv4r.bias"):
        load_official("dhf_jscc", path)


def test_forward_on_an_odd_sized_pair(cnn):
    x = pair(2, 21, 27)
    cnn.eval()
    with torch.no_grad():
        out = cnn(x, generator=torch.Generator().manual_seed(0))
    assert out["rate"] is None and out["recon"].shape == x.shape
    assert out["recon"].min() >= 0 and out["recon"].max() <= 1  # eval: the toolkit's range
    cnn.train()
    with torch.no_grad():
        raw = cnn(x, generator=torch.Generator().manual_seed(0))["recon"]
    assert raw.shape == x.shape and torch.equal(raw.clamp(0, 1), out["recon"])  # train: their raw output
    assert cnn.symbols_per_image(21, 27) == 25 * 3 * 4 // 2 and math.isclose(cnn.bandwidth_ratio, 25 / 384)


def test_the_cnn_is_the_authors_computation(cnn):
    """Their Conv1d heads run along the pixels flattened row by row: a pixel's output
    depends on the last pixel of the row above (checked with a hand-made latent)."""
    dec = cnn.decoder
    y = torch.zeros(1, 25, 2, 2)
    with torch.no_grad():
        base = dec(y, y, 1)[0]
        x3 = torch.relu(dec.conv3(torch.relu(dec.conv2(torch.relu(dec.conv1(y))))))
        t = x3.flatten(2)
        want = nn.functional.conv1d(t, dec.conv4.weight, dec.conv4.bias, padding=1).view(1, 3, 16, 16)
    assert torch.allclose(base, want, atol=1e-6)


def test_the_snn_spikes_are_binary():
    torch.manual_seed(0)
    snn = build_model("dhf_jscc_authors_snn", time_steps=4).eval()
    with torch.no_grad():  # louder first layers, so that the check sees spikes, not silence
        for conv in (snn.encoder_l.conv1, snn.encoder_r.conv1, snn.decoder.conv1, snn.decoder.conv1r):
            conv.weight.mul_(20)
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o)) for m in snn.modules() if isinstance(m, LIF)]
    try:
        with torch.no_grad():
            snn(pair(1, 19, 25), generator=torch.Generator().manual_seed(0))
    finally:
        for h in hooks:
            h.remove()
    assert len(seen) == 12 and all(s.shape[0] == 4 for s in seen)  # 3 used LIFs per encoder and per view, T first
    spikes = torch.cat([s.flatten() for s in seen])
    assert set(spikes.unique().tolist()) <= {0.0, 1.0} and spikes.sum() > 0


def test_to_ann_of_the_snn_is_the_cnn(cnn):
    snn = build_model("dhf_jscc_authors_snn", time_steps=4)
    snn.load_state_dict(cnn.state_dict(), strict=True)  # a CNN checkpoint loads into the SNN
    twin = to_ann(snn).eval()
    registered = build_model("dhf_jscc_authors_snn_ann")
    registered.load_state_dict(cnn.state_dict(), strict=True)
    cnn.eval()
    registered.eval()
    x = pair(2, 16, 24, seed=3)
    with torch.no_grad():
        ref = cnn(x, generator=torch.Generator().manual_seed(5))["recon"]
        out4 = twin(x, generator=torch.Generator().manual_seed(5))["recon"]      # T = 4 steps, averaged
        out1 = registered(x, generator=torch.Generator().manual_seed(5))["recon"]  # one step
    assert not any(isinstance(m, LIF) for m in twin.modules())
    assert torch.equal(out1, ref)
    assert torch.allclose(out4, ref, atol=1e-6)


def test_the_authors_channel():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(4, 25, 6, 8, generator=g) * 3
    y[0, :5] = 0  # zeros are left out of their average power
    assert torch.allclose(authors_channel(y, float("inf")), y, atol=1e-6)  # noiseless: scaled back
    rx = authors_channel(y, 5.0, torch.Generator().manual_seed(1))
    power = y.pow(2).sum() / (y != 0).sum()  # one power for the whole batch
    noise = (rx - y).var().item()
    assert math.isclose(noise, power.item() / 10 ** 0.5, rel_tol=0.05)  # P / SNR
    with pytest.raises(ValueError, match="channel='bogus'"):
        build_model("dhf_jscc_authors", channel="bogus")


@pytest.mark.parametrize("recipe,name,steps", [("dhf_jscc_authors.yaml", "dhf_jscc_authors", 1),
                                                ("dhf_jscc_authors_snn_cpu.yaml", "dhf_jscc_authors_snn", 4)])
def test_recipes_build_the_models_and_gradients_reach_the_first_layer(recipe, name, steps):
    from restoration.config import CONFIG_ROOT, load_config
    from restoration.engine.trainer import build_model_from_config

    cfg = load_config(CONFIG_ROOT / "stereo_jscc" / recipe)
    assert cfg.model.name == name and cfg.optim.amsgrad and [t["name"] for t in cfg.loss.terms] == ["mse"]
    torch.manual_seed(0)
    model = build_model_from_config(cfg)
    assert model.time_steps == steps and model.snr_db == 5.0 and model.channel_kind == "awgn"
    x = pair(1, 16, 16)
    nn.functional.mse_loss(model(x)["recon"], x).backward()  # surrogate gradients in the SNN
    g = model.encoder_l.conv1.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0
