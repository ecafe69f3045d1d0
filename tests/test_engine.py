"""Engine parts: padded and tiled inference, schedule, parameter groups, losses,
checkpoint files, the non-finite stop, the evaluator's table. The toy task, data and
model defined here are reused by test_engine_resume.py and test_engine_ddp.py."""
import random

import pytest
import torch
import torch.nn as nn
from torch.utils.data import Dataset

from restoration.config import load_config
from restoration.engine.checkpoint import CheckpointManager, load_checkpoint
from restoration.engine.evaluator import (Evaluator, format_table, padded_forward, summarize, tiled_forward,
                                          write_results)
from restoration.engine.optim import LRSchedule, build_optimizer, split_parameters
from restoration.engine.task import PairedImageTask
from restoration.engine.trainer import NonFiniteLossError, Trainer
from restoration.losses import LOSSES, WeightedLoss, build_loss
from restoration.metrics import psnr, ssim
from restoration.spiking import OLIF, PLIF


# -- toy pieces ------------------------------------------------------------------------
class ToyData(Dataset):
    """In-memory noisy/clean pairs; random crops drawn from python's ``random`` (the RNG
    the real data layer uses), so resuming must restore it."""

    def __init__(self, n=8, size=20, patch=None, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.clean = torch.rand(n, 3, size, size, generator=g)
        self.noisy = (self.clean + 0.15 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)
        self.size, self.patch = size, patch

    def __len__(self):
        return len(self.clean)

    def __getitem__(self, i):
        x, y = self.noisy[i], self.clean[i]
        if self.patch:
            t, l = random.randint(0, self.size - self.patch), random.randint(0, self.size - self.patch)
            x, y = x[:, t:t + self.patch, l:l + self.patch], y[:, t:t + self.patch, l:l + self.patch]
        return {"input": x, "target": y, "name": f"{i:03d}.png"}


class ToyNet(nn.Module):
    """conv -> multi-step PLIF over T=2 -> conv, residual: spiking state, neuron params."""

    def __init__(self, width=6):
        super().__init__()
        self.inp = nn.Conv2d(3, width, 3, padding=1)
        self.neuron = PLIF(init_tau=2.0, v_threshold=0.5, detach_reset=True)
        self.out = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x):
        h = self.inp(x)
        s = self.neuron(torch.stack([h, h], 0)).mean(0)
        return x + 0.1 * self.out(s + h)


class ToyTask(PairedImageTask):
    name = "toy"


def toy_cfg(**over):
    base = {"task": "toy", "model.name": "toynet", "seed": 7, "device": "cpu", "data.batch_size": 4,
            "train.epochs": 3, "train.eval_freq": 1, "train.sample_images": 1, "optim.lr": 1e-2,
            "sched.warmup_epochs": 1, "sched.min_lr": 1e-4, "loss.terms": [{"name": "l1"}, {"name": "ssim"}]}
    base.update(over)
    return load_config(None, base)


