"""The cross-task SNN-vs-ANN benchmark behind ``tools/benchmark.py``.

Every task plugin declares a *suite* (``benchmark_suite`` in ``tasks/<name>.py``): the
spiking model, its ANN twin and the ANN baseline, each with the recipe it is trained
with; this module reads it through :data:`SUITES` and never names a task. A *budget* fixes what is equal for all models
of a task: data, crop, batch, number of optimiser steps, seed; each model keeps its
recipe's optimiser, loss and schedule shape (the warm-up keeps its fraction of the run).

Measured per model (one row, :data:`FIELDS`):

* quality on the held-out split with the task's metric protocol (evaluator of the
  engine); for a task whose suite has an ``snr_sweep`` (a channel) also a sweep over SNRs;
* cost at a stated size (:data:`STATED_SIZE`): parameters, MACs, and SOPs / energy from
  the per-layer input firing rates measured on the held-out images
  (:func:`measure_ops`, :func:`cost_at_size`)::

      E = 4.6 pJ x MACs(layers fed by real values) + 0.9 pJ x SOPs(layers fed by spikes)
      SOPs(layer) = MACs(layer, all T steps) x its input firing rate on held-out images

  and beside it the memory-aware estimate under each level of
  :data:`restoration.energy.MEMORY_LEVELS` (``energy_sram_mj``, ``energy_dram_mj``: the
  energy above plus the bits moved, :func:`restoration.energy.memory_traffic`), and the
  SNN/ANN-twin ratio under each (:func:`energy_ratio_line`);
* speed and memory, each in a fresh Python process (:func:`measure_speed`, the
  ``_measure`` entry point of this module): medians over repeats after warm-up; peak
  memory of one step above what is in use after a warm-up step, in a second process:
  the resident high-water mark (``VmHWM``, reset through Linux ``/proc/self/clear_refs``,
  with glibc's mmap threshold fixed so that freed tensors leave the resident set) on
  CPU, ``torch.cuda.max_memory_allocated`` on CUDA.

Output helpers: :func:`write_csv`, :func:`markdown_report`, :func:`plot_quality_energy`,
:func:`plot_snr_curves`, :func:`plot_firing_rates`. Everything is written to a temporary
name and renamed.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..engine.task import ModelSpec  # noqa: F401  (the task plugins declare their suites with it)

from ..config import CONFIG_ROOT, Config, load_config
from ..energy import E_AC_PJ, E_MAC_PJ, MEMORY_LEVELS, count_ops, memory_traffic
from ..seedstats import SeedStats, paired_seed_stats

ROOT = Path(__file__).resolve().parents[2]

ENERGY_FORMULA = (f"E = {E_MAC_PJ} pJ x MACs on real-valued inputs + {E_AC_PJ} pJ x SOPs on spike inputs; "
                  f"SOPs = MACs (all time steps) x the layer's input firing rate measured on the held-out images")
MEMORY_FORMULA = ("memory-aware E = the energy above + bits read and written (weights once per layer call, "
                  "inputs at 1 bit where spike-fed and 32 otherwise, 32-bit outputs, 32-bit membrane potentials "
                  "read and written per neuron per step) x the access energy of one memory level: " +
                  "; ".join(f"{k}: {v.read_pj_64b:g} pJ per 64 bits ({v.source})" for k, v in MEMORY_LEVELS.items()) +
                  "; see restoration/energy.py")


class _TaskTable(Mapping):
    """``{task: value}`` read from the registered task plugins' ``benchmark_suite``: the
    knowledge stays in each plugin, the benchmark only asks. ``value(suite)`` gives the
    entry; ``has(suite)`` (default: every suite) which tasks appear. Entries set on the
    table (tests do) shadow the plugin's until deleted."""

    def __init__(self, value: Callable[[Any], Any], has: Callable[[Any], bool] = lambda suite: True):
        self._value, self._has, self._set = value, has, {}

    @staticmethod
    def _suites() -> Dict[str, Any]:
        from ..registry import TASKS

        out = {}
        for name in TASKS.names():
            suite = getattr(TASKS.get(name), "benchmark_suite", None)
            if suite is not None:
                out[name] = suite
        return out

    def _items(self) -> Dict[str, Any]:
        items = {t: self._value(s) for t, s in self._suites().items() if self._has(s)}
        items.update(self._set)
        return items

    def __getitem__(self, task):
        return self._items()[task]

    def __iter__(self):
        return iter(self._items())

    def __len__(self):
        return len(self._items())

    def __setitem__(self, task, value):
        self._set[task] = value

    def __delitem__(self, task):
        del self._set[task]


