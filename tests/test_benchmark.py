"""The cross-task benchmark (restoration/benchmark/, tools/benchmark.py) and
tools/visualize_spikes.py: energy bookkeeping on a toy SNN whose counts are known in
closed form, table and CSV assembly, plots, budgets, memory peaks, CLI errors, spike
maps, and a micro end-to-end run."""
import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image
from spikingjelly.activation_based import neuron

import restoration
from restoration import benchmark as B
from restoration.engine.task import PairedImageTask
from restoration.spiking import to_ann

REPO = Path(__file__).resolve().parent.parent
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def one_thread():
    """Small spiking nets run many tiny ops; on shared cores one thread is far faster."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def load_tool(name: str, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "tools"))
    spec = importlib.util.spec_from_file_location(f"_tool_{name}", REPO / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# -- a toy SNN with known counts ---------------------------------------------------------

class ToySNN(nn.Module):
    """conv1 (1x1, 3->2) copies R and G; an IF neuron fires where they are >= 0.5;
    conv2 (1x1, 2->3) reads the spikes."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 2, 1, bias=False)
        with torch.no_grad():
            self.conv1.weight.zero_()
            self.conv1.weight[0, 0] = 1.0
            self.conv1.weight[1, 1] = 1.0
        self.neuron = neuron.IFNode(v_threshold=0.5)
        self.conv2 = nn.Conv2d(2, 3, 1)

    def forward(self, x):
        return self.conv2(self.neuron(self.conv1(x)))


def toy_images():
    """A: 4x4, R high on 6 pixels -> 6 spikes of 32; B: 6x6, R high everywhere -> 36 of 72."""
    a = torch.full((3, 4, 4), 0.1)
    a[0].view(-1)[:6] = 0.9
    b = torch.full((3, 6, 6), 0.1)
    b[0] = 0.9
    return [a, b]


def batches(images):
    return [{"input": im[None], "target": im[None], "name": [str(i)]} for i, im in enumerate(images)]


RATE = (6 + 36) / (32 + 72)  # spikes / neuron outputs over both images (MACs are proportional)


def test_energy_on_toy_snn_matches_closed_form():
    model, task = ToySNN().eval(), PairedImageTask()
    measured = B.measure_ops(model, task, batches(toy_images()), "cpu")
    assert measured["layers"]["model.conv1"]["spike_input"] is False
    assert measured["layers"]["model.conv2"]["spike_input"] is True
    assert measured["layers"]["model.conv2"]["rate"] == pytest.approx(RATE)
    assert measured["mean_rate"] == pytest.approx(RATE)
    size = 8
    macs1 = 2 * size * size * 3  # output elements x input channels (1x1 kernel)
    macs2 = 3 * size * size * 2
    cost = B.cost_at_size(model, task, "cpu", size, measured)
    assert cost["macs"] == macs1 + macs2
    assert cost["dense_macs"] == macs1
    assert cost["sops"] == pytest.approx(macs2 * RATE)
    assert cost["energy_mj"] == pytest.approx((4.6 * macs1 + 0.9 * macs2 * RATE) * 1e-9)
    assert cost["spike_mac_share"] == pytest.approx(0.5)
    # memory-aware (bits): weights 6 + 9 (conv2 has a bias) at 32; inputs: the image at 32,
    # conv2's measured spikes at 1; outputs (2 + 3 maps) at 32; IF state read + written at 32
    reads = 32 * 15 + 32 * 3 * 64 + 1 * 2 * 64 + 32 * 2 * 64
    writes = 32 * 5 * 64 + 32 * 2 * 64
    assert cost["memory_mbit"] == pytest.approx((reads + writes) / 1e6)
    e_ops = (4.6 * macs1 + 0.9 * macs2 * RATE) * 1e-9
    assert cost["energy_sram_mj"] == pytest.approx(e_ops + (reads + writes) / 64 * 10.0 * 1e-9)
    assert cost["energy_dram_mj"] == pytest.approx(e_ops + (reads + writes) / 64 * 1300.0 * 1e-9)


