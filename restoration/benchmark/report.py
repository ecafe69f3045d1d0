"""The benchmark's rows, CSV and markdown report (written to a temporary name, then renamed)."""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ..atomic import write_text
from ..seedstats import SeedStats
from .cost import ENERGY_FORMULA, MEMORY_FORMULA, energy_ratio_line
from .quality import SEED_METRICS, severity_table, verdict
from .suite import stated_item


# -- rows, CSV, markdown ---------------------------------------------------------------

# (key, column title, format); the CSV holds every key, the markdown tables a selection.
FIELDS = [
    ("task", "task", "{}"), ("model", "model", "`{}`"), ("role", "role", "{}"),
    ("params", "params", "{:,.0f}"), ("gmacs", "GMACs", "{:.2f}"), ("gsops", "GSOPs", "{:.3f}"),
    ("spike_mac_share", "spike-fed MACs", "{:.0%}"), ("mean_rate", "firing rate", "{:.3f}"),
    ("energy_mj", "energy (mJ)", "{:.2f}"), ("energy_sram_mj", "E SRAM (mJ)", "{:.2f}"),
    ("energy_dram_mj", "E DRAM (mJ)", "{:.1f}"), ("memory_mbit", "memory (Mbit)", "{:.1f}"),
    ("psnr", "PSNR", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"),
    ("ms_ssim", "MS-SSIM", "{:.4f}"), ("input_psnr", "input PSNR", "{:.2f}"), ("input_ssim", "input SSIM", "{:.4f}"),
    ("output_levels", "output levels", "{:.0f}"),
    ("train_seconds", "train wall (s)", "{:.0f}"), ("train_steps", "train steps", "{:.0f}"),
    ("stated_size", "size", "{}"), ("trained_from", "weights", "{}"),
    # issue 16, appended so that existing CSV columns keep their places
    ("made_worse", "made worse", "{}"), ("made_worse_of", "of images", "{}"), ("n_seeds", "seeds", "{}"),
]
SPEED_FIELDS = [
    ("latency_ms", "latency b1 (ms)", "{:.1f}"), ("throughput", "throughput (img/s)", "{:.2f}"),
    ("train_step_ms", "train step (ms)", "{:.0f}"), ("infer_peak_mb", "infer peak (MB)", "{:.0f}"),
    ("train_peak_mb", "train peak (MB)", "{:.0f}"),
]
QUALITY_COLUMNS = ["model", "role", "params", "gmacs", "gsops", "spike_mac_share", "mean_rate", "energy_mj",
                   "energy_sram_mj", "energy_dram_mj",
                   "psnr", "ssim", "ms_ssim", "made_worse", "output_levels"]


def speed_keys(devices: Sequence[str]) -> List[str]:
    return [f"{d}_{k}" for d in devices for k, _, _ in SPEED_FIELDS]


def csv_keys(rows: Sequence[Mapping[str, Any]]) -> List[str]:
    """The base fields, then any other key the rows carry (speed per device, SNR sweep)."""
    keys = [k for k, _, _ in FIELDS]
    for r in rows:
        for k, v in r.items():
            if k not in keys and not isinstance(v, (dict, list)):  # nested report data stays out
                keys.append(k)
    return keys


_atomic_write_text = write_text  # the earlier name (tests, tools)


def write_csv(rows: Sequence[Mapping[str, Any]], path: os.PathLike) -> Path:
    keys = csv_keys(rows)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(keys)
    for r in rows:
        w.writerow(["" if r.get(k) is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in keys])
    return _atomic_write_text(Path(path), buf.getvalue())


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    try:
        return fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                   titles: Optional[Mapping[str, str]] = None) -> str:
    fmt = {k: (t, f) for k, t, f in FIELDS}
    titles = dict(titles or {})
    heads = [titles.get(c, fmt.get(c, (c, "{}"))[0]) for c in columns]
    lines = ["| " + " | ".join(heads) + " |",
             "|" + "|".join("---" if c in ("model", "role", "task", "device") else "---:" for c in columns) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(c), fmt.get(c, (c, "{}"))[1]) for c in columns) + " |")
    return "\n".join(lines)


def speed_table(rows: Sequence[Mapping[str, Any]], devices: Sequence[str]) -> str:
    """One line per (model, device), and the wall time of the model's training run."""
    lines = ["| model | device | " + " | ".join(t for _, t, _ in SPEED_FIELDS) + " | training run |",
             "|---|---|" + "---:|" * (len(SPEED_FIELDS) + 1)]
    for r in rows:
        run = (f"{r['train_seconds']:.0f} s, {r.get('train_steps')} steps" if r.get("train_seconds") is not None
               else "loaded")
        for d in devices:
            cells = [_cell(r.get(f"{d}_{k}"), f) for k, _, f in SPEED_FIELDS]
            if all(c == "–" for c in cells):
                continue
            lines.append(f"| `{r['model']}` | {d} | " + " | ".join(cells) + f" | {run} |")
    return "\n".join(lines)


