"""The promise of the task registry: a new task is one file, with no edit to the library.

A denoising task written in a file outside the package (registered through the
``RESTORATION_PLUGINS`` variable) trains, tests, restores a folder and runs the benchmark
through the same entry points as the built-in tasks. Its recipe is a YAML file beside it.
"""
import csv
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from restoration.engine import runner

sys.path.insert(0, str(Path(__file__).parent))
from test_cli import paired_tree, write_png  # noqa: E402

PLUGIN = '''
from pathlib import Path

from restoration.engine.task import BenchmarkSuite, ModelSpec, PairedImageTask
from restoration.registry import TASKS

RECIPE = str(Path(__file__).with_name("denoise.yaml"))


@TASKS.register("denoise_plugin_test")
class Denoise(PairedImageTask):
    name = "denoise_plugin_test"
    default_config = RECIPE
    benchmark_suite = BenchmarkSuite(
        models=(ModelSpec("esdnet_tiny", "SNN", RECIPE), ModelSpec("esdnet_tiny_ann", "ANN twin", RECIPE)),
        stated_size=32,
        budgets={"quick": {"patch_size": 16, "batch_size": 2, "epochs": 1, "steps": 2}})
'''

RECIPE = '''
task: denoise_plugin_test
model: {name: esdnet_tiny}
data: {patch_size: 16, batch_size: 2, num_workers: 0}
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
    data = paired_tree(tmp_path / "data")
    runs = tmp_path / "runs"
    task = ["--task", "denoise_plugin_test", "--threads", "1"]

    assert runner.train_main(task + ["--data-dir", str(data), "--save-dir", str(runs)]) == 0
    run = runs / "denoise_plugin_test" / "denoise"
    assert (run / "esdnet_tiny_last.pth").is_file() and (run / "results" / "test" / "results.csv").is_file()

    assert runner.test_main(task + ["--run-dir", str(run), "--data-dir", str(data), "--which", "last",
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
                      "--data-dir", f"denoise_plugin_test={data}", "--out", str(out)]) == 0
    with open(out / "benchmark.csv") as f:
        rows = {r["model"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"esdnet_tiny", "esdnet_tiny_ann"} and rows["esdnet_tiny"]["train_steps"] == "2"
    assert "Cost per one 32x32 image" in (out / "benchmark.md").read_text()
