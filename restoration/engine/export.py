"""Ship the weights of a finished training run: pretrained/<name>.pth plus its entry in
pretrained/MANIFEST.yaml (how it was made, sha256, held-out metrics from tools/test.py).

    python tools/export_pretrained.py --run-dir runs/derain/esdnet_tiny --name esdnet_tiny --role SNN \\
        --default --train-command "python tools/train.py --config derain/esdnet_tiny_pretrained.yaml --exp esdnet_tiny"

Steps: the run's final weights (``<model>_last.pth``; the best-on-validation file is not
used, because validation here is the held-out split) are written without optimiser state
to a temporary name and renamed; the entry is added (or replaced); then
``tools/test.py --pretrained <name>`` runs in this process and its mean metrics are stored
in the entry with that command. ``--metrics-only`` re-measures an existing entry.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import os
import re
import tempfile
from pathlib import Path

import torch
import yaml

from ..atomic import write_text
from ..checkpoint import atomic_save, load_checkpoint, weights_from
from ..config import CONFIG_ROOT
from ..pretrained import MANIFEST_NAME, pretrained_dir, read_manifest, sha256_of
from ..runtime import set_threads
from .log import cpu_name


HEADER = """\
# Shipped pretrained weights. One entry per file: how it was made and how good it is.
# Written by tools/export_pretrained.py (do not edit the numbers by hand): `file` and
# `sha256` are checked by restoration.load_pretrained(name); `metrics` are the means
# printed by `metrics.command` (tools/test.py) on the held-out split of the recipe's
# built-in generated set (data.builtin, made with data.generator_seed): held-out real
# photographs at light, medium and heavy severity, with `per_severity` gain and images made
# worse. An entry whose metrics.command pins `--set data.builtin.test_source=motorcycle` was
# trained and measured with generator version 1 (heavy rain / haze beta 0.6-1.8, the
# Middlebury test split); its real-photo results are in docs/PRETRAINED.md.
# `default: true` marks the weights tools/infer.py uses for a task when no checkpoint is given.
"""

METRIC_KEYS = ("psnr", "ssim", "input_psnr", "input_ssim", "ms_ssim", "ciede2000")


def machine(threads: int) -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}; torch {torch.__version__}"
    return f"{cpu_name()}, {os.cpu_count()} logical cores, {threads} torch thread(s), no GPU; torch {torch.__version__}"


def read_train_log(run_dir: Path) -> dict:
    """Wall time, recipe, start date and thread count from the run's train.log."""
    text = (run_dir / "train.log").read_text() if (run_dir / "train.log").is_file() else ""
    out = {}
    # A resumed run's log has one segment per start; its cost is the sum of the segments
    # (first to last timestamp each), the time lost to an interruption included.
    segments = re.split(r"\n(?=\S+ \S+ INFO task .*, recipe .*, run folder)", text)
    if len(segments) > 1:
        total = 0.0
        for seg in segments:
            stamps = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)", seg, flags=re.M)
            if stamps:
                t = [datetime.datetime.strptime(x, "%Y-%m-%d %H:%M:%S") for x in (stamps[0], stamps[-1])]
                total += (t[1] - t[0]).total_seconds()
        out["wall_time_s"], out["resumed"] = round(total), len(segments) - 1
    elif m := re.search(r"total wall time ([0-9.]+) s", text):
        out["wall_time_s"] = round(float(m.group(1)))
    if m := re.search(r"recipe (\S+), run folder", text):
        out["recipe"] = os.path.relpath(m.group(1), CONFIG_ROOT.parent) if os.path.isabs(m.group(1)) else m.group(1)
    if m := re.match(r"(\d{4}-\d\d-\d\d)", text):
        out["date"] = m.group(1)
    return out


def write_manifest(entries: dict, directory: Path) -> None:
    body = yaml.safe_dump({"models": list(entries.values())}, sort_keys=False, width=110)
    path = directory / MANIFEST_NAME
    write_text(path, HEADER + body)


def measure(name: str) -> dict:
    """Run tools/test.py --pretrained NAME here and return the mean row of its results.csv."""
    from .runner import test_main

    with tempfile.TemporaryDirectory() as tmp:
        rc = test_main(["--pretrained", name, "--no-save-images", "--result-dir", tmp])
        if rc:
            raise SystemExit(f"tools/test.py --pretrained {name} failed (exit {rc})")
        with open(Path(tmp) / "results.csv") as f:
            rows = list(csv.DictReader(f))
    mean = next(r for r in rows if r["name"] == "mean")
    out = {"command": f"python tools/test.py --pretrained {name}", "split": "test", "images": len(rows) - 1,
           **{k: round(float(mean[k]), 4) for k in METRIC_KEYS if mean.get(k)}}
    per_image = [{k: (v if k == "name" else float(v)) for k, v in r.items() if v not in ("", None)}
                 for r in rows if r["name"] != "mean"]
    severity = do_no_harm(per_image)
    if severity:
        out["per_severity"] = severity
    return out


def do_no_harm(rows) -> dict:
    """Per severity (and 'all'): mean input and output PSNR, mean gain, images made worse and
    the worst change, from the evaluator's own grouping; empty without input PSNRs."""
    from .evaluator import severity_report

    out = {}
    for level, g in severity_report(rows).items():
        if "worse" in g:
            out[level] = {"images": g["n_compared"], "input_psnr": round(g["input_psnr"], 2),
                          "psnr": round(g["psnr"], 2), "gain": round(g["gain"], 2),
                          "made_worse": g["worse"], "worst_gain": round(g["worst"], 2)}
    return out