def test_energy_of_ann_twin_is_all_macs_even_with_dead_relus():
    twin, task = to_ann(ToySNN()).eval(), PairedImageTask()
    black = [torch.zeros(3, 4, 4)]  # conv2 sees only zeros: 0/1 values, but no spikes
    measured = B.measure_ops(twin, task, batches(black), "cpu")
    assert not any(layer["spike_input"] for layer in measured["layers"].values())
    assert measured["mean_rate"] is None and measured["neuron_rates"] == {}
    cost = B.cost_at_size(twin, task, "cpu", 8, measured)
    assert cost["sops"] == 0
    assert cost["energy_mj"] == pytest.approx(4.6 * cost["macs"] * 1e-9)
    bits = 32 * (15 + 3 * 64 + 2 * 64 + 5 * 64)  # no state; conv2's input is real-valued
    assert cost["energy_sram_mj"] == pytest.approx(cost["energy_mj"] + bits / 64 * 10.0 * 1e-9)


def test_energy_ratio_line_under_each_estimate():
    rows = fake_rows()
    rows[0].update(energy_sram_mj=3.0, energy_dram_mj=40.0)
    rows[1].update(energy_sram_mj=7.5, energy_dram_mj=20.0)
    line = B.energy_ratio_line(rows)
    assert line == ("SNN/ANN-twin energy ratio (`toy_snn` / `toy_snn_ann`): operation count 0.29, "
                    "memory-aware, SRAM 0.40, memory-aware, DRAM 2.00.")
    assert B.energy_ratio_line(rows[:1]) is None  # no twin, no ratio
    text = B.markdown_report(rows, "TEST", ["cpu"])
    assert line in text and "E SRAM (mJ)" in text and "Horowitz ISSCC 2014" in text


# -- rows, CSV, markdown -----------------------------------------------------------------

def fake_rows():
    common = dict(task="derain", params=1000, train_seconds=None, gmacs=1.5, stated_size=256, n_test=8, input_psnr=25.0,
                  input_ssim=0.8, cpu_latency_ms=12.0, cpu_throughput=80.0, cpu_train_step_ms=300.0,
                  cpu_infer_peak_mb=50.0, cpu_train_peak_mb=400.0)
    return [dict(common, model="toy_snn", role="SNN", gsops=0.25, spike_mac_share=0.5, mean_rate=0.1,
                 energy_mj=2.0, psnr=30.0, ssim=0.9, ms_ssim=0.95),
            dict(common, model="toy_snn_ann", role="ANN twin", train_seconds=45.2, train_steps=150, gsops=0.0, spike_mac_share=0.0, mean_rate=None,
                 energy_mj=6.9, psnr=31.5, ssim=0.91, ms_ssim=0.96)]


def test_csv_round_trip(tmp_path):
    rows = fake_rows()
    path = B.write_csv(rows, tmp_path / "b.csv")
    with open(path) as f:
        back = list(csv.DictReader(f))
    assert [r["model"] for r in back] == ["toy_snn", "toy_snn_ann"]
    assert float(back[0]["energy_mj"]) == 2.0 and float(back[1]["psnr"]) == 31.5
    assert back[1]["mean_rate"] == ""  # None is an empty cell
    assert float(back[0]["cpu_train_peak_mb"]) == 400.0  # keys beyond FIELDS are kept
    assert not list(tmp_path.glob(".*tmp"))


