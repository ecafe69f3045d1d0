"""DHF-JSCC CNN / SNN / ANN twin: shapes, bandwidth accounting, channel, reproducibility."""
import math

import pytest
import torch

import restoration
from restoration.models.dhf_jscc import (AWGNChannel, DHFJSCC, dhf_jscc_cnn, dhf_jscc_snn, dhf_jscc_snn_ann,
                                         power_normalize)
from restoration.losses import rate_distortion_loss
from restoration.spiking import is_spiking_neuron

SMALL = dict(width=16)  # keeps the suite fast; the structure is the same at any width
BUILDERS = {"cnn": dhf_jscc_cnn, "snn": dhf_jscc_snn}


def pair(n=1, h=32, w=32, seed=0):
    return torch.rand(n, 2, 3, h, w, generator=torch.Generator().manual_seed(seed))


def capture_channel_io(model):
    """Record (input, output) of every call of ``model.channel``."""
    calls = []
    handle = model.channel.register_forward_hook(lambda m, args, out: calls.append((args[0].detach(), out.detach())))
    return calls, handle


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registered_names():
    names = restoration.list_models()
    for name in ("dhf_jscc_cnn", "dhf_jscc_snn", "dhf_jscc_snn_ann"):
        assert name in names
    assert isinstance(restoration.build_model("dhf_jscc_cnn", width=8), DHFJSCC)


@pytest.mark.parametrize("kind", ["cnn", "snn"])
def test_forward_backward_default_config(kind):
    torch.manual_seed(0)
    model = BUILDERS[kind]()
    x = pair(1, 64, 64)
    out = model(x)
    assert set(out) == {"recon", "rate"} and out["rate"] is None
    recon = out["recon"]
    assert recon.shape == x.shape
    assert torch.isfinite(recon).all() and recon.min() >= 0 and recon.max() <= 1
    torch.nn.functional.mse_loss(recon, x).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    # the gradient reaches the first layer of both encoders through every neuron and the channel
    for enc in (model.encoder_l, model.encoder_r):
        assert enc.stem.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("kind", ["cnn", "snn"])
def test_odd_sizes_padded_and_cropped(kind):
    model = BUILDERS[kind](**SMALL)
    x = pair(1, 50, 70)
    recon = model(x)["recon"]
    assert recon.shape == (1, 2, 3, 50, 70)
    recon.sum().backward()


@pytest.mark.parametrize("ratio,latent", [(1 / 6, 64), (1 / 12, 32), (1 / 48, 8)])
def test_bandwidth_ratio_equals_symbols_sent(ratio, latent):
    model = dhf_jscc_cnn(bandwidth_ratio=ratio, **SMALL)
    assert model.latent_channels == latent
    assert model.bandwidth_ratio == pytest.approx(ratio)
    calls, handle = capture_channel_io(model)
    n, h, w = 2, 64, 96
    model(pair(n, h, w))
    handle.remove()
    assert len(calls) == 2  # one transmission per view
    for tx_in, tx_out in calls:
        assert tx_in.shape[0] == n and tx_out.shape == tx_in.shape
        symbols_per_image = tx_in[0].numel() / 2  # two reals per complex symbol
        assert symbols_per_image / (3 * h * w) == pytest.approx(model.bandwidth_ratio)
        assert symbols_per_image == model.symbols_per_image(h, w)


def test_symbols_per_image_counts_padding():
    model = dhf_jscc_cnn(**SMALL)
    calls, handle = capture_channel_io(model)
    model(pair(1, 50, 70))
    handle.remove()
    assert calls[0][0][0].numel() / 2 == model.symbols_per_image(50, 70) == 64 * 7 * 9 / 2


def test_unreachable_bandwidth_ratio_is_one_clear_error():
    with pytest.raises(ValueError, match="bandwidth_ratio"):
        dhf_jscc_cnn(bandwidth_ratio=0.1)


def test_power_normalisation_unit_power_per_image():
    y = torch.randn(3, 8, 4, 4) * torch.tensor([0.01, 1.0, 50.0]).view(3, 1, 1, 1)
    tx = power_normalize(y)
    z = torch.view_as_complex(tx.reshape(3, -1, 2))
    assert torch.allclose(z.abs().pow(2).mean(1), torch.ones(3), atol=1e-5)
    # and inside the model: what enters the channel leaves it with unit power per image
    model = dhf_jscc_snn(snr_db=float("inf"), **SMALL)
    calls, handle = capture_channel_io(model)
    model(pair(2))
    handle.remove()
    for _, tx_out in calls:  # noiseless: the output is the normalised transmission
        power = tx_out.flatten(1).pow(2).sum(1) / (tx_out[0].numel() / 2)
        assert torch.allclose(power, torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 10.0, 100.0])
def test_channel_noise_power_matches_snr(snr_db):
    y = torch.randn(2, 64, 32, 32)
    tx = power_normalize(y)
    rx = AWGNChannel()(y, snr_db, gen(1))
    noise = torch.view_as_complex((rx - tx).reshape(2, -1, 2).contiguous())
    measured = noise.abs().pow(2).mean().item()  # signal power is 1
    assert measured == pytest.approx(10 ** (-snr_db / 10), rel=0.03)
    # the real and imaginary parts carry half of it each
    assert (rx - tx).pow(2).mean().item() == pytest.approx(10 ** (-snr_db / 10) / 2, rel=0.03)


