"""restoration/seedstats.py: the paired interval against scipy, the one-seed rule, a
clearly resolved and a clearly unresolved difference, shape errors."""
import math

import numpy as np
import pytest
from scipy import stats

from restoration.errors import UserError
from restoration.seedstats import paired_seed_stats, t_interval


def test_interval_matches_hand_and_scipy():
    d = [0.5, -0.1, 0.3, 0.2, 0.0, 0.4]
    lo, hi = t_interval(d)
    m, sd, n = np.mean(d), np.std(d, ddof=1), len(d)
    half = 2.570581835636314 * sd / math.sqrt(n)  # t(0.975, 5), from tables
    assert (lo, hi) == pytest.approx((m - half, m + half), rel=1e-9)
    ref = stats.t.interval(0.95, n - 1, loc=m, scale=stats.sem(d))
    assert (lo, hi) == pytest.approx(ref, rel=1e-12)
    assert all(math.isnan(v) for v in t_interval([1.0]))


def test_paired_stats_over_seeds_and_images():
    rng = np.random.default_rng(0)
    twin = rng.normal(27.0, 1.0, (3, 5))
    snn = twin + rng.normal(0.05, 0.3, (3, 5))
    s = paired_seed_stats(snn, twin)
    d = (snn - twin).ravel()
    assert s.n_seeds == 3 and s.n_images == 5
    assert s.diff_mean == pytest.approx(d.mean())
    assert s.interval == pytest.approx(stats.t.interval(0.95, 14, loc=d.mean(), scale=stats.sem(d)))
    per_seed = (snn - twin).mean(1)
    assert s.seed_interval == pytest.approx(stats.t.interval(0.95, 2, loc=per_seed.mean(),
                                                             scale=stats.sem(per_seed)))
    assert s.snn_mean == pytest.approx(snn.mean()) and s.snn_std == pytest.approx(snn.mean(1).std(ddof=1))
    assert s.twin_std == pytest.approx(twin.mean(1).std(ddof=1))
    assert s.interval[0] < 0 < s.interval[1] and not s.resolved
    assert s.sentence.endswith("unresolved (the interval includes 0).")


def test_one_seed_is_unresolved_even_when_images_agree():
    twin = [20.0, 21.0, 22.0, 23.0]
    snn = [v + 2.0 + 0.01 * i for i, v in enumerate(twin)]  # +2 dB on every image
    s = paired_seed_stats([snn], [twin])
    assert s.interval[0] > 0  # the images alone would exclude 0 ...
    assert not s.resolved  # ... but one seed cannot say so
    assert math.isnan(s.snn_std) and math.isnan(s.seed_interval[0])
    assert "(1 seed x 4 images)" in s.sentence
    assert s.sentence.endswith("unresolved (one seed: the seed-to-seed variation is not measured).")
    assert paired_seed_stats(snn, twin).sentence == s.sentence  # a flat list is one seed


def test_clearly_resolved_difference():
    twin = np.array([[25.0, 26.0, 27.0], [25.2, 26.1, 27.3], [24.9, 25.8, 27.1]])
    snn = twin - np.array([[1.0, 1.1, 0.9], [1.2, 1.0, 1.05], [0.95, 1.1, 1.0]])
    s = paired_seed_stats(snn, twin, snn_name="esdnet_tiny", twin_name="esdnet_tiny_ann")
    assert s.resolved and s.interval[1] < 0 and s.diff_mean == pytest.approx(-1.0333333333)
    # per-seed means: twin 26.0, 26.2, 25.93; SNN 25.0, 25.12, 24.92 (std 0.100)
    assert s.snn_mean == pytest.approx(25.0111111) and s.snn_std == pytest.approx(0.1004619, rel=1e-5)
    assert s.sentence == ("PSNR: esdnet_tiny 25.01 +- 0.1 dB vs esdnet_tiny_ann 26.04 +- 0.14 dB (3 seeds x 3 "
                          "images); difference -1.03 dB, paired 95% interval [-1.1, -0.964] dB: resolved "
                          "(esdnet_tiny is lower).")


def test_mismatched_shapes_are_a_user_error():
    with pytest.raises(UserError, match="pass the same seeds and images for both"):
        paired_seed_stats([[1.0, 2.0]], [[1.0, 2.0, 3.0]])
    with pytest.raises(UserError, match=r"expected per-seed per-image values \[seeds\]\[images\]"):
        paired_seed_stats([], [])