def make_trainer(run_dir, cfg=None, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = cfg or toy_cfg()
    return Trainer(cfg, ToyTask(), run_dir, model=ToyNet(), train_set=ToyData(8, 20, patch=12),
                   valid_set=ToyData(2, 16, seed=1), **kw)


# -- padding and tiling ------------------------------------------------------------------
class LocalNet(nn.Module):
    """Three 3x3 convs: receptive radius 3, zero padding inside (so tile borders would show)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(8, 3, 3, padding=1))

    def forward(self, x):
        return self.body(x)


def test_padded_forward_pads_to_multiple_and_crops_back():
    seen = []

    def model(x):
        seen.append(tuple(x.shape[-2:]))
        return x * 2

    x = torch.rand(1, 3, 13, 30)
    y = padded_forward(model, x, multiple=8)
    assert seen == [(16, 32)]
    assert y.shape == x.shape and torch.equal(y, x * 2)
    # leading dims (stereo pairs N,2,3,H,W) and dict outputs are handled alike
    out = padded_forward(lambda p: {"recon": p, "rate": torch.tensor(1.0)}, torch.rand(2, 2, 3, 9, 9), 4)
    assert out["recon"].shape == (2, 2, 3, 9, 9) and out["rate"].dim() == 0


@torch.no_grad()
@pytest.mark.parametrize("hw,tile,overlap", [((50, 70), 24, 8), ((33, 47), 16, 6), ((40, 40), 17, 7)])
def test_tiled_equals_untiled_for_a_local_model(hw, tile, overlap):
    net = LocalNet().double()
    x = torch.rand(2, 3, *hw, dtype=torch.float64)
    full = net(x)
    tiled = tiled_forward(net, x, tile=tile, overlap=overlap)
    assert tiled.shape == full.shape
    assert torch.allclose(tiled, full, atol=1e-12)
    # the test can fail: too little overlap leaves seams
    if overlap // 2 > 3:
        bad = tiled_forward(net, x, tile=tile, overlap=2)
        assert not torch.allclose(bad, full, atol=1e-6)


@torch.no_grad()
def test_image_that_fits_one_tile_is_never_cut():
    calls = []
    net = LocalNet()

    def model(t):
        calls.append(t.shape)
        return net(t)

    x = torch.rand(1, 3, 30, 31)
    assert torch.equal(tiled_forward(model, x, tile=32, overlap=8, multiple=4), padded_forward(net, x, 4))
    assert len(calls) == 1


def test_tiled_calls_after_each_once_per_tile():
    n = []
    tiled_forward(lambda t: t, torch.rand(1, 3, 40, 40), tile=16, overlap=4, after_each=lambda: n.append(1))
    assert len(n) == 9  # 3 x 3 tiles


# -- schedule and parameter groups ---------------------------------------------------------
def test_warmup_cosine_schedule_shape():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [p], "lr": 1e-3, "base_lr": 1e-3}])
    cfg = load_config(None, {"sched.warmup_epochs": 2, "sched.warmup_lr": 1e-5, "sched.min_lr": 1e-7})
    s = LRSchedule(opt, cfg.sched, epochs=10, steps_per_epoch=5)
    lrs = []
    for e in range(10):
        for k in range(5):
            lrs.append(s.set(e, k))
    assert lrs[0] == pytest.approx(1e-5)
    assert lrs[10] == pytest.approx(1e-3)  # end of warm-up
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))  # rising
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # falling
    assert s.set(10, 0) == pytest.approx(1e-7)  # the end of training
    cfg2 = load_config(None, {"sched.per_step": False, "sched.warmup_epochs": 0})
    s2 = LRSchedule(opt, cfg2.sched, epochs=4, steps_per_epoch=5)
    assert s2.set(1, 0) == s2.set(1, 4)  # constant within an epoch
    assert s2.set(2, 0) == pytest.approx(0.5 * 1e-3)  # half-way down the cosine


def test_neuron_parameters_get_their_own_group():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), PLIF(), OLIF(lif=2), nn.BatchNorm2d(4))
    g = split_parameters(net)
    neuron_ids = {id(p) for p in g["neuron"]}
    assert id(net[1].w) in neuron_ids and id(net[2].tau) in neuron_ids and id(net[2].Vth) in neuron_ids
    assert {id(net[0].weight)} == {id(p) for p in g["decay"]}
    assert {id(net[0].bias), id(net[3].weight), id(net[3].bias)} == {id(p) for p in g["no_decay"]}
    cfg = load_config(None, {"optim.lr": 1e-4, "optim.weight_decay": 0.05, "optim.no_decay_1d": True,
                             "optim.neuron_lr": 5e-5, "optim.neuron_weight_decay": 0.0})
    opt = build_optimizer(net, cfg.optim)
    by_name = {pg["name"]: pg for pg in opt.param_groups}
    assert by_name["neuron"]["lr"] == 5e-5 and by_name["neuron"]["weight_decay"] == 0.0
    assert by_name["decay"]["weight_decay"] == 0.05 and by_name["no_decay"]["weight_decay"] == 0.0


# -- losses ----------------------------------------------------------------------------------
def test_losses_agree_with_metrics_and_weights_sum():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 24, 24, generator=g, dtype=torch.float64)
    y = (x + 0.05 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert float(LOSSES.get("psnr")()(x, y)) == pytest.approx(-float(psnr(x, y).mean()), abs=1e-4)
    assert float(LOSSES.get("ssim")()(x, y)) == pytest.approx(1 - float(ssim(x, y).mean()), abs=1e-9)
    loss = build_loss([{"name": "l1", "weight": 2.0}, {"name": "mse", "weight": 0.5, "scale": 3.0}])
    total, parts = loss(x, y)
    assert float(total) == pytest.approx(2 * float((x - y).abs().mean()) + 1.5 * float(((x - y) ** 2).mean()))
    assert set(parts) == {"l1", "mse"}


def test_loss_gradients_are_finite_and_stereo_views_fold():
    x = torch.rand(2, 2, 3, 24, 24, requires_grad=True)
    y = torch.rand(2, 2, 3, 24, 24)
    total, _ = build_loss(["psnr", "ssim", "ms_ssim"])(x, y)
    total.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_loss_errors_name_the_fix():
    with pytest.raises(ValueError, match="has no option 'scal'"):
        build_loss([{"name": "mse", "scal": 2}])
    with pytest.raises(KeyError, match="Did you mean 'ssim'"):
        build_loss([{"name": "sim"}])
    with pytest.raises(KeyError, match="extras\\['rate'\\]"):
        build_loss(["rate"])(torch.rand(1, 3, 4, 4), torch.rand(1, 3, 4, 4), {})
    total, _ = build_loss([{"name": "rate", "weight": 0.5}])(torch.rand(1), torch.rand(1), {"rate": torch.tensor(4.0)})
    assert float(total) == 2.0


# -- checkpoints -------------------------------------------------------------------------------
def test_checkpoint_files_keep_last_n_and_leave_no_temporaries(tmp_path):
    m = CheckpointManager(tmp_path, "net", keep_last_epochs=2)
    for e in range(5):
        m.save({"epoch": e}, e, total_epochs=5, is_best=e == 1, is_last=e == 4)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["net_best.pth", "net_current.pth", "net_epoch_0003.pth", "net_epoch_0004.pth", "net_last.pth"]
    assert load_checkpoint(tmp_path / "net_best.pth")["epoch"] == 1
    assert load_checkpoint(tmp_path / "net_current.pth")["epoch"] == 4
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "missing.pth")


def test_training_writes_checkpoints_log_and_improves(tmp_path):
    from restoration.engine.log import setup_logger

    setup_logger(tmp_path / "train.log")
    tr = make_trainer(tmp_path)
    before = tr.evaluator.evaluate(tr.model, tr.valid_set).summary["psnr"]
    out = tr.fit()
    after = tr.evaluator.evaluate(tr.model, tr.valid_set).summary["psnr"]
    assert out["epochs_done"] == 3 and after > before
    for which in ("best", "last", "current"):
        assert (tmp_path / f"toynet_{which}.pth").is_file()
    ck = load_checkpoint(tmp_path / "toynet_last.pth")
    assert ck["epoch"] == 2 and ck["config"]["model"]["name"] == "toynet"
    assert "epoch 3/3" in (tmp_path / "train.log").read_text()
    assert any((tmp_path / "tb").iterdir())


class NaNAfter(nn.Module):
    """A loss term that turns NaN after ``n`` calls."""

    def __init__(self, n):
        super().__init__()
        self.n, self.calls = n, 0

    def forward(self, pred, target, extras=None):
        self.calls += 1
        v = (pred - target).abs().mean()
        return v * float("nan") if self.calls > self.n else v


def test_non_finite_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path):
    class NaNTask(ToyTask):
        def build_loss(self, cfg):
            return WeightedLoss([("nan_after", 1.0, NaNAfter(3))])

    torch.manual_seed(0)
    cfg = toy_cfg()  # 8 items, batch 4: 2 steps per epoch -> NaN in the 2nd epoch
    tr = Trainer(cfg, NaNTask(), tmp_path, model=ToyNet(), train_set=ToyData(8, 20, patch=12),
                 valid_set=ToyData(2, 16, seed=1))
    with pytest.raises(NonFiniteLossError) as e:
        tr.fit()
    msg = str(e.value)
    assert "not finite" in msg and "epoch 2" in msg and "toynet_current.pth" in msg and "--resume" in msg
    ck = load_checkpoint(tmp_path / "toynet_current.pth")
    assert ck["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in ck["model"].values())


# -- evaluator -------------------------------------------------------------------------------
def test_evaluator_rows_summary_files_and_protocol(tmp_path):
    class YTask(ToyTask):
        y_channel, crop_border = True, 2

    cfg = toy_cfg()
    ev = Evaluator(YTask(), cfg, "cpu")
    data = ToyData(3, 20)
    res = ev.evaluate(nn.Identity(), data, full=True, image_dir=tmp_path / "imgs")
    assert [r["name"] for r in res.rows] == ["000.png", "001.png", "002.png"]
    # identity model: output metrics equal input metrics, computed on Y with the border crop
    ref = psnr(data.noisy, data.clean, y_channel=True, crop_border=2)
    assert [r["psnr"] for r in res.rows] == pytest.approx(ref.tolist(), abs=1e-9)
    assert res.summary["psnr"] == pytest.approx(res.summary["input_psnr"])
    assert sorted(p.name for p in (tmp_path / "imgs").iterdir()) == ["000.png", "001.png", "002.png"]
    table = format_table(res.summary, res.rows, title="t")
    assert "input PSNR" in table and "gain over input: PSNR +0.00 dB" in table
    write_results(res, tmp_path, table)
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert lines[0].startswith("name,psnr,ssim") and lines[-1].startswith("mean,") and len(lines) == 5
    assert (tmp_path / "summary.txt").read_text().startswith("t\n")


def test_summarize_skips_nan():
    s = summarize([{"name": "a", "x": 1.0}, {"name": "b", "x": float("nan")}, {"name": "c", "x": 3.0}])
    assert s == {"x": 2.0}