def export(args) -> dict:
    run_dir = Path(args.run_dir)
    ck_path = next(iter(sorted(run_dir.glob(f"*_{args.which}.pth"))), None)
    if ck_path is None:
        raise SystemExit(f"no *_{args.which}.pth in {run_dir}: has the run finished?")
    ck = load_checkpoint(ck_path)
    cfg = ck["config"]
    state = weights_from(ck)
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    directory = pretrained_dir()
    directory.mkdir(parents=True, exist_ok=True)
    file = f"{args.name}.pth"
    atomic_save({"model": state, "config": cfg, "name": args.name}, directory / file)
    log = read_train_log(run_dir)
    threads = args.threads
    entry = {
        "name": args.name, "task": cfg["task"], "model": cfg["model"]["name"], "role": args.role,
        "default": bool(args.default), "file": file, "sha256": sha256_of(directory / file),
        "size_bytes": (directory / file).stat().st_size,
        "params": None,  # filled below from the built model
        "model_args": cfg["model"].get("args") or {},
        "recipe": log.get("recipe", "?"), "train_command": args.train_command,
        "data": {"source": "built-in generated set (restoration.data.synthetic, tools/make_data.py)",
                 "builtin": cfg["data"].get("builtin") or {}, "generator_seed": 0,
                 "patch_size": cfg["data"]["patch_size"], "batch_size": cfg["data"]["batch_size"]},
        "training": {"seed": cfg.get("seed"), "epochs": cfg["train"]["epochs"], "weights": ck_path.name,
                     "wall_time_s": log.get("wall_time_s"), "date": log.get("date", str(datetime.date.today())),
                     "machine": machine(threads),
                     **({"resumed": log["resumed"]} if log.get("resumed") else {})},
        "notes": args.notes or "",
    }
    entries = read_manifest(directory) if (directory / MANIFEST_NAME).is_file() else {}
    entries[args.name] = entry
    if args.default:  # one default per task
        for n, e in entries.items():
            if n != args.name and e.get("task") == entry["task"]:
                e["default"] = False
    write_manifest(entries, directory)
    from ..pretrained import load_pretrained

    entry["params"] = int(sum(p.numel() for p in load_pretrained(args.name).parameters()))
    write_manifest(entries, directory)
    return entries


def worse_cell(metrics: dict) -> str:
    """'k of n (-x.xx)' over every held-out image, or '' where nothing was compared."""
    g = (metrics.get("per_severity") or {}).get("all")
    if not g:
        return ""
    return f"{g['made_worse']} of {g['images']}" + (f" ({g['worst_gain']:+.2f})" if g["made_worse"] else "")


def markdown_table(entries: dict) -> str:
    """The manifest as the table of docs/PRETRAINED.md and README (``--table``)."""
    lines = ["| name | task | role | params | size | trained (1 CPU thread) | held-out PSNR / SSIM | input PSNR / SSIM "
             "| made worse (worst dB) |",
             "|---|---|---|---:|---:|---:|---|---|---:|"]
    for n, e in entries.items():
        m, t = e.get("metrics") or {}, e.get("training") or {}
        inp = f"{m['input_psnr']:.2f} / {m['input_ssim']:.3f}" if "input_psnr" in m else "(no degraded input)"
        lines.append(f"| `{n}`{' (default)' if e.get('default') else ''} | {e['task']} | {e['role']} | "
                     f"{e['params'] / 1e3:,.0f} k | {e['size_bytes'] / 1e6:.1f} MB | "
                     f"{(t.get('wall_time_s') or 0) / 60:.0f} min, {t.get('epochs')} epochs | "
                     f"{m.get('psnr', float('nan')):.2f} / {m.get('ssim', float('nan')):.3f} | {inp} | "
                     f"{worse_cell(m)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tools/export_pretrained.py", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", help="name of the shipped weights (pretrained/<name>.pth)")
    p.add_argument("--table", action="store_true", help="only print the manifest as a markdown table")
    p.add_argument("--run-dir", help="finished run folder (runs/<task>/<exp>)")
    p.add_argument("--which", default="last", choices=["last", "best", "current"])
    p.add_argument("--role", default="SNN", help="SNN, ANN twin or ANN baseline")
    p.add_argument("--default", action="store_true", help="make these the task's default weights")
    p.add_argument("--train-command", default="", help="the command that trained the run (quoted in the manifest)")
    p.add_argument("--threads", type=int, default=1, help="torch threads the run used (recorded)")
    p.add_argument("--notes", help="free text for the entry")
    p.add_argument("--metrics-only", action="store_true", help="only re-measure the metrics of an existing entry")
    args = p.parse_args(argv)
    set_threads()
    directory = pretrained_dir()
    if args.table:
        print(markdown_table(read_manifest(directory)))
        return 0
    if not args.name:
        p.error("--name is required (or --table)")
    if not args.metrics_only:
        if not args.run_dir:
            p.error("--run-dir is required (or --metrics-only)")
        export(args)
    entries = read_manifest(directory)
    entries[args.name]["metrics"] = measure(args.name)
    write_manifest(entries, directory)
    m = entries[args.name]["metrics"]
    print(f"{args.name}: {directory / entries[args.name]['file']} "
          f"({entries[args.name]['size_bytes'] / 1e6:.2f} MB), PSNR {m['psnr']:.2f} dB"
          + (f" (input {m['input_psnr']:.2f})" if "input_psnr" in m else ""))
    return 0
