"""Quality over seeds: per-seed aggregation, the SNN-vs-twin comparison with its statistics,
per-severity quality and the verdict line of the report."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from ..seedstats import SeedStats, paired_seed_stats
from .cost import energy_ratio_line


# -- seeds: aggregation and the SNN-vs-twin comparison (issue 16) -------------------------

SEED_METRICS = (("psnr", "PSNR", "dB"), ("ssim", "SSIM", ""), ("ms_ssim", "MS-SSIM", ""))


def aggregate_seeds(seed_rows: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
    """One row from the rows of one model over seeds: every numeric field is the mean over
    seeds (same key, so one-seed outputs keep their columns) and the quality fields gain a
    ``<key>_std`` (sample std, NaN with one seed); ``n_seeds`` counts the seeds."""
    out: Dict[str, Any] = dict(seed_rows[0])
    n = len(seed_rows)
    for k, v in seed_rows[0].items():
        vals = [r.get(k) for r in seed_rows]
        if isinstance(v, (int, float)) and not isinstance(v, bool) and all(
                isinstance(x, (int, float)) for x in vals):
            a = np.asarray(vals, dtype=np.float64)
            # equal values (sizes, step counts) keep their type; others become the mean
            out[k] = v if bool((a == a[0]).all()) else float(a.mean())
            if k in {m for m, _, _ in SEED_METRICS} or k.startswith("psnr_") or k.endswith("_psnr"):
                out[f"{k}_std"] = float(a.std(ddof=1)) if n > 1 else math.nan
    if "seed" in out:
        seeds = [r.get("seed") for r in seed_rows]
        out["seed"] = seeds[0] if n == 1 else " ".join(str(x) for x in seeds)
    out["n_seeds"] = n
    return out


def seed_comparisons(per_image: Mapping[str, Mapping[str, Sequence[Sequence[Mapping[str, Any]]]]],
                     roles: Mapping[str, str]) -> Dict[str, List[SeedStats]]:
    """``{task: [SeedStats per metric]}`` of the task's SNN against its ANN twin, from
    ``per_image[task][model][seed]`` = the evaluator's per-image rows (same images, same
    order, for every seed). Tasks without both roles are left out."""
    out: Dict[str, List[SeedStats]] = {}
    for task, models in per_image.items():
        snn = next((m for m in models if roles.get(m) == "SNN"), None)
        twin = next((m for m in models if roles.get(m) == "ANN twin"), None)
        if snn is None or twin is None:
            continue
        stats = []
        for key, name, unit in SEED_METRICS:
            a = [[r.get(key) for r in seed] for seed in models[snn]]
            b = [[r.get(key) for r in seed] for seed in models[twin]]
            if any(x is None for s in a + b for x in s):
                continue
            stats.append(paired_seed_stats(a, b, metric=name, unit=unit, snn_name=f"`{snn}`",
                                           twin_name=f"`{twin}`"))
        out[task] = stats
    return out


def severity_quality(seeds: Sequence[Sequence[Mapping[str, Any]]]) -> Dict[str, Dict[str, Any]]:
    """Per severity of the held-out real-photo split (and 'all'), over seeds: PSNR, SSIM,
    MS-SSIM and input PSNR as mean (``<k>``) and std over seeds (``<k>_std``) of the per-seed
    means, mean gain, and images made worse summed over seeds (``worse`` of ``n_compared``).
    The do-no-harm counts are the evaluator's own (:func:`severity_report`, as the trainer's
    final table and tools/export_pretrained.py's do_no_harm); empty when no item has an
    input PSNR (stereo JSCC)."""
    from ..engine.evaluator import SEVERITY_LEVELS, severity_of, severity_report

    per_seed = [severity_report(list(rows)) for rows in seeds]
    out: Dict[str, Dict[str, Any]] = {}
    for level in (*SEVERITY_LEVELS, "all"):
        reps = [rep[level] for rep in per_seed if level in rep and "worse" in rep[level]]
        if len(reps) != len(seeds) or not reps:
            continue
        g: Dict[str, Any] = {"images": reps[0]["n_compared"], "worse": sum(r["worse"] for r in reps),
                             "n_compared": sum(r["n_compared"] for r in reps),
                             "gain": float(np.mean([r["gain"] for r in reps]))}
        for key in ("input_psnr", "psnr", "ssim", "ms_ssim"):
            means = []
            for rows in seeds:
                vals = [r[key] for r in rows if (level == "all" or severity_of(r.get("name")) == level)
                        and isinstance(r.get(key), (int, float)) and math.isfinite(r[key])]
                if vals:
                    means.append(float(np.mean(vals)))
            if len(means) == len(seeds):
                g[key] = float(np.mean(means))
                g[f"{key}_std"] = float(np.std(means, ddof=1)) if len(means) > 1 else math.nan
        out[level] = g
    return out


def severity_fields(sev: Mapping[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """Flat CSV columns of :func:`severity_quality`: ``<level>_psnr``, ``<level>_made_worse``, ..."""
    out: Dict[str, Any] = {}
    for level, g in sev.items():
        for k, v in g.items():
            out[f"{level}_{'made_worse' if k == 'worse' else k}"] = v
    return out


def severity_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Per model and severity: input PSNR, PSNR, SSIM, MS-SSIM (mean +- std over seeds),
    gain and 'made worse: k of n' (n = seeds x images)."""
    def pm(g, k, f):
        if g.get(k) is None:
            return "–"
        sd = g.get(f"{k}_std")
        return f.format(g[k]) + ("" if sd is None or math.isnan(sd) else f" +- {f.format(sd)}")

    lines = ["| model | severity | images | input PSNR | PSNR | SSIM | MS-SSIM | gain (dB) | made worse |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        for level, g in (r.get("severity") or {}).items():
            lines.append(f"| `{r['model']}` | {level} | {g['images']} | {pm(g, 'input_psnr', '{:.2f}')} | "
                         f"{pm(g, 'psnr', '{:.2f}')} | {pm(g, 'ssim', '{:.4f}')} | {pm(g, 'ms_ssim', '{:.4f}')} | "
                         f"{g['gain']:+.2f} | {g['worse']} of {g['n_compared']} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def verdict(task: str, rows: Sequence[Mapping[str, Any]], stats: Sequence[SeedStats]) -> str:
    """One paragraph per task that follows from the numbers: which model is better on
    each metric, by how much, whether resolved, and the SNN/twin energy ratio."""
    if not stats:
        return f"No SNN-vs-twin comparison for {task} (the run lacks one of the two)."
    parts = []
    for st in stats:
        better = "the SNN" if st.diff_mean > 0 else "the ANN twin"
        word = "resolved" if st.resolved else "unresolved"
        parts.append(f"on {st.metric} {better} scores higher by {abs(st.diff_mean):.3g}"
                     f"{' dB' if st.metric == 'PSNR' else ''} ({word}, {st.n_seeds} seed"
                     f"{'s' if st.n_seeds > 1 else ''} x {st.n_images} images)")
    text = f"Verdict for {task}: " + "; ".join(parts) + "."
    ratio = energy_ratio_line(rows)
    if ratio:
        text += " " + ratio
    if not any(st.resolved for st in stats):
        text += " No quality difference is resolved by this run."
    return text