# Per task, from its plugin (tasks/<name>.py, ``benchmark_suite``): the suite (spiking
# model, ANN twin, ANN baseline), further models --models may name, and the size at which
# cost and speed are stated (a stereo item is a pair of two such views).
SUITES: Mapping[str, List[ModelSpec]] = _TaskTable(lambda s: list(s.models))
EXTRA_SPECS: Mapping[str, List[ModelSpec]] = _TaskTable(lambda s: list(s.extra_models), lambda s: bool(s.extra_models))


def task_specs(task: str, models: Optional[Sequence[str]] = None) -> List[ModelSpec]:
    """The models benchmarked for ``task``: its suite, or those of ``models`` (in that
    order) that the task knows (its suite and :data:`EXTRA_SPECS`)."""
    if not models:
        return list(SUITES[task])
    known = {s.name: s for s in SUITES[task] + EXTRA_SPECS.get(task, [])}
    return [known[m] for m in models if m in known]


STATED_SIZE: Mapping[str, int] = _TaskTable(lambda s: int(s.stated_size))


def _budget_table(budget: str) -> Mapping[str, Any]:
    return _TaskTable(lambda s: s.budgets[budget], lambda s: budget in s.budgets)


# What every model of a task shares, per budget: the labels, timing settings and caps are
# the benchmark's; each task's share (crop, batch, epochs, steps) is its plugin's
# (``benchmark_suite.budgets``; ``None``: the task's first recipe's own). "quick" is a
# smoke-level comparison; "micro", the same for every task, exists for the tests.
MICRO_SHARE = {"patch_size": 32, "batch_size": 2, "epochs": 1, "steps": 2,
               "builtin": {"n_train": 4, "n_test": 2, "train_size": 48, "test_size": [32, 48]}}

BUDGETS: Dict[str, Dict[str, Any]] = {
    "quick": {
        "label": "QUICK budget: a smoke-level comparison (150-200 optimiser steps per model, far from converged)",
        "tasks": _budget_table("quick"),
        "speed": {"warmup": 2, "repeats": 5, "throughput_batch": 4},
        "max_test_images": None,
    },
    "full": {
        "label": "FULL budget: each task's shipped CPU recipe (configs/<task>/*_cpu.yaml), same for all its models",
        "tasks": _budget_table("full"),
        "speed": {"warmup": 3, "repeats": 10, "throughput_batch": 8},
        "max_test_images": None,
    },
    "authors": {
        "label": ("AUTHORS budget: DHF-JSCC four ways on 2 shared CPU cores (32x32 crops, batch 4, 320 optimiser "
                  "steps, 4 held-out pairs of 64-96 pixels): an early-training snapshot, far from converged"),
        "tasks": _budget_table("authors"),
        "speed": {"warmup": 1, "repeats": 3, "throughput_batch": 2},
        "max_test_images": None,
    },
    "micro": {
        "label": "MICRO budget: a few iterations on tiny images (a test of the tool, not a result)",
        "tasks": _TaskTable(lambda s: MICRO_SHARE),
        "speed": {"warmup": 1, "repeats": 2, "throughput_batch": 2},
        "max_test_images": 2,
        "stated_size": 32,
    },
}


