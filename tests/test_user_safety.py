"""What a user meets with their own photographs and mistakes, through the real command
lines (subprocess): originals never written over, bad files skipped, mismatches refused,
one-line errors, Ctrl-C, run-folder locks, divergence. See docs/ENGINE.md, "What happens when"."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "RESTORATION_NO_TQDM": "1", "OMP_NUM_THREADS": "1"}
ENV.pop("RESTORATION_DEBUG", None)
TINY = ["--threads", "1", "--epochs", "1", "--set", "train.max_steps_per_epoch=2", "--set", "data.batch_size=2",
        "--set", "data.patch_size=16", "--set", "train.sample_images=0", "--no-final-test"]


def cli(tool, *args, timeout=300, **kw):
    """Run tools/<tool>.py; ``.out`` is what the user sees (stdout and stderr together)."""
    proc = subprocess.run([sys.executable, str(REPO / "tools" / f"{tool}.py"), *map(str, args)], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=timeout, **kw)
    proc.out = proc.stdout + proc.stderr
    return proc


def one_line_error(proc, *needles):
    """rc 1, no traceback, one error message (a data error may list its files below
    it), and the message says each of ``needles``."""
    assert proc.returncode == 1, proc.out
    assert "Traceback" not in proc.stderr, proc.stderr
    starts = [i for i, ln in enumerate(proc.stderr.splitlines()) if ln.startswith("error: ")]
    assert len(starts) == 1, proc.out
    message = "\n".join(proc.stderr.splitlines()[starts[0]:])
    for n in needles:
        assert n in message, message
    return message


def photo(path: Path, h=40, w=56, seed=0, mode="RGB"):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        arr = (np.linspace(0, 65535, h * w).reshape(h, w)).astype(np.uint16)
        Image.fromarray(arr).save(path)
    else:
        Image.fromarray((rng.random((h, w, 3)) * 255).astype(np.uint8)).save(path)
    return path


def paired_tree(root: Path, test_size=(24, 28), bad_test=False):
    for split, n in (("train", 4), ("test", 2)):
        for i in range(n):
            h, w = (24, 24) if split == "train" else test_size
            photo(root / split / "target" / f"{i}.png", h, w, i)
            photo(root / split / "input" / f"{i}.png", h, w, 50 + i)
    if bad_test:
        photo(root / "test" / "input" / "1.png", test_size[0] + 3, test_size[1], 9)
    return root


# -- tools/infer.py on a photo folder -------------------------------------------------

def test_infer_never_writes_over_originals_and_asks_before_replacing(tmp_path):
    src = tmp_path / "photos"
    photo(src / "a.png", seed=1)
    photo(src / "b.jpg", seed=2)
    before = {p.name: p.read_bytes() for p in src.iterdir()}
    one_line_error(cli("infer", "--task", "derain", "--input", src, "--output", src, "--threads", 1),
                   "would write over your input file")
    one_line_error(cli("infer", "--task", "derain", "--input", src, "--output", src, "--overwrite"),
                   "would write over your input file")
    assert {p.name: p.read_bytes() for p in src.iterdir()} == before  # untouched
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"mine")
    one_line_error(cli("infer", "--task", "derain", "--input", src, "--output", out, "--threads", 1),
                   "already holds", "--overwrite")
    assert (out / "a.png").read_bytes() == b"mine"
    proc = cli("infer", "--task", "derain", "--input", src, "--output", out, "--threads", 1, "--overwrite")
    assert proc.returncode == 0, proc.out
    assert Image.open(out / "a.png").size == (56, 40) and Image.open(out / "b.jpg").format == "JPEG"
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_infer_skips_a_bad_file_reads_16_bit_and_says_some_failed(tmp_path):
    src = tmp_path / "photos"
    photo(src / "g16.png", 32, 40, mode="I;16")
    Image.fromarray((np.linspace(0, 255, 32 * 40).reshape(32, 40)).astype(np.uint8)).save(src / "g8.png")
    (src / "broken.png").write_bytes((src / "g8.png").read_bytes()[:60])
    photo(src / "z.png", seed=3)
    out = tmp_path / "out"
    proc = cli("infer", "--task", "derain", "--input", src, "--output", out, "--threads", 1)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "broken.png" in proc.out and "skipped" in proc.out
    assert sorted(p.name for p in out.iterdir()) == ["g16.png", "g8.png", "z.png"]  # the others restored
    g16 = np.asarray(Image.open(out / "g16.png"), dtype=float)
    g8 = np.asarray(Image.open(out / "g8.png"), dtype=float)
    assert abs(g16.mean() - g8.mean()) < 3  # the 16-bit picture is the 8-bit picture, not white


def test_infer_takes_a_file_or_a_glob(tmp_path):
    src = tmp_path / "trip"
    photo(src / "day1" / "a.png", seed=1)
    photo(src / "day2" / "b.png", seed=2)
    out = tmp_path / "one"
    assert cli("infer", "--task", "derain", "--input", src / "day1" / "a.png", "--output", out,
               "--threads", 1).returncode == 0
    assert [p.name for p in out.iterdir()] == ["a.png"]
    out = tmp_path / "many"
    proc = cli("infer", "--task", "derain", "--input", f"{src}/*/*.png", "--output", out, "--threads", 1)
    assert proc.returncode == 0, proc.out
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == ["day1/a.png", "day2/b.png"]


def test_infer_chooses_tiles_from_the_memory_budget(tmp_path):
    src = tmp_path / "photos"
    photo(src / "wide.png", 96, 200, seed=4)
    out = tmp_path / "out"
    proc = cli("infer", "--task", "derain", "--input", src, "--output", out, "--threads", 1, "--max-memory", "1M")
    assert proc.returncode == 0, proc.out
    assert "tiles of" in proc.out and "KB per pixel" in proc.out
    assert Image.open(out / "wide.png").size == (200, 96)


def test_stereo_pair_too_small_for_ssim_is_restored_with_a_note(tmp_path):
    for view in ("left", "right"):
        photo(tmp_path / "pairs" / view / "p.png", 6, 40, seed=5)
    proc = cli("infer", "--task", "stereo_jscc", "--input", tmp_path / "pairs", "--output", tmp_path / "out",
               "--threads", 1)
    assert proc.returncode == 0, proc.out
    assert "SSIM skipped" in proc.out and "PSNR" in proc.out
    assert Image.open(tmp_path / "out" / "left" / "p.png").size == (40, 6)


# -- task and model mismatches ---------------------------------------------------------

def test_weights_recipes_and_models_of_another_task_are_refused(tmp_path):
    photo(tmp_path / "in" / "a.png")
    one_line_error(cli("infer", "--task", "derain", "--checkpoint", REPO / "pretrained" / "dehazesnn_s.pth",
                       "--input", tmp_path / "in", "--output", tmp_path / "out"), "'dehaze'", "--task dehaze")
    assert not (tmp_path / "out").exists()
    one_line_error(cli("train", "--task", "derain", "--config", "dehaze/dehazesnn_s_cpu.yaml"),
                   "is for task 'dehaze'", "--task dehaze")
    one_line_error(cli("train", "--task", "derain", "--model", "dehazesnn_s"), "belongs to task 'dehaze'")


def test_load_official_returns_eval_mode(tmp_path):
    import restoration
    from restoration.models import load_official

    path = tmp_path / "w.pth"
    torch.save({"state_dict": restoration.build_model("esdnet_tiny").state_dict()}, path)
    assert load_official("esdnet_tiny", path).training is False


# -- errors and interruptions ----------------------------------------------------------

def test_user_errors_are_one_line_and_debug_shows_the_traceback(tmp_path):
    data = paired_tree(tmp_path / "d")
    damaged = tmp_path / "damaged.pth"
    damaged.write_bytes(b"\x80\x02not a checkpoint")
    one_line_error(cli("test", "--task", "derain", "--checkpoint", damaged, "--data-dir", data), "damaged")
    common = ["--task", "derain", "--data-dir", data, "--save-dir", tmp_path / "runs"] + TINY
    one_line_error(cli("train", *common, "--device", "cuda"), "CUDA is not available", "--device cpu")
    one_line_error(cli("train", *common, "--set", "model.args.bogus=1"), "model.args.bogus")
    one_line_error(cli("train", *common, "--set", "data.patch_size=0"), "data.patch_size=0 is out of range")
    assert not list((tmp_path / "runs").rglob("*.pth"))
    proc = cli("train", *common, "--set", "data.patch_size=0", "--debug")
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_friendly_reports_a_full_disk_in_one_line_and_keeps_bugs_tracebacks(capsys):
    import errno

    from restoration.engine.cli import friendly

    def full():
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/m_current.pth")

    assert friendly(full) == 1
    err = capsys.readouterr().err
    assert "No space left on device: runs/x/m_current.pth" in err and "free some disk space" in err

    def bug():
        raise IndexError("a real bug")

    with pytest.raises(IndexError):
        friendly(bug)


def test_ctrl_c_saves_nothing_half_written_and_prints_the_resume_command(tmp_path):
    data = paired_tree(tmp_path / "d")
    runs = tmp_path / "runs"
    run = runs / "derain" / "esdnet_cpu"
    run.mkdir(parents=True)
    stale = run / ".esdnet_tiny_current.pth.tmp999999999"  # left by a killed run (no such pid)
    stale.write_bytes(b"x")
    args = [sys.executable, str(REPO / "tools" / "train.py"), "--task", "derain", "--data-dir", str(data),
            "--save-dir", str(runs), "--overwrite", "--threads", "1", "--epochs", "5000", "--set", "data.batch_size=2",
            "--set", "data.patch_size=16", "--set", "train.sample_images=0", "--set", "data.repeat=20"]
    # a shell that starts the tests in the background (`cmd &`) leaves SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler: give the run a terminal's default
    proc = subprocess.Popen(args, cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not list(run.glob("*_current.pth")):
            time.sleep(0.2)
        assert list(run.glob("*_current.pth")), "the first epoch never finished"
        # thousands of epochs: a loaded machine must not let the run end before the signal lands
        assert proc.poll() is None, "the run ended before Ctrl-C was sent"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--exp esdnet_cpu --resume" in err
    assert not stale.exists() and not [p for p in run.iterdir() if ".tmp" in p.name]
    assert torch.load(run / "esdnet_tiny_current.pth", weights_only=False)["epoch"] >= 0  # complete file


# -- data and training checks ------------------------------------------------------------

def test_bad_test_pair_fails_before_training_with_the_command_line_fix(tmp_path):
    data = paired_tree(tmp_path / "d", bad_test=True)
    line = one_line_error(cli("train", "--task", "derain", "--data-dir", data, "--save-dir", tmp_path / "runs",
                              *TINY[:-1]), "size mismatch", "--set data.args.skip_bad=true")
    assert "1.png" in line
    assert not list((tmp_path / "runs").rglob("*.pth"))  # failed before the first epoch


def test_nan_in_a_float_image_names_the_file(tmp_path):
    data = paired_tree(tmp_path / "d")
    arr = np.full((24, 24), 0.5, np.float32)
    arr[3, 4] = np.nan
    for i in range(4):
        (data / "train" / "input" / f"{i}.png").unlink()
        (data / "train" / "target" / f"{i}.png").rename(data / "train" / "target" / f"{i}.tif")
        Image.fromarray(arr).save(data / "train" / "input" / f"{i}.tif")
    proc = cli("train", "--task", "derain", "--data-dir", data, "--save-dir", tmp_path / "runs", *TINY)
    one_line_error(proc, "NaN", ".tif")


def test_divergence_guard():
    from restoration.engine.trainer import DivergenceGuard

    g = DivergenceGuard(patience=3)
    rng = np.random.default_rng(0)
    assert not any(g.update(-12 + 0.5 * rng.standard_normal() - 0.01 * i) for i in range(300))  # noisy, improving
    assert [g.update(177.0) for _ in range(3)] == [False, False, True]
    g = DivergenceGuard(patience=3)
    assert not any(g.update(v) for v in [0.3, 0.25, 0.5, 0.2, 0.21, 0.4])  # an L1 loss with a few bumps
    assert g.update(5.0) is False and g.update(4.0) is False and g.update(3.0) is True


def test_a_diverging_run_stops_and_keeps_no_best(tmp_path):
    data = paired_tree(tmp_path / "d")
    proc = cli("train", "--task", "derain", "--data-dir", data, "--save-dir", tmp_path / "runs", "--threads", 1,
               "--epochs", "3", "--set", "data.batch_size=2", "--set", "data.patch_size=16",
               "--set", "train.sample_images=0", "--set", "data.repeat=8", "--set", "optim.lr=1e3",
               "--set", "sched.warmup_epochs=0")
    line = one_line_error(proc, "diverged", "optim.lr")
    assert "last good checkpoint" in line
    assert not list((tmp_path / "runs").rglob("*_best.pth"))


# -- run folders -------------------------------------------------------------------------

def test_a_locked_run_folder_is_refused_and_the_newest_run_is_picked(tmp_path):
    from restoration.engine.checkpoint import RunLock

    data = paired_tree(tmp_path / "d")
    runs = tmp_path / "runs"
    common = ["--task", "derain", "--data-dir", data, "--save-dir", runs]
    run = runs / "derain" / "esdnet_cpu"
    lock = RunLock(run).acquire()
    try:
        one_line_error(cli("train", *common, "--overwrite", *TINY), "in use by another training")
        assert cli("train", *common, *TINY).returncode == 0  # a fresh folder instead
    finally:
        lock.release()
    assert (runs / "derain" / "esdnet_cpu_2" / "esdnet_tiny_current.pth").is_file()
    proc = cli("test", *common, "--which", "current", "--no-save-images", "--threads", 1)
    assert proc.returncode == 0, proc.out
    assert "esdnet_cpu_2, the newest" in proc.out


def test_auto_tiled_output_equals_untiled_for_a_local_model(tmp_path):
    """Seams included: a model whose receptive field is inside the overlap gives the same
    pixels whether the memory budget forces tiles or not."""
    from restoration.config import load_config
    from restoration.data.images import ImageFiles
    from restoration.engine.inference import restore_folder
    from restoration.registry import build_task

    photo(tmp_path / "in" / "x.png", 150, 230, seed=7)
    cfg = load_config("configs/derain/esdnet_cpu.yaml")
    task = build_task("derain")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 3, 3, padding=1), torch.nn.Sigmoid())
    ds = ImageFiles(tmp_path / "in")
    whole = restore_folder(task, cfg, net, ds, tmp_path / "whole", torch.device("cpu"), max_memory=None)
    tiled = restore_folder(task, cfg, net, ds, tmp_path / "tiled", torch.device("cpu"), max_memory=1)
    assert whole.restored == tiled.restored == ["x.png"]
    assert whole.model_calls == 1 and tiled.model_calls >= 6
    a = np.asarray(Image.open(tmp_path / "whole" / "x.png"))
    b = np.asarray(Image.open(tmp_path / "tiled" / "x.png"))
    assert a.shape == (150, 230, 3) and np.array_equal(a, b)


def test_choose_tile_fits_the_budget():
    from restoration.engine.inference import MemoryModel, choose_tile, parse_memory

    need = MemoryModel(per_pixel=2048, fixed=10e6)
    assert choose_tile(100, 100, need, budget=1e9) is None  # fits whole
    t = choose_tile(2000, 3000, need, budget=1e9, multiple=8, overlap=32)
    assert t % 32 == 0 and need.need(t * t) <= 1e9 < need.need((t + 32) ** 2)
    assert choose_tile(2000, 3000, need, budget=1, overlap=32) == 96  # the smallest useful tile
    assert parse_memory("1.5G") == int(1.5 * 2 ** 30) and parse_memory("800M") == 800 * 2 ** 20
    with pytest.raises(Exception, match="not a size"):
        parse_memory("lots")


def test_test_tool_reports_nan_metrics_and_what_the_mean_covers(tmp_path):
    """A 6-pixel-high test pair has no SSIM: tools/test.py says NaN and counts the mean."""
    data = paired_tree(tmp_path / "d", test_size=(24, 28))
    photo(data / "test" / "target" / "2.png", 6, 28, 2)
    photo(data / "test" / "input" / "2.png", 6, 28, 52)
    proc = cli("test", "--pretrained", "esdnet_tiny", "--data-dir", data, "--result-dir", tmp_path / "r",
               "--threads", 1, "--set", "eval.crop_border=0", "--set", "eval.ms_ssim=false")
    assert proc.returncode == 0, proc.out
    assert "mean (2 of 3, 1 NaN)" in proc.out and "nan" in proc.out.split("2.png")[1].splitlines()[0]


def test_config_not_found_suggests_a_recipe_that_exists(tmp_path):
    line = one_line_error(cli("train", "--task", "derain", "--config", "nope.yaml"), "nope.yaml")
    suggested = [w.rstrip(".,;") for w in line.split() if w.startswith("configs/") and w.endswith((".yaml", ".yaml,"))]
    assert suggested and all((REPO / s).is_file() for s in suggested)