def snr_table(curves: Mapping[str, Sequence[Mapping[str, float]]]) -> str:
    """PSNR / MS-SSIM per model (rows) and channel SNR (columns)."""
    if not curves:
        return ""
    snrs = [p["snr_db"] for p in next(iter(curves.values()))]
    head = "| model | " + " | ".join(f"PSNR @{s:g} dB" for s in snrs) + " | " + \
        " | ".join(f"MS-SSIM @{s:g} dB" for s in snrs) + " |"
    lines = [head, "|---|" + "---:|" * (2 * len(snrs))]
    for model, pts in curves.items():
        lines.append(f"| `{model}` | " + " | ".join(f"{p['psnr']:.2f}" for p in pts) + " | " +
                     " | ".join(_cell(p.get("ms_ssim"), "{:.4f}") for p in pts) + " |")
    return "\n".join(lines)


def with_std(row: Mapping[str, Any]) -> Dict[str, Any]:
    """``row`` with its quality cells as 'mean +- std' text where a std over seeds exists."""
    fmt = {k: f for k, _, f in FIELDS}
    r = dict(row)
    for k, _, _ in SEED_METRICS:
        sd = row.get(f"{k}_std")
        if row.get(k) is not None and sd is not None and not math.isnan(sd):
            r[k] = f"{fmt[k].format(row[k])} +- {fmt[k].format(sd)}"
    if row.get("made_worse") is not None and row.get("made_worse_of"):
        r["made_worse"] = f"{row['made_worse']} of {row['made_worse_of']}"
    return r


def markdown_report(rows: Sequence[Mapping[str, Any]], budget_label: str, devices: Sequence[str],
                    curves: Optional[Mapping[str, Mapping[str, Sequence[Mapping[str, float]]]]] = None,
                    notes: Sequence[str] = (), protocols: Optional[Mapping[str, str]] = None,
                    seed_stats: Optional[Mapping[str, Sequence[SeedStats]]] = None) -> str:
    """The run's ``benchmark.md``: per task a quality/cost table (with the degraded
    input's scores where it is an image comparable with the target), the SNR sweep where
    there is one, then one speed/memory table."""
    out = [f"# SNN vs ANN benchmark — {budget_label}", ""]
    out += [f"- {n}" for n in notes]
    out += [f"- Energy: {ENERGY_FORMULA}.", f"- Energy, {MEMORY_FORMULA}.", ""]
    for task in dict.fromkeys(r["task"] for r in rows):
        trs = [r for r in rows if r["task"] == task]
        size = trs[0].get("stated_size")
        unit = stated_item(task, size)
        proto = (protocols or {}).get(task, "")
        out += [f"## {task}", "",
                f"Cost per {unit}; quality on the held-out split ({trs[0].get('n_test', '?')} items{proto}).", ""]
        cols = [c for c in QUALITY_COLUMNS if any(r.get(c) is not None for r in trs)]
        table_rows = [with_std(r) for r in trs]
        if any(r.get("input_psnr") is not None for r in trs):
            r0 = trs[0]
            table_rows.append({"model": "(degraded input)", "role": "no model", "psnr": r0.get("input_psnr"),
                               "ssim": r0.get("input_ssim"), "ms_ssim": r0.get("input_ms_ssim")})
        out += [markdown_table(table_rows, cols), ""]
        ratio = energy_ratio_line(trs)
        if ratio:
            out += [ratio, ""]
        sev = severity_table(trs)
        if sev:
            out += ["Per severity on the held-out real-photo split (made worse: images whose output PSNR is below "
                    "the input's, summed over seeds):", "", sev, ""]
        if seed_stats is not None:
            st = seed_stats.get(task) or []
            out += ["SNN vs ANN twin over seeds (mean +- std over seeds; paired 95% interval over seed x image "
                    "differences; resolved = the interval excludes 0 with at least two seeds):", ""]
            out += [f"- {x.sentence}" for x in st] or ["- no SNN/twin pair in this run"]
            out += ["", verdict(task, trs, st), ""]
        if curves and curves.get(task):
            out += ["Channel SNR sweep (models trained at the recipe's SNR):", "", snr_table(curves[task]), ""]
    out += ["## Speed and memory", "", speed_table(rows, devices), ""]
    return "\n".join(out)