def snr_sweep(task: str) -> Sequence[float]:
    """The channel SNRs (dB) at which ``task``'s models are evaluated again (none: empty)."""
    return tuple(_TaskTable._suites()[task].snr_sweep)


# -- configuration -------------------------------------------------------------------

SEED0 = 1234  # seed k of a --seeds run is SEED0 + k (weights, data order, crops)


def budget_overrides(spec: ModelSpec, task: str, budget: str, first_recipe: str, device: str = "auto",
                     data_root: Optional[str] = None, seed: int = SEED0) -> Dict[str, Any]:
    """Dotted config overrides that make every model of ``task`` train on the same data
    with the same budget. The recipe's warm-up keeps its fraction of the run; a budget's
    ``lr_scale`` multiplies the recipe's learning rates (main and neuron group)."""
    own = load_config(CONFIG_ROOT / spec.recipe)
    if task not in BUDGETS[budget]["tasks"]:
        raise ValueError(f"budget {budget!r} covers the tasks {', '.join(BUDGETS[budget]['tasks'])}, not {task!r}; "
                         f"choose another --budget (quick, full)")
    b = BUDGETS[budget]["tasks"][task]
    if b is None:  # the task's first recipe defines the budget
        ref = load_config(CONFIG_ROOT / first_recipe)
        b = {"patch_size": ref.data.patch_size, "batch_size": ref.data.batch_size, "epochs": ref.train.epochs,
             "steps": ref.train.max_steps_per_epoch, "builtin": dict(ref.data.builtin or {}),
             "repeat": ref.data.repeat}
    epochs = int(b["epochs"])
    warm = float(own.sched.warmup_epochs or 0) / max(1, int(own.train.epochs)) * epochs
    o: Dict[str, Any] = {
        "task": task, "model.name": spec.name, "seed": int(seed), "device": device,
        "data.root": data_root, "data.patch_size": b["patch_size"], "data.batch_size": b["batch_size"],
        "data.num_workers": 0, "data.repeat": int(b.get("repeat") or 1), "data.max_valid_images": 1,
        "data.valid_mode": "test",
        "train.epochs": epochs, "train.max_steps_per_epoch": b.get("steps"), "train.eval_freq": epochs,
        "train.eval_last_fraction": 1.0, "train.keep_last_epochs": 0, "train.sample_images": 0,
        "train.log_interval": max(10, int(b.get("steps") or 50) // 2), "sched.warmup_epochs": warm,
        "eval.final": "last", "eval.ciede2000": False, "eval.ms_ssim": True, "eval.save_images": False,
    }
    if "builtin" in b:
        o["data.builtin"] = {"_delete_": True, **dict(b["builtin"])}
    scale = float(b.get("lr_scale") or 1.0)
    if scale != 1.0:
        o["optim.lr"] = float(own.optim.lr) * scale
        if own.optim.neuron_lr is not None:
            o["optim.neuron_lr"] = float(own.optim.neuron_lr) * scale
    return o


def build_bench_config(spec: ModelSpec, task: str, budget: str, device: str = "auto",
                       data_root: Optional[str] = None, extra: Sequence[str] = (), seed: int = SEED0) -> Config:
    """The recipe of ``spec`` under the budget's overrides, then the user's ``--set``."""
    first = SUITES[task][0].recipe
    cfg = load_config(CONFIG_ROOT / spec.recipe, budget_overrides(spec, task, budget, first, device, data_root, seed))
    if extra:
        cfg = load_config(None, list(extra), base=cfg.to_dict())
    return cfg


# -- the model as the task calls it ------------------------------------------------

class TaskModel(nn.Module):
    """``task.forward(fn, batch)`` as a module taking a batch dict, so that
    :func:`restoration.energy.count_ops` sees exactly what evaluation runs (padding,
    stereo pairs) for any task plugin. ``fn`` defaults to the model itself."""

    def __init__(self, model: nn.Module, task, device, fn: Optional[Callable] = None):
        super().__init__()
        self.model = model
        self.task, self.device, self.fn = task, torch.device(device), fn

    def forward(self, batch):
        return self.task.forward(self.fn or self.model, batch, self.device)[0]


def stated_item(task: str, size) -> str:
    """'one 256x256 image', or what the task's plugin says one item at the stated size is."""
    from ..registry import TASKS

    if task in TASKS:
        return TASKS.get(task)().stated_item(size)
    return f"one {size}x{size} image"


def is_spiking(model: nn.Module) -> bool:
    from ..spiking import is_spiking_neuron

    return any(is_spiking_neuron(m) for m in model.modules())


# -- operation counts and energy -----------------------------------------------------

def aggregate_layers(count) -> Dict[str, Dict[str, Any]]:
    """Per layer name (calls over time steps summed): MACs, whether its input was spikes
    (0/1 only) in every call, and the MAC-weighted input firing rate."""
    out: Dict[str, Dict[str, Any]] = {}
    for r in count.layers:
        a = out.setdefault(r.name, {"macs": 0, "spike_input": True, "rate_macs": 0.0})
        a["macs"] += r.macs
        a["spike_input"] = a["spike_input"] and r.spike_input  # spikes in every call
        a["rate_macs"] += r.input_rate * r.macs
    for a in out.values():
        a["rate"] = a["rate_macs"] / a["macs"] if a["macs"] else 0.0
    return out


@torch.no_grad()
def measure_ops(model: nn.Module, task, batches: Iterable[Mapping[str, Any]], device,
                fn: Optional[Callable] = None) -> Dict[str, Any]:
    """Input firing rate of every conv/linear layer over ``batches`` (held-out images)
    and the neurons' firing rates (:class:`restoration.spiking.FiringRateMonitor`).

    A layer counts as spike-fed when the model has spiking neurons and the layer's input
    was 0/1 in every call on every image.

    Returns ``{'layers': {name: {'macs', 'spike_input', 'rate'}}, 'neuron_rates': {..},
    'mean_rate': float or None}``; rates are MAC-weighted over all images.
    """
    from ..spiking import FiringRateMonitor

    wrapped = TaskModel(model, task, device, fn)
    acc: Dict[str, Dict[str, Any]] = {}
    spiking = is_spiking(model)
    monitor = FiringRateMonitor(model).start() if spiking else None
    try:
        for batch in batches:
            for name, a in aggregate_layers(count_ops(wrapped, batch)).items():
                s = acc.setdefault(name, {"macs": 0, "spike_input": spiking, "rate_macs": 0.0})
                s["macs"] += a["macs"]
                # an ANN layer that happens to see only 0/1 (a dead ReLU) still runs MACs
                s["spike_input"] = s["spike_input"] and a["spike_input"]
                s["rate_macs"] += a["rate_macs"]
    finally:
        if monitor is not None:
            monitor.stop()
    layers = {n: {"macs": a["macs"], "spike_input": a["spike_input"],
                  "rate": a["rate_macs"] / a["macs"] if a["macs"] else 0.0} for n, a in acc.items()}
    return {"layers": layers,
            "neuron_rates": dict(monitor.rates()) if monitor else {},
            "mean_rate": monitor.mean_rate() if monitor else None}


@torch.no_grad()
def cost_at_size(model: nn.Module, task, device, size: int, measured: Mapping[str, Any]) -> Dict[str, float]:
    """MACs of one item at ``size`` x ``size`` and its SOPs and energy with the per-layer
    input firing rates ``measured`` on held-out images (:func:`measure_ops`).

    A layer whose input was spikes on the held-out images costs ``E_AC x MACs x rate``;
    every other layer, and matrix products outside conv/linear layers, ``E_MAC x MACs``.
    """
    count = count_ops(TaskModel(model, task, device), task.example_batch(1, size))
    rates = measured["layers"]
    macs = count.macs
    dense = float(count.other_macs)
    sops = 0.0
    for name, a in aggregate_layers(count).items():
        m = rates.get(name)
        if m is not None and m["spike_input"]:
            sops += a["macs"] * m["rate"]
        else:
            dense += a["macs"]
    energy_pj = E_MAC_PJ * dense + E_AC_PJ * sops
    out = {"macs": float(macs), "dense_macs": dense, "sops": sops, "energy_mj": energy_pj * 1e-9,
           "spike_mac_share": (macs - dense) / macs if macs else 0.0}
    # memory-aware: the same spike-fed layers (measured), their inputs at 1 bit
    traffic = memory_traffic(count, {n: bool(m["spike_input"]) for n, m in rates.items()})
    for key, level in MEMORY_LEVELS.items():
        out[f"energy_{key}_mj"] = (energy_pj + traffic.energy_pj(level)) * 1e-9
    out["memory_mbit"] = (traffic.reads + traffic.writes) / 1e6
    return out


def energy_ratio_line(rows: Sequence[Mapping[str, Any]]) -> Optional[str]:
    """'SNN/ANN-twin energy: ...' under the operation count and each memory level, for one
    task's rows holding an SNN and an ANN twin; None otherwise."""
    snn = next((r for r in rows if r.get("role") == "SNN"), None)
    twin = next((r for r in rows if r.get("role") == "ANN twin"), None)
    if snn is None or twin is None:
        return None
    parts = []
    for key, label in [("energy_mj", "operation count")] + [(f"energy_{k}_mj", f"memory-aware, {k.upper()}")
                                                             for k in MEMORY_LEVELS]:
        a, b = snn.get(key), twin.get(key)
        if a is not None and b:
            parts.append(f"{label} {a / b:.2f}")
    return f"SNN/ANN-twin energy ratio (`{snn['model']}` / `{twin['model']}`): " + ", ".join(parts) + "." \
        if parts else None


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


# -- speed and memory in a fresh process -----------------------------------------------

from ..engine.memory import MALLOC_ENV, PeakMemory  # noqa: E402  (the engine owns memory measurement)

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(step: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(max(1, repeats)):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _peak_mb(step: Callable[[], None], device: torch.device):
    """(MB, method): one warm-up call (weights, optimiser state and the code pages the
    first call maps are then in place), then the peak of one more call above that."""
    step()
    with PeakMemory(device) as peak:
        step()
    return peak.bytes / 2 ** 20, peak.method


def _steps(cfg_path: str, checkpoint: Optional[str], size: int, patch: int, batch: int, throughput_batch: int,
           device: str):
    """(device, inference step factory, training step) for the model of a benchmark config
    (``cfg_path``: a YAML path or an already built :class:`Config`)."""
    from ..checkpoint import load_model
    from ..spiking import reset_state
    from ..engine.optim import build_optimizer
    from ..engine.trainer import apply_gradients, forward_loss
    from ..registry import build_model_from_config, build_task

    cfg = cfg_path if isinstance(cfg_path, Config) else load_config(cfg_path)
    dev = torch.device(device)
    task = build_task(cfg.task, **dict(cfg.task_args or {}))
    torch.manual_seed(0)
    # the checkpoint's weights on the benchmark recipe's model (one rebuild rule: load_model)
    model = load_model(checkpoint, config=cfg, device=dev) if checkpoint else build_model_from_config(cfg).to(dev)

    def infer(n):
        b = {k: v.to(dev) if torch.is_tensor(v) else v for k, v in task.example_batch(n, size).items()}

        def step():
            model.eval()
            with torch.no_grad():
                task.forward(model, b, dev)
            reset_state(model)
        return step

    loss_fn = task.build_loss(cfg).to(dev)
    opt = build_optimizer(model, cfg.optim)
    tb = task.example_batch(batch, patch)
    clip = cfg.train.clip_grad

    scaler = torch.amp.GradScaler("cuda", enabled=False)  # passes through: no AMP here

    def train_step():  # the trainer's step (its two functions), without AMP, accumulation and DDP
        model.train()
        loss, _, _ = forward_loss(task, model, loss_fn, tb, dev)
        loss.backward()
        apply_gradients(model, opt, scaler, clip)
    train_step.model = model  # for callers that adjust it (tools/bench_spiking.py sets the backend)
    return dev, infer, train_step


def _measure(cfg_path: str, checkpoint: Optional[str], what: str, size: int, patch: int, batch: int, warmup: int,
             repeats: int, throughput_batch: int, device: str) -> Dict[str, Any]:
    """Run in a fresh process (see :func:`measure_speed`): ``what='speed'`` gives the
    median latency (batch 1), throughput (``throughput_batch``) at ``size`` and training
    step time (``batch`` x ``patch``); ``'memory'`` the peak memory of each."""
    dev, infer, train_step = _steps(cfg_path, checkpoint, size, patch, batch, throughput_batch, device)
    out: Dict[str, Any] = {"device": str(dev)}
    if what == "speed":
        out["latency_s"] = _median_time(infer(1), dev, warmup, repeats)
        out["throughput"] = throughput_batch / _median_time(infer(throughput_batch), dev, warmup, repeats)
        out["train_step_s"] = _median_time(train_step, dev, warmup, repeats)
    elif what == "memory":
        out["infer_peak_mb"], out["memory_method"] = _peak_mb(infer(1), dev)
        out["train_peak_mb"], _ = _peak_mb(train_step, dev)
    else:
        raise ValueError(f"unknown measurement {what!r}; use speed or memory")
    return out


def _run_child(args: List[str], env_extra: Mapping[str, str], timeout: float) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "restoration.benchmark", "_measure"] + args
    env = dict(os.environ, **env_extra)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise RuntimeError(f"measurement process failed with exit code {proc.returncode}: {' '.join(cmd)}\n"
                       f"{proc.stderr.strip()[-2000:]}")


def measure_speed(cfg_path: os.PathLike, checkpoint: Optional[os.PathLike], size: int, patch: int, batch: int,
                  warmup: int, repeats: int, throughput_batch: int, device: str, threads: int,
                  timeout: float = 1800) -> Dict[str, Any]:
    """Latency, throughput and training step time (one fresh process, the normal
    allocator), then peak memory of an inference and a training step (a second fresh
    process, see :data:`MALLOC_ENV`), for the model of the benchmark config ``cfg_path``."""
    args = ["--config", str(cfg_path), "--size", str(size), "--patch", str(patch), "--batch", str(batch),
            "--warmup", str(warmup), "--repeats", str(repeats), "--throughput-batch", str(throughput_batch),
            "--device", device, "--threads", str(threads)] + (["--checkpoint", str(checkpoint)] if checkpoint else [])
    out = _run_child(args + ["--what", "speed"], {}, timeout)
    out.update(_run_child(args + ["--what", "memory"], MALLOC_ENV if device == "cpu" else {}, timeout))
    return out


def _measure_cli(argv: Sequence[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m restoration.benchmark _measure")
    p.add_argument("--config", required=True)
    p.add_argument("--checkpoint")
    p.add_argument("--what", required=True, choices=["speed", "memory"])
    for k in ("size", "patch", "batch", "warmup", "repeats", "throughput-batch", "threads"):
        p.add_argument(f"--{k}", type=int, required=True)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    torch.set_num_threads(max(1, a.threads))
    res = _measure(a.config, a.checkpoint, a.what, a.size, a.patch, a.batch, a.warmup, a.repeats,
                   a.throughput_batch, a.device)
    print("BENCH_JSON " + json.dumps(res), flush=True)
    return 0


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


def _atomic_write_text(path: Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


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


# -- plots ---------------------------------------------------------------------------------

ROLE_STYLE = {"SNN": ("tab:red", "o"), "ANN twin": ("tab:blue", "s"), "ANN baseline": ("tab:green", "^")}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: os.PathLike, dpi: int = 90, colors: int = 128) -> Path:
    """Save as PNG, written to a temporary name and renamed. The image is reduced to a
    palette of ``colors`` colours (plots hold few; files 3-4x smaller for the docs)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    if colors:
        with Image.open(tmp) as im:
            small = im.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
        small.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)
    return path


def _log_axis(ax) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_quality_energy(rows: Sequence[Mapping[str, Any]], task: str, path: os.PathLike, title: str = "",
                        energy_key: str = "energy_mj") -> Path:
    """PSNR and SSIM against energy per item (log scale) for the models of one task; the
    degraded input's score as a dashed line when the task has one; error bars: std over
    seeds. ``energy_key``: energy_mj (operation count), energy_sram_mj or energy_dram_mj."""
    plt = _plt()
    trs = [dict(r, energy_mj=r[energy_key]) for r in rows if r["task"] == task and r.get(energy_key) is not None]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    fig.subplots_adjust(wspace=0.35)
    for ax, key, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ssim", "SSIM")):
        for j, r in enumerate(trs):
            if r.get(key) is None:
                continue
            color, marker = ROLE_STYLE.get(r["role"], ("tab:gray", "x"))
            ax.scatter(r["energy_mj"], r[key], c=color, marker=marker, s=60, label=f"{r['model']} ({r['role']})")
            sd = r.get(f"{key}_std")
            if sd is not None and not math.isnan(sd):  # std over seeds
                ax.errorbar(r["energy_mj"], r[key], yerr=sd, color=color, capsize=3, lw=1)
            # staggered labels: models with equal energy and quality stay readable
            ax.annotate(r["model"], (r["energy_mj"], r[key]), textcoords="offset points",
                        xytext=(6, 10 - 11 * j), fontsize=8, color=color)
        inp = next((r.get(f"input_{key}") for r in trs if r.get(f"input_{key}") is not None), None)
        if inp is not None:
            ax.axhline(inp, color="gray", ls="--", lw=1, label="degraded input")
        _log_axis(ax)
        model_name = {"energy_mj": "operation count"}.get(energy_key, energy_key[7:-3].upper() + " memory-aware")
        ax.set_xlabel(f"energy per item (mJ, {trs[0]['stated_size']} px, {model_name})" if trs else "energy (mJ)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.margins(x=0.3, y=0.25)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)) or 1, fontsize=8,
               bbox_to_anchor=(0.5, -0.12))
    fig.suptitle(title or f"{task}: quality vs energy", fontsize=10)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_snr_curves(curves: Mapping[str, Sequence[Mapping[str, float]]], path: os.PathLike,
                    roles: Optional[Mapping[str, str]] = None, title: str = "") -> Path:
    """PSNR and MS-SSIM against channel SNR, one line per model."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    fig.subplots_adjust(wspace=0.3)
    for model, pts in curves.items():
        color, marker = ROLE_STYLE.get((roles or {}).get(model, ""), (None, "o"))
        snrs = [p["snr_db"] for p in pts]
        axes[0].plot(snrs, [p["psnr"] for p in pts], marker=marker, color=color, label=model)
        if all(p.get("ms_ssim") is not None for p in pts):
            axes[1].plot(snrs, [p["ms_ssim"] for p in pts], marker=marker, color=color, label=model)
    for ax, label in ((axes[0], "PSNR (dB)"), (axes[1], "MS-SSIM")):
        ax.set_xlabel("channel SNR (dB)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title or "stereo JSCC: quality vs channel SNR", fontsize=10)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_firing_rates(rates: Mapping[str, Mapping[str, float]], path: os.PathLike, title: str = "") -> Path:
    """One panel per spiking model: the firing rate of every neuron layer in forward
    order, coloured and labelled by the top-level module it sits in."""
    plt = _plt()
    models = [m for m, r in rates.items() if r]
    if not models:
        raise ValueError("no firing rates to plot (no spiking model was measured)")
    fig, axes = plt.subplots(len(models), 1, figsize=(9, 2.5 * len(models)), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, model in zip(axes[:, 0], models):
        names = list(rates[model])
        top = [n.split(".")[0] for n in names]
        groups = list(dict.fromkeys(top))
        vals = [rates[model][n] for n in names]
        ax.bar(range(len(vals)), vals, color=[cmap(groups.index(g) % 10) for g in top])
        starts = [i for i, g in enumerate(top) if i == 0 or top[i - 1] != g]
        ax.set_xticks(starts)
        ax.set_xticklabels([top[i] for i in starts], rotation=35, ha="right", fontsize=7)
        ax.set_xlim(-0.7, len(vals) - 0.3)
        ax.set_ylabel("firing rate")
        ax.set_title(f"{model}: {len(vals)} neuron layers, mean {sum(vals) / len(vals):.3f} (unweighted)",
                     fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


# -- spatial firing-rate maps (tools/visualize_spikes.py) ---------------------------------

@torch.no_grad()
def spike_maps(model: nn.Module, *inputs, item: int = 0) -> "Dict[str, Dict[str, Any]]":
    """Firing-rate map (H x W, in [0, 1]) of every spiking-neuron layer for one forward:
    the fraction of channels and time steps that fired at each position of batch item
    ``item``. SpikingJelly neurons fire where the output is non-zero; OLIF where its
    output exceeds ``Vth`` (its non-firing positions output ``Vth``). A layer called
    several times (per view, per step) gets the mean of its calls.

    Returns ``{name: {'map': tensor, 'kind': str, 'calls': int}}`` in forward order; the
    model's state is reset afterwards.
    """
    from ..spiking import OLIF, is_spiking_neuron

    maps: Dict[str, Dict[str, Any]] = {}
    handles = []

    def hook(name):
        def record(module, args, out):
            if isinstance(module, OLIF):
                fired = (out > module.Vth.to(out.dtype)).float()  # N,C,H,W
                kind = f"OLIF along {'H' if module.dim == 2 else 'W'}"
                m = fired[item].mean(0)
            else:
                fired = (out != 0).float()
                kind = type(module).__name__
                m = fired[:, item].mean((0, 1)) if fired.dim() == 5 else fired[item].mean(0)
            e = maps.setdefault(name, {"map": torch.zeros_like(m), "kind": kind, "calls": 0})
            if e["map"].shape == m.shape:
                e["map"] += m
                e["calls"] += 1
        return record

    for name, m in model.named_modules():
        if is_spiking_neuron(m):
            handles.append(m.register_forward_hook(hook(name or type(m).__name__)))
    if not handles:
        raise ValueError(f"{type(model).__name__} has no spiking neuron: firing-rate maps need a spiking model "
                         f"(not an ANN twin)")
    was = model.training
    model.eval()
    try:
        model(*inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
        from ..spiking import reset_state

        reset_state(model)
    for e in maps.values():
        e["map"] = (e["map"] / max(1, e["calls"])).cpu()
    return maps


def region_rates(rate_map: torch.Tensor, mask: torch.Tensor) -> "tuple":
    """Mean firing rate inside and outside ``mask`` (H x W bool at image size), the mask
    brought to the map's resolution by area averaging (a cell is inside when at least
    half of its pixels are)."""
    import torch.nn.functional as F

    h, w = rate_map.shape[-2:]
    m = F.adaptive_avg_pool2d(mask.float()[None, None], (h, w))[0, 0] >= 0.5
    inside = float(rate_map[m].mean()) if m.any() else float("nan")
    outside = float(rate_map[~m].mean()) if (~m).any() else float("nan")
    return inside, outside
