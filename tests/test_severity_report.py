"""The per-severity report and the "made worse: k of n" count (restoration/engine/evaluator.py),
through the evaluator and tools/test.py on a tiny held-out split made here."""
import math

import pytest
import torch
import torch.nn as nn

from restoration.config import CONFIG_ROOT, load_config
from restoration.data.synthetic import make_dataset
from restoration.engine.evaluator import (Evaluator, format_table, group_stats, severity_of, severity_report,
                                          summarize)
from restoration.registry import build_task

TINY = dict(train_size=32, test_size=(32, 48), motorcycle=0)


def test_severity_is_read_from_the_name():
    assert severity_of("heavy_00005.png") == "heavy" and severity_of("sub/Light-3.jpg") == "light"
    assert severity_of("medium.png") == "medium"
    assert severity_of("00005.png") is None and severity_of("heavyweight_1.png") is None


def test_report_groups_counts_and_nan():
    rows = [dict(name="light_0.png", input_psnr=35.0, psnr=30.0, input_ssim=0.95, ssim=0.9),
            dict(name="light_3.png", input_psnr=33.0, psnr=34.0, input_ssim=0.9, ssim=0.92),
            dict(name="medium_1.png", input_psnr=25.0, psnr=27.0, input_ssim=0.7, ssim=0.8),
            dict(name="heavy_2.png", input_psnr=15.0, psnr=float("nan"), input_ssim=0.4, ssim=0.6)]
    groups = severity_report(rows)
    assert list(groups) == ["light", "medium", "heavy", "all"]
    light = groups["light"]
    assert light["n"] == 2 and light["worse"] == 1 and light["n_compared"] == 2
    assert light["worst"] == pytest.approx(-5.0) and light["worst_name"] == "light_0.png"
    assert light["psnr"] == pytest.approx(32.0) and light["gain"] == pytest.approx(-2.0)
    heavy = groups["heavy"]
    assert heavy["nan"] == 1 and "psnr" not in heavy and "worse" not in heavy  # nothing to compare
    assert groups["all"]["worse"] == 1 and groups["all"]["n_compared"] == 3 and groups["all"]["nan"] == 1
    table = format_table(summarize(rows), rows)
    mean_line = next(line for line in table.splitlines() if line.startswith("mean ("))
    assert mean_line.startswith("mean (3 of 4, 1 NaN)")
    assert "the means cover 3 of 4 images; NaN/inf metric in: heavy_2.png" in table
    assert "made worse: 1 of 3 (worst -5.00 dB, light_0.png)" in table
    assert "heavy_2.png" in table and " nan " in next(line for line in table.splitlines() if "heavy_2" in line) + " "
    per = table[table.index("per severity"):]
    assert "1 of 2" in per and "1 image(s) with a NaN/inf metric" in per
    assert math.isnan(rows[3]["psnr"])  # the report does not touch the rows


def test_no_severity_names_no_severity_table():
    rows = [dict(name="0001.png", input_psnr=20.0, psnr=22.0)]
    table = format_table(summarize(rows), rows)
    assert "per severity" not in table and "made worse: 0 of 1" in table
    assert group_stats([])["n"] == 0


class Grey(nn.Module):
    """A model known to make images worse: it answers every picture with flat grey."""

    def forward(self, x):
        return torch.full_like(x, 0.5)


@pytest.fixture(scope="module")
def heldout(tmp_path_factory):
    return make_dataset("derain", tmp_path_factory.mktemp("h") / "set", 0, 3, seed=1, progress=False, **TINY)


def _evaluate(model, root):
    cfg = load_config(CONFIG_ROOT / "derain" / "esdnet_cpu.yaml", [f"data.root={root}"])
    task = build_task("derain")
    data = task.build_dataset(cfg, "test", False)
    res = Evaluator(task, cfg, "cpu").evaluate(model, data, full=True)
    return res, format_table(res.summary, res.rows)


def test_a_model_that_makes_images_worse_is_counted(heldout):
    res, table = _evaluate(Grey(), heldout)
    assert "made worse: 3 of 3" in table
    groups = severity_report(res.rows)
    assert all(groups[lev]["worse"] == 1 and groups[lev]["n_compared"] == 1 for lev in ("light", "medium", "heavy"))
    per = table[table.index("per severity"):].splitlines()
    for lev in ("light", "medium", "heavy"):
        assert "1 of 1" in next(line for line in per if line.startswith(lev))
    assert "3 of 3" in next(line for line in per if line.startswith("all"))
    _, same = _evaluate(nn.Identity(), heldout)  # changing nothing harms nothing
    assert "made worse: 0 of 3" in same


def test_test_tool_prints_and_saves_the_per_severity_table(heldout, tmp_path):
    from restoration.engine.runner import test_main

    out = tmp_path / "res"
    assert test_main(["--pretrained", "esdnet_tiny", "--data-dir", str(heldout), "--result-dir", str(out),
                      "--no-save-images", "--threads", "1"]) == 0
    summary = (out / "summary.txt").read_text()
    assert "made worse:" in summary and "per severity" in summary
    for lev in ("light", "medium", "heavy", "all"):
        assert any(line.startswith(lev) for line in summary.splitlines())
