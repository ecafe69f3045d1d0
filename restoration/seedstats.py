"""Mean +- std over seeds and a paired interval of an SNN-vs-twin difference.

``paired_seed_stats(snn, twin)`` takes per-seed per-image values of one metric (PSNR,
SSIM, ...) of a spiking model and its ANN twin, ``[seeds][images]``, both evaluated on the
same images (the pairing), and returns a :class:`SeedStats`:

* each model's mean +- sample standard deviation (ddof 1) over seeds of its per-seed
  mean over images (std is NaN with one seed: it is not measured);
* the mean paired difference (SNN - twin) and its 95 % t-interval over all seed x image
  paired differences, ``mean +- t(0.975, n - 1) x sd / sqrt(n)`` with n = seeds x images;
* the same interval over the per-seed mean differences (n = seeds), reported beside it:
  images are shared across seeds, so this one is the more cautious of the two;
* a sentence saying whether the difference is resolved: the seed x image interval
  excludes 0 **and** there are at least two seeds. With one seed the difference is
  always unresolved, whatever the images say: seed-to-seed variation is not measured.

Used by ``tools/benchmark.py --seeds N`` (restoration.benchmark.seed_comparisons).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from .errors import UserError

Interval = Tuple[float, float]


@dataclass(frozen=True)
class SeedStats:
    metric: str
    n_seeds: int
    n_images: int
    snn_mean: float
    snn_std: float
    twin_mean: float
    twin_std: float
    diff_mean: float
    interval: Interval        # over seed x image paired differences
    seed_interval: Interval   # over per-seed mean differences (NaN with one seed)
    resolved: bool
    sentence: str


def t_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """Two-sided ``level`` t-interval of the mean of ``values``; (nan, nan) for fewer than
    two values, (m, m) when they are all equal."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size < 2:
        return (math.nan, math.nan)
    m, sd = float(v.mean()), float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1)) * sd / math.sqrt(v.size)
    return (m - half, m + half)


def _matrix(values, what: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 1:
        a = a[None]  # one seed
    if a.ndim != 2 or a.size == 0:
        raise UserError(f"{what}: expected per-seed per-image values [seeds][images], got shape {a.shape}")
    return a


def paired_seed_stats(snn, twin, metric: str = "PSNR", unit: str = "dB", snn_name: str = "SNN",
                      twin_name: str = "ANN twin", level: float = 0.95) -> SeedStats:
    """Statistics of ``snn`` against ``twin`` (``[seeds][images]``, same images in the
    same order; one seed may be given as a flat list). See the module docstring."""
    a, b = _matrix(snn, snn_name), _matrix(twin, twin_name)
    if a.shape != b.shape:
        raise UserError(f"{snn_name} has {a.shape[0]} seeds x {a.shape[1]} images but {twin_name} has "
                        f"{b.shape[0]} x {b.shape[1]}; pass the same seeds and images for both")
    seeds, images = a.shape
    per_seed_a, per_seed_b = a.mean(1), b.mean(1)
    std = (lambda v: float(v.std(ddof=1))) if seeds > 1 else (lambda v: math.nan)
    d = a - b
    diff = float(d.mean())
    ci = t_interval(d, level)
    seed_ci = t_interval(d.mean(1), level)
    excludes0 = not math.isnan(ci[0]) and (ci[0] > 0 or ci[1] < 0)
    resolved = seeds >= 2 and excludes0
    u = f" {unit}" if unit else ""
    pm = lambda m, s: f"{m:.4g}" + ("" if math.isnan(s) else f" +- {s:.2g}")  # noqa: E731
    head = (f"{metric}: {snn_name} {pm(float(per_seed_a.mean()), std(per_seed_a))}{u} vs {twin_name} "
            f"{pm(float(per_seed_b.mean()), std(per_seed_b))}{u} ({seeds} seed{'s' if seeds > 1 else ''} x "
            f"{images} images); difference {diff:+.3g}{u}")
    if not math.isnan(ci[0]):
        head += f", paired {level:.0%} interval [{ci[0]:+.3g}, {ci[1]:+.3g}]{u}"
    if seeds < 2:
        verdict = "unresolved (one seed: the seed-to-seed variation is not measured)"
    elif resolved:
        verdict = f"resolved ({snn_name} is {'higher' if diff > 0 else 'lower'})"
    else:
        verdict = "unresolved (the interval includes 0)"
    return SeedStats(metric, seeds, images, float(per_seed_a.mean()), std(per_seed_a), float(per_seed_b.mean()),
                     std(per_seed_b), diff, ci, seed_ci, resolved, f"{head}: {verdict}.")