def test_markdown_report_tables():
    curves = {"stereo_jscc": {"toy_snn": [{"snr_db": 0.0, "psnr": 20.0, "ssim": 0.5, "ms_ssim": 0.7},
                                          {"snr_db": 5.0, "psnr": 22.5, "ssim": 0.6, "ms_ssim": 0.8}]}}
    rows = fake_rows() + [dict(fake_rows()[0], task="stereo_jscc", input_psnr=None, input_ssim=None)]
    text = B.markdown_report(rows, "QUICK budget: smoke", ["cpu"], curves, notes=["note one"],
                             protocols={"derain": ", Y channel, border 4"})
    assert text.startswith("# SNN vs ANN benchmark — QUICK budget: smoke")
    assert "- note one" in text and "4.6 pJ x MACs" in text
    assert "| `toy_snn` | SNN | 1,000 | 1.50 | 0.250 | 50% | 0.100 | 2.00 | 30.00 | 0.9000 | 0.9500 |" in text
    assert "| `toy_snn_ann` | ANN twin | 1,000 | 1.50 | 0.000 | 0% | – | 6.90 | 31.50 | 0.9100 | 0.9600 |" in text
    assert "| `(degraded input)` | no model | – | – | – | – | – | – | 25.00 | 0.8000 | – |" in text
    assert "(8 items, Y channel, border 4)" in text
    assert "| `toy_snn` | 20.00 | 22.50 | 0.7000 | 0.8000 |" in text  # the SNR sweep
    assert "| `toy_snn` | cpu | 12.0 | 80.00 | 300 | 50 | 400 | loaded |" in text
    assert "| `toy_snn_ann` | cpu | 12.0 | 80.00 | 300 | 50 | 400 | 45 s, 150 steps |" in text
    # the stereo section has no degraded-input row
    stereo = text.split("## stereo_jscc")[1]
    assert "(degraded input)" not in stereo.split("## Speed")[0]


def test_plots_write_png_files(tmp_path):
    rows = fake_rows()
    paths = [B.plot_quality_energy(rows, "derain", tmp_path / "qe.png"),
             B.plot_snr_curves({"a": [{"snr_db": 0, "psnr": 20, "ms_ssim": 0.7}, {"snr_db": 5, "psnr": 22, "ms_ssim": 0.8}]},
                               tmp_path / "snr.png", {"a": "SNN"}),
             B.plot_firing_rates({"derain/toy_snn": {"enc.0.lif": 0.1, "enc.1.lif": 0.2, "dec.0.lif": 0.05}},
                                 tmp_path / "rates.png")]
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 2000
    assert sorted(x.name for x in tmp_path.iterdir()) == ["qe.png", "rates.png", "snr.png"]  # no temporaries
    with pytest.raises(ValueError, match="no firing rates"):
        B.plot_firing_rates({"derain/toy_ann": {}}, tmp_path / "none.png")


# -- budgets ---------------------------------------------------------------------------------

@pytest.mark.parametrize("budget", ["quick", "full"])
def test_budget_is_the_same_for_every_model_of_a_task(budget):
    keys = ["data.patch_size", "data.batch_size", "data.builtin", "data.root", "data.repeat", "train.epochs",
            "train.max_steps_per_epoch", "seed", "data.test_split"]
    for task, specs in B.SUITES.items():
        cfgs = [B.build_bench_config(s, task, budget, "cpu") for s in specs]
        assert [c.model.name for c in cfgs] == [s.name for s in specs]
        for k in keys:
            assert len({repr(c.get_path(k)) for c in cfgs}) == 1, (task, k)
    if budget == "full":  # the shipped CPU recipe of the task's spiking model
        from restoration.config import CONFIG_ROOT, load_config

        ref = load_config(CONFIG_ROOT / "derain/esdnet_cpu.yaml")
        c = B.build_bench_config(B.SUITES["derain"][0], "derain", "full")
        assert (c.train.epochs, c.data.batch_size, c.data.patch_size) == (
            ref.train.epochs, ref.data.batch_size, ref.data.patch_size)


def test_models_and_the_authors_budget_for_the_four_way_jscc_comparison():
    four = ["dhf_jscc_authors", "dhf_jscc_authors_snn", "dhf_jscc_cnn", "dhf_jscc_snn"]
    specs = B.task_specs("stereo_jscc", four)
    assert [s.name for s in specs] == four  # the order given
    assert [s.role for s in specs] == ["authors' CNN", "seed's SNN", "ANN baseline", "SNN"]
    assert B.task_specs("derain", four) == [] and B.task_specs("derain") == B.SUITES["derain"]
    cfgs = [B.build_bench_config(s, "stereo_jscc", "authors", "cpu") for s in specs]
    assert [c.model.name for c in cfgs] == four
    for k in ("data.patch_size", "data.batch_size", "data.builtin", "train.epochs", "train.max_steps_per_epoch",
              "optim.lr", "model.args.snr_db", "seed"):
        assert len({repr(c.get_path(k)) for c in cfgs}) == 1, k  # same data, budget, rate and channel
    assert (cfgs[0].data.patch_size, cfgs[0].data.batch_size, cfgs[0].optim.lr) == (32, 4, 2e-4)
    with pytest.raises(ValueError, match="budget 'authors' covers the tasks stereo_jscc, not 'derain'"):
        B.build_bench_config(B.SUITES["derain"][0], "derain", "authors")


