"""tools/train.py, test.py, infer.py end to end on tiny folders (in-process, tiny models)."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restoration.engine import runner

REPO = Path(__file__).resolve().parent.parent


def write_png(path: Path, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    arr = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return arr


def paired_tree(root: Path, a: str = "input", b: str = "target") -> Path:
    for split, n, (h, w) in (("train", 6, (32, 32)), ("test", 2, (40, 36))):
        for i in range(n):
            clean = write_png(root / split / b / f"{i:03d}.png", h, w, i)
            noisy = np.clip(clean.astype(int) + np.random.default_rng(100 + i).integers(-40, 40, clean.shape), 0, 255)
            (root / split / a).mkdir(parents=True, exist_ok=True)
            Image.fromarray(noisy.astype(np.uint8)).save(root / split / a / f"{i:03d}.png")
    return root


def stereo_tree(root: Path) -> Path:
    for split, n, (h, w) in (("train", 4, (32, 32)), ("test", 1, (24, 40))):
        for i in range(n):
            for view in ("left", "right"):
                write_png(root / split / view / f"{i:03d}.png", h, w, i)
    return root


FAST = ["--epochs", "1", "--threads", "1", "--set", "train.max_steps_per_epoch=2", "--set", "data.batch_size=2",
        "--set", "data.patch_size=16", "--set", "train.sample_images=0"]


@pytest.fixture(scope="module")
def derain_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    data = paired_tree(tmp / "data")
    rc = runner.train_main(["--task", "derain", "--data-dir", str(data), "--save-dir", str(tmp / "runs")] + FAST)
    assert rc == 0
    return tmp, data, tmp / "runs" / "derain" / "esdnet_cpu"


def test_train_writes_run_folder_and_final_table(derain_run):
    tmp, data, run = derain_run
    names = {p.name for p in run.iterdir()}
    assert {"esdnet_tiny_best.pth", "esdnet_tiny_last.pth", "esdnet_tiny_current.pth", "train.log",
            "config.yaml", "results", "tb"} <= names
    log = (run / "train.log").read_text()
    assert "input PSNR (dB)" in log and "gain over input" in log and "Y channel, border 4" in log
    rows = (run / "results" / "test" / "results.csv").read_text().splitlines()
    assert rows[0].startswith("name,psnr,ssim") and [r.split(",")[0] for r in rows[1:]] == ["000.png", "001.png", "mean"]
    assert sorted(p.name for p in (run / "results" / "test" / "imgs").iterdir()) == ["000.png", "001.png"]


def test_second_run_gets_a_new_folder_and_resume_continues(derain_run):
    tmp, data, run = derain_run
    common = ["--task", "derain", "--data-dir", str(data), "--save-dir", str(tmp / "runs")]
    assert runner.train_main(common + FAST + ["--no-final-test"]) == 0
    second = run.with_name("esdnet_cpu_2")
    assert (second / "esdnet_tiny_current.pth").is_file()
    fast2 = [a if a != "1" else "2" for a in FAST]  # --epochs 2
    assert runner.train_main(common + fast2 + ["--exp", "esdnet_cpu_2", "--resume", "--no-final-test"]) == 0
    log = (second / "train.log").read_text()
    assert "resumed from" in log and "epoch 2/2  loss" in log
    import torch

    assert torch.load(second / "esdnet_tiny_current.pth", weights_only=False)["epoch"] == 1


def test_test_tool_reproduces_the_final_table(derain_run, capsys):
    tmp, data, run = derain_run
    out = tmp / "eval"
    assert runner.test_main(["--task", "derain", "--run-dir", str(run), "--data-dir", str(data), "--which", "last",
                             "--result-dir", str(out), "--threads", "1"]) == 0
    a = (run / "results" / "test" / "results.csv").read_text().splitlines()[-1]
    b = (out / "results.csv").read_text().splitlines()[-1]
    assert a == b  # the same weights give the same numbers
    assert "output PSNR" in capsys.readouterr().out


def test_infer_restores_any_size_with_same_names(derain_run):
    tmp, data, run = derain_run
    src = tmp / "mine"
    write_png(src / "a.png", 37, 29, 1)
    write_png(src / "b.png", 50, 64, 2)
    (src / "notes.txt").write_text("not an image")
    out = tmp / "restored"
    assert runner.infer_main(["--task", "derain", "--run-dir", str(run), "--input", str(src), "--output", str(out),
                              "--threads", "1", "--tile", "32", "--tile-overlap", "8"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png"]
    assert Image.open(out / "a.png").size == (29, 37) and Image.open(out / "b.png").size == (64, 50)


def test_user_errors_are_one_line_naming_the_fix(derain_run, capsys):
    tmp, data, run = derain_run
    rc = runner.train_main(["--task", "derain", "--data-dir", str(data), "--save-dir", str(tmp / "x"),
                            "--set", "optim.lrr=1"])
    err = capsys.readouterr().err
    assert rc == 1 and "unknown config key 'optim.lrr'" in err and "Did you mean 'optim.lr'" in err
    assert "Traceback" not in err
    rc = runner.test_main(["--task", "derain", "--run-dir", str(tmp / "nowhere")])
    assert rc == 1 and "train first" in capsys.readouterr().err
    rc = runner.infer_main(["--task", "derain", "--run-dir", str(run), "--input", str(tmp / "absent"),
                            "--output", str(tmp / "o"), "--snr", "3"])
    assert rc == 1 and "--snr applies to tasks with a channel" in capsys.readouterr().err
    rc = runner.train_main(["--task", "derainn"])
    assert rc == 1 and "Did you mean 'derain'" in capsys.readouterr().err


def test_stereo_train_then_infer_writes_left_and_right(tmp_path):
    data = stereo_tree(tmp_path / "stereo")
    args = ["--task", "stereo_jscc", "--config", "stereo_jscc/dhf_jscc_cnn_cpu.yaml", "--data-dir", str(data), "--save-dir",
            str(tmp_path / "runs"), "--set", "model.args.width=8", "--set", "model.args.entropy=false"] + FAST
    args += ["--set", "loss.terms=[{name: mse}]"]
    assert runner.train_main(args) == 0
    run = tmp_path / "runs" / "stereo_jscc" / "dhf_jscc_cnn_cpu"
    rows = (run / "results" / "test" / "results.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["left/000.png", "right/000.png", "mean"]
    outs = {}
    for snr in ("30", "-5"):
        out = tmp_path / f"recon{snr}"
        assert runner.infer_main(["--task", "stereo_jscc", "--run-dir", str(run), "--input", str(data / "test"),
                                  "--snr", snr, "--output", str(out), "--threads", "1"]) == 0
        assert sorted(str(p.relative_to(out)) for p in out.rglob("*.png")) == ["left/000.png", "right/000.png"]
        assert Image.open(out / "left" / "000.png").size == (40, 24)
        outs[snr] = np.asarray(Image.open(out / "left" / "000.png"), dtype=float)
    assert np.abs(outs["30"] - outs["-5"]).mean() > 0.5  # the channel SNR reached the model


def test_dehazesnn_flag_aliases_select_recipe_and_data_root():
    p = runner.train_parser()
    args = p.parse_args(["--task", "dehaze", "--model", "DehazeSNN-M", "--exp", "indoor", "--dataset", "its",
                         "--data_dir", "/d", "--save_dir", "/s", "--resume", "false", "--fine_tuning", "true"])
    cfg, recipe = runner.build_config(args)
    assert recipe.name == "dehazesnn_m_indoor.yaml" and cfg.model.name == "dehazesnn_m"
    assert cfg.data.root == "/d/its" and args.save_dir == "/s"
    assert args.resume is False and args.fine_tune is True
    args = p.parse_args(["--task", "dehaze", "--model", "dehazesnn_m", "--exp", "reside6k", "--data-dir", "/d"])
    assert runner.build_config(args)[1].name == "dehazesnn_m.yaml"  # no _reside6k file: the model's recipe
    args = p.parse_args(["--task", "dehaze", "--model", "dehazesnn_m"])
    assert runner.build_config(args)[1].name == "dehazesnn_m_cpu.yaml"  # built-in data: the CPU sibling
    args = p.parse_args(["--task", "derain", "--model", "esdnet_ann", "--data-dir", "/d"])
    cfg, recipe = runner.build_config(args)
    assert recipe.name == "esdnet.yaml" and cfg.model.name == "esdnet_ann"  # the twin uses its SNN's recipe
    args = p.parse_args(["--task", "derain", "--model", "esdnet_tiny_ann"])
    cfg, recipe = runner.build_config(args)
    assert recipe.name == "esdnet_cpu.yaml" and cfg.model.name == "esdnet_tiny_ann"


def test_gpu_alias_sets_visible_devices(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    args = runner.train_parser().parse_args(["--task", "derain", "--gpu", "1,2", "--threads", "1"])
    runner._apply_env_flags(args)
    import os

    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1,2" and args.device == "cuda"


@pytest.mark.parametrize("make", [runner.train_parser, runner.test_parser, runner.infer_parser])
def test_every_flag_is_explained(make):
    for action in make()._actions:
        assert action.help and len(action.help) > 10, action.option_strings


def test_tools_run_from_a_clone_without_install(tmp_path):
    """``python tools/train.py --help`` from another folder: the repo root is made importable."""
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "train.py"), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr
    assert "--task" in proc.stdout and "--resume" in proc.stdout


def test_fine_tune_scales_the_recipe_and_starts_from_the_weights(derain_run):
    import torch
    import yaml

    tmp, data, run = derain_run
    base = run / "esdnet_tiny_last.pth"
    assert runner.train_main(["--task", "derain", "--data-dir", str(data), "--save-dir", str(tmp / "ft"),
                              "--fine-tune", str(base), "--no-final-test"] + FAST[:2] + ["--epochs", "5"]
                             + FAST[2:]) == 0
    ft_run = tmp / "ft" / "derain" / "esdnet_cpu"
    cfg = yaml.safe_load((ft_run / "config.yaml").read_text())
    assert cfg["train"]["epochs"] == 1  # 5 x 0.2
    assert cfg["optim"]["lr"] == pytest.approx(0.1 * yaml.safe_load((run / "config.yaml").read_text())["optim"]["lr"])
    assert "fine-tuning from" in (ft_run / "train.log").read_text()
    assert torch.load(ft_run / "esdnet_tiny_current.pth", weights_only=False)["epoch"] == 0


def test_last_n_scores_the_saved_epochs(derain_run, capsys):
    tmp, data, run = derain_run
    common = ["--task", "derain", "--data-dir", str(data), "--save-dir", str(tmp / "ln"), "--no-final-test"]
    fast2 = [a if a != "1" else "2" for a in FAST]
    assert runner.train_main(common + fast2 + ["--set", "train.keep_last_epochs=2"]) == 0
    ln_run = tmp / "ln" / "derain" / "esdnet_cpu"
    assert runner.test_main(["--task", "derain", "--run-dir", str(ln_run), "--data-dir", str(data), "--last-n", "2",
                             "--no-save-images", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "esdnet_tiny_epoch_0000.pth" in out and "esdnet_tiny_epoch_0001.pth" in out
