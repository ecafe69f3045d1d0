"""The promise of the task registry: a new task is one file, with no edit to the library.

A denoising task written in a file outside the package (registered through the
``RESTORATION_PLUGINS`` variable), with a few-line sampler for its built-in data, makes its
data set, trains, tests, restores a folder and runs the benchmark through the same entry
points as the built-in tasks, on built-in data. Its recipe is a YAML file beside it.
"""
import csv
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from restoration.engine import runner

from restoration.data import cli as make_data

sys.path.insert(0, str(Path(__file__).parent))
from test_cli import write_png  # noqa: E402

PLUGIN = '''
from pathlib import Path

import numpy as np

from restoration.data import sources
from restoration.data.synthetic import COMMON_OPTIONS, PAIRED_OPTIONS, BuiltinData, Option, sample_name
from restoration.engine.task import BenchmarkSuite, ModelSpec, PairedImageTask
from restoration.registry import TASKS

RECIPE = str(Path(__file__).with_name("denoise.yaml"))


def noisy_pair(rng, split, i, opt):
    level, stem = sample_name(split, i)
    size = int(opt["train_size"])
    clean = (sources.clean_image(rng, size, size, opt["procedural"]) if split == "train"
             else sources.heldout_photo(rng, i, opt["test_size"]))
    sigma = opt["sigma"] * max(0.05, sources.severity_value(rng, level, opt["clean_share"]))
    noisy = np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 1)
    return {f"input/{stem}.png": noisy, f"target/{stem}.png": clean}


@TASKS.register("denoise_plugin_test")
class Denoise(PairedImageTask):
    name = "denoise_plugin_test"
    default_config = RECIPE
    builtin = BuiltinData(noisy_pair, counts=(6, 3), layout="<out>/{train,test}/{input,target}",
                          options={**{k: COMMON_OPTIONS[k] for k in PAIRED_OPTIONS},
                                   "sigma": Option(0.2, "noise std at the heaviest severity")})
    benchmark_suite = BenchmarkSuite(
        models=(ModelSpec("esdnet_tiny", "SNN", RECIPE), ModelSpec("esdnet_tiny_ann", "ANN twin", RECIPE)),
        stated_size=32,
        budgets={"quick": {"patch_size": 16, "batch_size": 2, "epochs": 1, "steps": 2},
                 "tiny": {"patch_size": 16, "batch_size": 1, "epochs": 1, "steps": 1, "label": "TINY: one step"}})
'''

RECIPE = '''
task: denoise_plugin_test
model: {name: esdnet_tiny}
data: {patch_size: 16, batch_size: 2, num_workers: 0,
       builtin: {train_size: 32, test_size: [32, 48], motorcycle: 0}}
loss: {terms: [{name: l1, weight: 1.0}]}
optim: {name: adamw, lr: 1.0e-3}
train: {epochs: 1, max_steps_per_epoch: 2, eval_freq: 1, sample_images: 0}
'''


@pytest.mark.slow
def test_a_task_from_one_file_outside_the_package(tmp_path, monkeypatch):
    (tmp_path / "denoise.py").write_text(textwrap.dedent(PLUGIN))
    (tmp_path / "denoise.yaml").write_text(textwrap.dedent(RECIPE))
    monkeypatch.setenv("RESTORATION_PLUGINS", str(tmp_path / "denoise.py"))
    monkeypatch.setenv("RESTORATION_NO_TQDM", "1")
    monkeypatch.setenv("SNN_RESTORATION_DATA", str(tmp_path / "cache"))  # where built-in sets are made
    runs = tmp_path / "runs"
    task = ["--task", "denoise_plugin_test", "--threads", "1"]

    # its built-in data, written where the user asks, in the layout its sampler names
    assert make_data.main(["--task", "denoise_plugin_test", "--out", str(tmp_path / "made"), "--no-progress",
                           "--train-size", "32", "--test-size", "32,48", "--sigma", "0.3"]) == 0
    made = sorted(str(p.relative_to(tmp_path / "made")) for p in (tmp_path / "made").rglob("*.png"))
    assert len(made) == 2 * (6 + 3 + 8) and "test/input/medium_00001.png" in made and "train/target/00005.png" in made

    assert runner.train_main(task + ["--save-dir", str(runs)]) == 0  # no --data-dir: the built-in set
    run = runs / "denoise_plugin_test" / "denoise"
    assert (run / "esdnet_tiny_last.pth").is_file() and (run / "results" / "test" / "results.csv").is_file()
    assert [p.name.split("-")[0] for p in (tmp_path / "cache").iterdir()] == ["denoise_plugin_test"]

    assert runner.test_main(task + ["--run-dir", str(run), "--which", "last",
                                    "--result-dir", str(tmp_path / "eval")]) == 0
    assert (tmp_path / "eval" / "results.csv").read_text().splitlines()[-1] == \
        (run / "results" / "test" / "results.csv").read_text().splitlines()[-1]

    write_png(tmp_path / "mine" / "photo.png", 27, 35, 3)
    assert runner.infer_main(task + ["--run-dir", str(run), "--input", str(tmp_path / "mine"),
                                     "--output", str(tmp_path / "out")]) == 0
    assert Image.open(tmp_path / "out" / "photo.png").size == (35, 27)

    import importlib.util

    spec = importlib.util.spec_from_file_location("_bench_tool", Path(__file__).parents[1] / "tools" / "benchmark.py")
    tool = importlib.util.module_from_spec(spec)
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "tools"))
    spec.loader.exec_module(tool)
    out = tmp_path / "bench"
    assert tool.main(["--tasks", "denoise_plugin_test", "--budget", "quick", "--no-speed", "--threads", "1",
                      "--out", str(out)]) == 0
    from restoration.benchmark import BUDGETS

    assert BUDGETS["tiny"]["label"] == "TINY: one step" and list(BUDGETS["tiny"]["tasks"]) == ["denoise_plugin_test"]
    with open(out / "benchmark.csv") as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"esdnet_tiny", "esdnet_tiny_ann"} and rows["esdnet_tiny"]["train_steps"] == "2"
    assert "Cost per one 32x32 image" in (out / "benchmark.md").read_text()