@pytest.mark.parametrize("kind", ["cnn", "snn"])
def test_decoded_output_near_lossless_at_100db_noisy_at_minus5db(kind):
    torch.manual_seed(0)
    model = BUILDERS[kind](**SMALL).eval()
    x = pair(2)
    with torch.no_grad():
        clean = model(x, snr_db=float("inf"))["recon"]
        high = model(x, snr_db=100, generator=gen(1))["recon"]
        low = model(x, snr_db=-5, generator=gen(1))["recon"]
    d_high = (high - clean).pow(2).mean().item()
    d_low = (low - clean).pow(2).mean().item()
    if kind == "cnn":  # a continuous map: the output moves with the noise
        assert d_high < 1e-8
        assert d_low > 1e-4 and d_low > 1e4 * max(d_high, 1e-12)
    else:
        # Spike thresholds are discontinuous: even tiny noise flips the spikes of membranes
        # sitting on the threshold, so an untrained SNN is not smooth in its input; the
        # decoded output still moves many times more at -5 dB than at 100 dB.
        assert d_low > 1e-3 and d_low > 10 * d_high


@pytest.mark.parametrize("kind", ["cnn", "snn"])
def test_identical_outputs_with_fixed_generator_and_state_reset(kind):
    model = BUILDERS[kind](**SMALL)
    x = pair()
    a = model(x, generator=gen(7))["recon"]
    b = model(x, generator=gen(7))["recon"]
    c = model(x, generator=gen(8))["recon"]
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    if kind == "snn":  # every membrane is back at its reset value after the forward
        for m in model.modules():
            if is_spiking_neuron(m):
                assert not isinstance(m.v, torch.Tensor) and m.v == m.v_reset


def test_noise_seed_makes_eval_reproducible_and_training_random():
    model = dhf_jscc_snn(noise_seed=3, **SMALL)
    x = pair()
    with torch.no_grad():
        model.eval()
        assert torch.equal(model(x)["recon"], model(x)["recon"])
        model.train()
        assert not torch.equal(model(x)["recon"], model(x)["recon"])


def test_snr_attribute_is_used_and_call_overrides_it():
    model = dhf_jscc_cnn(**SMALL)
    x = pair()
    model.snr_db = -5
    a = model(x, generator=gen(2))["recon"]
    model.snr_db = 10
    b = model(x, snr_db=-5, generator=gen(2))["recon"]
    c = model(x, generator=gen(2))["recon"]
    assert torch.equal(a, b) and not torch.equal(b, c)
    with pytest.raises(ValueError, match="snr_db"):
        model.snr_db = float("nan")


def test_snn_image_readout_is_not_quantised_to_spike_counts():
    # a spiking output layer over T=4 steps could only give 5 levels per pixel
    model = dhf_jscc_snn(**SMALL)
    recon = model(pair())["recon"]
    assert torch.unique(recon).numel() > 1000


def test_ann_twin_has_no_neuron_and_matches_the_cnn_with_its_weights():
    snn = dhf_jscc_snn(**SMALL)
    twin = dhf_jscc_snn_ann(**SMALL)
    cnn = dhf_jscc_cnn(**SMALL)
    assert not any(is_spiking_neuron(m) for m in twin.modules())
    assert any(is_spiking_neuron(m) for m in snn.modules())
    # one set of names for all three: CNN weights load strictly into the SNN and the twin
    snn.load_state_dict(cnn.state_dict(), strict=True)
    twin.load_state_dict(cnn.state_dict(), strict=True)
    x = pair()
    with torch.no_grad():
        ref = cnn(x, generator=gen(4))["recon"]
        assert torch.allclose(twin(x, generator=gen(4))["recon"], ref, atol=1e-6)
        twin.time_steps = 4  # stateless activations: T steps give the one-step output
        assert torch.allclose(twin(x, generator=gen(4))["recon"], ref, atol=1e-5)
        assert not torch.allclose(snn(x, generator=gen(4))["recon"], ref, atol=1e-3)


def test_entropy_model_rate_term():
    model = dhf_jscc_cnn(entropy=True, **SMALL)
    x = pair(2)
    out = model(x)
    rate = out["rate"]
    assert rate.dim() == 0 and torch.isfinite(rate) and rate > 0
    loss = rate_distortion_loss(out, x, lam=0.5)
    assert loss.item() == pytest.approx(torch.nn.functional.mse_loss(out["recon"], x).item() + 0.5 * rate.item(),
                                        rel=1e-5)
    loss.backward()
    assert model.encoder_l.stem.weight.grad.abs().sum() > 0
    assert model.rate_model.log_scale.grad.abs().sum() > 0
    # eval: the latent is rounded before transmission
    calls, handle = capture_channel_io(model.eval())
    with torch.no_grad():
        model(x)
    handle.remove()
    assert torch.equal(calls[0][0], calls[0][0].round())
    # no entropy model: the loss is the distortion alone
    plain = dhf_jscc_cnn(**SMALL)
    out = plain(x)
    assert rate_distortion_loss(out, x).item() == pytest.approx(torch.nn.functional.mse_loss(out["recon"], x).item())


@pytest.mark.parametrize("bad", [torch.rand(1, 3, 64, 64), torch.rand(1, 3, 2, 64, 64), torch.rand(2, 2, 1, 8, 8)])
def test_wrong_input_shape_is_one_clear_error(bad):
    with pytest.raises(ValueError, match=r"N x 2 x 3 x H x W"):
        dhf_jscc_cnn(**SMALL)(bad)