def test_warmup_keeps_its_fraction_and_user_overrides_win():
    snn, _, aecr = B.SUITES["dehaze"]
    c = B.build_bench_config(snn, "dehaze", "quick", extra=["optim.lr=0.5"])
    # dehazesnn_s_cpu.yaml: 1 warm-up epoch of 6; the quick budget runs 2 epochs
    assert c.sched.warmup_epochs == pytest.approx(2 / 6)
    assert c.optim.lr == 0.5
    assert B.build_bench_config(aecr, "dehaze", "quick").sched.warmup_epochs == pytest.approx(2 / 6)
    assert B.build_bench_config(B.SUITES["stereo_jscc"][0], "stereo_jscc", "quick").sched.warmup_epochs == 0


def test_lr_scale_multiplies_every_recipe_rate(monkeypatch):
    snn, twin, aecr = B.SUITES["dehaze"]
    quick = B.BUDGETS["quick"]["tasks"]["dehaze"]
    monkeypatch.setitem(B.BUDGETS["quick"]["tasks"], "dehaze", {**quick, "lr_scale": 10.0})
    c = B.build_bench_config(snn, "dehaze", "quick")
    assert (c.optim.lr, c.optim.neuron_lr) == pytest.approx((1e-3 * 10, 5e-4 * 10))  # dehaze/_cpu_size.yaml
    assert B.build_bench_config(aecr, "dehaze", "quick").optim.lr == pytest.approx(1e-3 * 10)
    assert B.build_bench_config(snn, "dehaze", "full").optim.lr == pytest.approx(1e-3)


# -- speed and memory ------------------------------------------------------------------------

@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_peak_memory_sees_a_transient_allocation():
    from restoration.engine.memory import return_freed_memory

    # as in the benchmark's memory process: without it, glibc may serve the 64 MiB from pages
    # an earlier test freed but kept, and the peak would not move (an order-dependent failure)
    assert return_freed_memory()
    mb, method = B._peak_mb(lambda: torch.ones(16 * 2 ** 20).sum(), torch.device("cpu"))  # 64 MiB float32
    assert 56 <= mb <= 200, mb
    assert "VmHWM" in method
    mb0, _ = B._peak_mb(lambda: torch.ones(16).sum(), torch.device("cpu"))
    assert mb0 < 8


def test_measure_speed_and_memory_in_process(tmp_path):
    from restoration.config import dump_config

    cfg = B.build_bench_config(B.SUITES["derain"][0], "derain", "micro", "cpu")
    dump_config(cfg, tmp_path / "c.yaml")
    s = B._measure(str(tmp_path / "c.yaml"), None, "speed", 32, 16, 2, 0, 1, 2, "cpu")
    assert s["latency_s"] > 0 and s["throughput"] > 0 and s["train_step_s"] > 0
    m = B._measure(str(tmp_path / "c.yaml"), None, "memory", 32, 16, 2, 0, 1, 2, "cpu")
    assert m["infer_peak_mb"] >= 0 and m["train_peak_mb"] >= 0 and m["memory_method"]


# -- command line ----------------------------------------------------------------------------

def test_cli_help_runs_as_a_script():
    proc = subprocess.run([sys.executable, "tools/benchmark.py", "--help"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--budget" in proc.stdout and "dhf_jscc_snn (SNN)" in proc.stdout and "quick" in proc.stdout


def test_cli_unknown_task_and_bad_checkpoint_are_clear(monkeypatch, capsys, tmp_path):
    tool = load_tool("benchmark", monkeypatch)
    with pytest.raises(SystemExit) as e:
        tool.main(["--tasks", "denoise"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "invalid choice: 'denoise'" in err and "dehaze" in err
    with pytest.raises(SystemExit):
        tool.main(["--tasks", "derain", "--checkpoint", "dehazesnn_s=x.pth"])
    assert "'dehazesnn_s' is not benchmarked in tasks derain" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(["--tasks", "derain", "--checkpoint", f"esdnet_tiny={tmp_path / 'missing.pth'}"])
    err = capsys.readouterr().err
    assert "missing.pth: no such file, and no shipped weights of that name" in err
    monkeypatch.setenv("SNN_RESTORATION_PRETRAINED", str(tmp_path))  # a checkout without pretrained/
    with pytest.raises(SystemExit):
        tool.main(["--tasks", "derain", "--checkpoint", "esdnet_tiny=esdnet_tiny"])
    assert "(shipped: none found)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(["--tasks", "derain", "--models", "dhf_jscc_authors"])
    assert "--models dhf_jscc_authors: not benchmarkable in tasks derain; choose from esdnet_tiny" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(["--tasks", "derain", "--budget", "authors"])
    assert "--budget authors covers the tasks stereo_jscc, not derain" in capsys.readouterr().err


def test_micro_end_to_end(monkeypatch, tmp_path):
    monkeypatch.setenv("SNN_RESTORATION_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("RESTORATION_NO_TQDM", "1")
    tool = load_tool("benchmark", monkeypatch)
    out = tmp_path / "run"
    assert tool.main(["--tasks", "derain", "--budget", "micro", "--no-speed", "--threads", "1",
                      "--out", str(out)]) == 0
    with open(out / "benchmark.csv") as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    snn, ann = rows["esdnet_tiny"], rows["esdnet_tiny_ann"]
    assert snn["role"] == "SNN" and ann["role"] == "ANN twin"
    assert float(snn["gsops"]) > 0 and float(ann["gsops"]) == 0 and ann["mean_rate"] == ""
    assert float(snn["gmacs"]) == pytest.approx(float(ann["gmacs"]))  # same graph, same dense count
    for r in (snn, ann):  # the stated formula, from the reported columns
        dense = float(r["gmacs"]) * (1 - float(r["spike_mac_share"]))
        assert float(r["energy_mj"]) == pytest.approx(4.6 * dense + 0.9 * float(r["gsops"]), rel=1e-4)
        assert float(r["energy_dram_mj"]) > float(r["energy_sram_mj"]) > float(r["energy_mj"])
        assert r["train_steps"] == "2" and float(r["psnr"]) > 0 and int(r["output_levels"]) >= 1
    text = (out / "benchmark.md").read_text()
    assert "MICRO budget" in text and "(degraded input)" in text
    assert "derain: crop 32, batch 2, 2 optimiser steps (1 epochs)" in text
    assert "unresolved (one seed" in text and "No quality difference is resolved" in text  # 1 seed: unresolved
    assert "| made worse |" in text and snn["made_worse_of"] == "2"
    for name in ("quality_energy_derain.png", "firing_rates.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    # the same run in two worker processes: the same figures, whatever the order the jobs end in
    out2 = tmp_path / "run_jobs2"
    assert tool.main(["--tasks", "derain", "--budget", "micro", "--no-speed", "--threads", "1", "--jobs", "2",
                      "--out", str(out2)]) == 0
    with open(out2 / "benchmark.csv") as f:
        rows2 = {r["model"]: r for r in csv.DictReader(f)}
    assert list(rows2) == list(rows)  # the plan's order, not the order of completion
    for m in rows:
        for k in ("psnr", "ssim", "ms_ssim", "gsops", "energy_dram_mj", "made_worse", "output_levels"):
            assert rows2[m][k] == rows[m][k], (m, k)
    log = (out2 / "benchmark.log").read_text()
    assert "[1/2 " in log and "[2/2 " in log and "evaluating on the held-out" in log  # workers log there too
    assert "derain/esdnet_tiny," in (out / "layer_rates.csv").read_text()

    # the same weights loaded with --checkpoint give the same scores, without training
    ck = {m: out / "derain" / m / f"{m}_last.pth" for m in rows}
    again = tmp_path / "again"
    assert tool.main(["--tasks", "derain", "--budget", "micro", "--no-speed", "--threads", "1", "--out", str(again)]
                     + [a for m, p in ck.items() for a in ("--checkpoint", f"{m}={p}")]) == 0
    with open(again / "benchmark.csv") as f:
        loaded = {r["model"]: r for r in csv.DictReader(f)}
    for m in rows:
        assert loaded[m]["trained_from"] == str(ck[m]) and loaded[m]["train_steps"] == ""
        for k in ("psnr", "ssim", "energy_mj", "gsops"):
            assert float(loaded[m][k]) == pytest.approx(float(rows[m][k]), rel=1e-5), (m, k)
    assert not (again / "derain" / "esdnet_tiny" / "esdnet_tiny_last.pth").exists()
    head = (again / "benchmark.md").read_text().splitlines()[0]
    assert "no training in this run" in head and "MICRO" not in head


# -- spike maps and tools/visualize_spikes.py ----------------------------------------------------

def test_spike_maps_and_region_rates_on_toy():
    a = toy_images()[0]
    maps = B.spike_maps(ToySNN(), a[None])
    m = maps["neuron"]["map"]
    expected = (a[:2] >= 0.5).float().mean(0)  # channels that fired at each position
    assert torch.equal(m, expected) and maps["neuron"]["calls"] == 1
    inside, outside = B.region_rates(m, a[0] > 0.5)
    assert (inside, outside) == (0.5, 0.0)
    with pytest.raises(ValueError, match="no spiking neuron"):
        B.spike_maps(to_ann(ToySNN()), a[None])


def test_visualize_spikes_cli(monkeypatch, tmp_path, capsys):
    rng = np.random.default_rng(0)
    clean = (rng.random((28, 36, 3)) * 160).astype(np.uint8)  # not a multiple of 4: padded and cropped
    rainy = clean.copy()
    rainy[:, ::6] = 255  # vertical "streaks"
    Image.fromarray(clean).save(tmp_path / "clean.png")
    Image.fromarray(rainy).save(tmp_path / "rainy.png")
    tool = load_tool("visualize_spikes", monkeypatch)
    out = tmp_path / "maps.png"
    assert tool.main(["--model", "esdnet_tiny", "--image", str(tmp_path / "rainy.png"), "--target",
                      str(tmp_path / "clean.png"), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "degraded pixels" in text and "encoder_level1.0.residual.0" in text and "28x36" in text
    assert out.read_bytes()[:8] == PNG_MAGIC
    (tmp_path / "in").mkdir()
    (tmp_path / "gt").mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(rainy).save(tmp_path / "in" / name)
        Image.fromarray(clean).save(tmp_path / "gt" / name)
    assert tool.main(["--model", "esdnet_tiny", "--image", str(tmp_path / "in"), "--target", str(tmp_path / "gt"),
                      "--out", str(tmp_path / "f.png")]) == 0
    text = capsys.readouterr().out
    assert "a.png" in text and "b.png" in text and "(layer, image) pairs fire more on degraded pixels" in text
    (tmp_path / "gt" / "b.png").unlink()
    assert tool.main(["--model", "esdnet_tiny", "--image", str(tmp_path / "in"), "--target", str(tmp_path / "gt"),
                      "--out", str(tmp_path / "f.png")]) == 2
    assert "has no b.png" in capsys.readouterr().err
    assert tool.main(["--model", "esdnet_tiny_ann", "--image", str(tmp_path / "rainy.png"),
                      "--out", str(tmp_path / "x.png")]) == 2
    assert "no spiking neuron" in capsys.readouterr().err


# -- seeds, per-severity quality, verdicts (issue 16) ------------------------------------------

def test_seeds_drive_different_initialisations():
    from restoration.engine.trainer import build_model_from_config, seed_everything

    spec = B.SUITES["derain"][0]
    weights = []
    for k in range(2):
        cfg = B.build_bench_config(spec, "derain", "micro", "cpu", seed=B.SEED0 + k)
        assert int(cfg.seed) == B.SEED0 + k
        seed_everything(int(cfg.seed))  # as the trainer does before building the model
        weights.append(torch.cat([p.detach().flatten() for p in build_model_from_config(cfg).parameters()]))
    assert not torch.equal(weights[0], weights[1])
    seed_everything(B.SEED0)
    again = build_model_from_config(B.build_bench_config(spec, "derain", "micro", "cpu"))
    assert torch.equal(torch.cat([p.detach().flatten() for p in again.parameters()]), weights[0])


def test_aggregate_seeds_mean_std_and_kept_columns():
    rows = [{"task": "derain", "model": "m", "role": "SNN", "psnr": 20.0, "ssim": 0.5, "train_steps": 2,
             "stated_size": 32, "seed": 1234},
            {"task": "derain", "model": "m", "role": "SNN", "psnr": 22.0, "ssim": 0.7, "train_steps": 2,
             "stated_size": 32, "seed": 1235}]
    agg = B.aggregate_seeds(rows)
    assert agg["psnr"] == pytest.approx(21.0) and agg["psnr_std"] == pytest.approx(2 ** 0.5)
    assert agg["ssim_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert agg["train_steps"] == 2 and agg["stated_size"] == 32 and agg["n_seeds"] == 2  # equal ints stay ints
    assert agg["seed"] == "1234 1235"
    one = B.aggregate_seeds(rows[:1])
    assert one["psnr"] == 20.0 and np.isnan(one["psnr_std"]) and one["seed"] == 1234
    assert "21.00 +- 1.41" in B.with_std(agg)["psnr"] and B.with_std(one)["psnr"] == 20.0


def _images(psnrs, inputs):
    levels = ("light", "medium", "heavy")
    return [{"name": f"{levels[i % 3]}_{i:05d}.png", "psnr": p, "ssim": p / 100, "ms_ssim": p / 100,
             "input_psnr": q} for i, (p, q) in enumerate(zip(psnrs, inputs))]


def test_seed_comparisons_pair_images_over_seeds_and_say_resolved():
    snn = [_images([21, 22, 23], [20] * 3), _images([21.5, 22.5, 23.5], [20] * 3)]
    twin = [_images([20, 21, 22], [20] * 3), _images([20.4, 21.6, 22.4], [20] * 3)]
    st = {s.metric: s for s in B.seed_comparisons({"derain": {"a": snn, "b": twin}},
                                                  {"a": "SNN", "b": "ANN twin"})["derain"]}
    assert st["PSNR"].n_seeds == 2 and st["PSNR"].n_images == 3
    assert st["PSNR"].diff_mean == pytest.approx(np.mean([1, 1, 1, 1.1, 0.9, 1.1]))
    assert st["PSNR"].resolved and "resolved (`a` is higher)" in st["PSNR"].sentence
    text = B.verdict("derain", [], list(st.values()))
    assert "the SNN scores higher" in text and "resolved" in text
    # one seed: unresolved whatever the images say
    one = B.seed_comparisons({"derain": {"a": snn[:1], "b": twin[:1]}}, {"a": "SNN", "b": "ANN twin"})["derain"]
    assert all(not s.resolved and "unresolved (one seed" in s.sentence for s in one)
    assert "No quality difference is resolved" in B.verdict("derain", [], one)


def test_severity_quality_counts_a_model_that_makes_images_worse():
    """A model returning zeros: every image's PSNR falls below its input's; the made-worse
    column says so per severity, summed over seeds."""
    from torch.utils.data import Subset

    from restoration.config import Config
    from restoration.engine.evaluator import Evaluator
    from restoration.registry import build_task

    class Zeros(nn.Module):
        def forward(self, x):
            return torch.zeros_like(x)

    cfg = B.build_bench_config(B.SUITES["derain"][0], "derain", "micro", "cpu")
    cfg.data.builtin.n_test = 3  # one light, one medium, one heavy image
    task = build_task("derain", **dict(cfg.task_args or {}))
    test_cfg = Config(cfg.to_dict())
    test_cfg.data.valid_mode = "test"
    data = task.build_dataset(test_cfg, cfg.data.test_split, False)
    data = Subset(data, range(min(3, len(data))))
    rows = Evaluator(task, cfg, torch.device("cpu")).evaluate(Zeros(), data, full=True).rows
    sev = B.severity_quality([rows, rows])
    assert sev["all"]["worse"] == sev["all"]["n_compared"] == 2 * len(data)
    for level in ("light", "medium", "heavy")[:len(data)]:
        assert sev[level]["worse"] == sev[level]["n_compared"] == 2 and sev[level]["gain"] < 0
    table = B.severity_table([{"model": "zeros", "severity": sev}])
    assert f"| `zeros` | all | {len(data)} |" in table and f"{2 * len(data)} of {2 * len(data)} |" in table
    assert B.severity_quality([[{"name": "x", "psnr": 1.0}]]) == {}  # no input PSNR (stereo JSCC): nothing


@pytest.mark.slow
def test_micro_two_seeds_end_to_end(monkeypatch, tmp_path):
    monkeypatch.setenv("SNN_RESTORATION_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("RESTORATION_NO_TQDM", "1")
    tool = load_tool("benchmark", monkeypatch)
    out = tmp_path / "run"
    assert tool.main(["--tasks", "derain", "--budget", "micro", "--seeds", "2", "--no-speed", "--threads", "1",
                      "--out", str(out)]) == 0
    text = (out / "benchmark.md").read_text()
    assert " +- " in text and "paired 95% interval [" in text and "resolved" in text
    assert "Verdict for derain:" in text and "| made worse |" in text and " of 4 |" in text
    with open(out / "benchmark.csv") as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    assert rows["esdnet_tiny"]["n_seeds"] == "2" and float(rows["esdnet_tiny"]["psnr_std"]) >= 0
    assert rows["esdnet_tiny"]["made_worse_of"] == "4" and "light_made_worse" in rows["esdnet_tiny"]
    with open(out / "benchmark_seeds.csv") as f:
        assert sorted(r["seed"] for r in csv.DictReader(f)) == ["1234", "1234", "1235", "1235"]
    for name in ("quality_energy_derain.png", "quality_energy_derain_sram.png", "quality_energy_derain_dram.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    assert (out / "derain" / "esdnet_tiny" / "seed1235" / "esdnet_tiny_last.pth").is_file()


def test_cli_seeds_errors_are_one_line(monkeypatch, capsys):
    tool = load_tool("benchmark", monkeypatch)
    with pytest.raises(SystemExit):
        tool.main(["--tasks", "derain", "--seeds", "0"])
    assert "--seeds 0: give 1 or more seeds" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main(["--tasks", "derain", "--seeds", "2", "--pretrained"])
    assert "have no seed to vary: drop --seeds" in capsys.readouterr().err


def test_inspection_tools_feed_a_model_as_its_task_does():
    """visualize_spikes and model_stats ask the model's task for its input (issue 20): a
    stereo model gets a pair, an image model one image, with no model named in the tools."""
    from restoration.benchmark.suite import task_for_model
    from restoration.benchmark.visualize import image_maps
    from restoration.benchmark.zoo import model_row
    from restoration.energy import count_ops

    stereo, paired = task_for_model("dhf_jscc_snn"), task_for_model("esdnet_tiny")
    img, right = torch.rand(3, 20, 28), torch.rand(3, 20, 28)
    batch = stereo.image_batch(img, [right])
    assert torch.equal(batch["left"][0], img) and torch.equal(batch["right"][0], right)
    assert torch.equal(stereo.image_batch(img)["right"][0], img)  # one image: both views
    assert paired.image_batch(img)["input"].shape == (1, 3, 20, 28)
    maps = image_maps(restoration.build_model("dhf_jscc_snn").eval(), img, right, stereo)
    assert maps and not any(name.startswith("model.") for name in maps)
    torch.manual_seed(0)
    pair_macs = count_ops(restoration.build_model("dhf_jscc_cnn").eval(), torch.rand(1, 2, 3, 32, 32)).macs
    assert model_row("dhf_jscc_cnn", 32)["gmacs"] == pytest.approx(pair_macs / 1e9)
