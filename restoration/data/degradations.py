"""Degradations of the built-in data, pure functions of a clean image and a random stream.

* haze: the atmospheric scattering model of RESIDE, ``I = J t + A (1 - t)``,
  ``t = exp(-beta d)``, with ``beta = 0.2 * 15^s`` for severity s (thin 0.2 to dense 3.0;
  TRACE: 0.02-0.12) and ``d`` a smooth plausible depth (ground plane + smooth noise +
  brighter-is-farther cue) normalised to about [0, 1.3];
* rain: layers of streaks (random seeds convolved with a line kernel of random length,
  width and angle, then blurred) screen-blended onto the image; s moves every parameter from a
  few thin faint streaks in one layer (below Rain200L) to three dense layers of long wide
  streaks with a veil (Rain200H-like). The earlier presets ``light``, ``heavy`` and ``mixed``
  remain available;
* stereo: a background with a smooth disparity field and 0-3 foreground objects at larger
  constant disparity; each view samples every layer at its own shift and composites back to
  front, so regions hidden in one view are filled with the true background in the other.

Which degradation a task's built-in data uses, with which options, is the task plugin's
choice (``tasks/*.py``, ``BuiltinData``).
"""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from .images import DataError
from .sources import TRACE, _normalise, clean_image, smooth_noise


# -- haze -------------------------------------------------------------------------------
def transmission(depth: np.ndarray, beta) -> np.ndarray:
    """t = exp(-beta * d); ``beta`` a number or a map the size of ``depth``."""
    return np.exp(-np.asarray(beta, dtype=np.float64) * np.asarray(depth, dtype=np.float64))


def add_haze(clean: np.ndarray, depth: np.ndarray, beta, airlight) -> np.ndarray:
    """Atmospheric scattering model I = J t + A (1 - t), t = exp(-beta d). Pure function.

    Args:
        clean: ``H,W,C`` float image J in [0, 1].
        depth: ``H,W`` scene depth d (>= 0; 0 leaves the pixel unchanged).
        beta: scattering coefficient, a number or an ``H,W`` map (non-homogeneous haze).
        airlight: atmospheric light A, a number or one value per channel.
    Returns the hazy ``H,W,C`` float32 image (values stay in [min(J, A), max(J, A)]).
    """
    clean = np.asarray(clean, dtype=np.float64)
    if clean.ndim != 3 or np.shape(depth) != clean.shape[:2]:
        raise ValueError(f"add_haze: clean must be H,W,C and depth H,W; got {clean.shape} and {np.shape(depth)}")
    t = transmission(depth, beta)[..., None]
    a = np.asarray(airlight, dtype=np.float64).reshape(1, 1, -1)
    return (clean * t + a * (1 - t)).astype(np.float32)


def synthetic_depth(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """A plausible smooth depth for an image without one, in about [0, 1.3].

    Mix of a tilted ground plane (far at the top), smooth noise, and brightness (a smoothed
    luminance: bright regions such as sky tend to be far), renormalised to a random range.
    """
    from scipy.ndimage import gaussian_filter

    h, w = img.shape[:2]
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    plane = np.clip(1 - (y + rng.uniform(-0.4, 0.4) * (x - 0.5)), 0, None) ** rng.uniform(0.5, 2.0)
    noise = smooth_noise(rng, h, w, cells=int(rng.integers(2, 6)))
    lum = gaussian_filter(img @ np.array([0.299, 0.587, 0.114], np.float32), sigma=max(h, w) / 16)
    wts = rng.dirichlet([3.0, 1.5, 1.0])
    d = _normalise(wts[0] * _normalise(plane) + wts[1] * noise + wts[2] * _normalise(lum))
    near, far = rng.uniform(0.0, 0.3), rng.uniform(0.8, 1.3)
    return (near + (far - near) * d).astype(np.float32)


def haze_beta(rng: np.random.Generator, s: float) -> float:
    """Scattering coefficient for severity ``s``: 0.2 * 15^s (t at the far end of the depth
    range ~1.3: 0.77 thin .. 0.02 dense); TRACE: 0.02-0.12, a barely visible haze."""
    if s == TRACE:
        return float(rng.uniform(0.02, 0.12))
    return 0.2 * 15.0 ** float(np.clip(s, 0.0, 1.0))



# -- rain -------------------------------------------------------------------------------
RAIN_PRESETS = {
    # layers, seed density per layer, streak length / width (px), angle spread (deg), intensity, veil
    "light": dict(layers=(1, 1), density=(0.003, 0.008), length=(8, 20), width=(0.8, 1.4),
                  angle=15, intensity=(0.35, 0.7), veil=(0.0, 0.0)),
    "heavy": dict(layers=(2, 3), density=(0.006, 0.014), length=(15, 40), width=(1.2, 2.5),
                  angle=30, intensity=(0.45, 0.85), veil=(0.05, 0.15)),
}


def streak_kernel(length: float, width: float, angle_deg: float) -> np.ndarray:
    """A normalised (peak 1) anti-aliased line of ``length`` x ``width`` px, ``angle`` from vertical."""
    r = int(math.ceil(length / 2 + 2 * width)) + 1
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    a = math.radians(angle_deg)
    along = xx * math.sin(a) + yy * math.cos(a)
    across = xx * math.cos(a) - yy * math.sin(a)
    k = np.clip(length / 2 - np.abs(along) + 0.5, 0, 1) * np.exp(-0.5 * (across / (width / 2)) ** 2)
    k *= 0.6 + 0.4 * np.clip(along / length + 0.5, 0, 1)  # brighter head, fading tail (motion)
    return k / k.max()


def rain_layer(rng: np.random.Generator, h: int, w: int, density: float, length: float,
               width: float, angle_deg: float, intensity: float) -> np.ndarray:
    """One ``h,w`` layer of parallel streaks in [0, 1]: random seeds convolved with a streak."""
    from scipy.ndimage import gaussian_filter
    from scipy.signal import fftconvolve

    pad = int(length) + 4  # seeds outside the frame still draw streaks into it
    seeds = (rng.random((h + 2 * pad, w + 2 * pad)) < density) * rng.uniform(0.6, 1.0, (h + 2 * pad, w + 2 * pad))
    layer = fftconvolve(seeds, streak_kernel(length, width, angle_deg), mode="same")[pad:-pad, pad:-pad]
    layer = gaussian_filter(np.clip(layer, 0, None), sigma=rng.uniform(0.3, 0.8))  # defocus/motion blur
    return np.clip(layer * intensity, 0, 1).astype(np.float32)


def rain_params(rng: np.random.Generator, s: float) -> dict:
    """Streak parameters for severity ``s`` in [0, 1] (or TRACE), drawn around a smooth ramp.

    s = 0: one layer of a few thin, short, faint streaks (sparser than Rain200L); s = 1:
    three dense layers of long, wide, bright streaks and a veil (Rain200H-like). TRACE: a
    handful of faint streaks, a nearly clean input.
    """
    trace = s == TRACE
    s = 0.0 if trace else float(np.clip(s, 0.0, 1.0))

    def ramp(lo, hi, jitter=0.25):
        return (lo + (hi - lo) * s) * rng.uniform(1 - jitter, 1 + jitter)

    # streak coverage per layer ~ density x length x width: 0.008 (s = 0) .. ~0.3 (s = 1)
    layers = 1 if s < 0.4 else (2 if s < 0.8 else int(rng.integers(2, 4)))
    p = dict(layers=layers, density=ramp(0.0015, 0.0055), length=ramp(8, 30), width=ramp(0.7, 1.8, 0.15),
             angle=ramp(8, 30, 0.3), intensity=min(0.95, ramp(0.3, 0.65, 0.15)),
             veil=max(0.0, (s - 0.5) / 0.5) * 0.12 * rng.uniform(0.5, 1.0))
    if trace:
        p.update(density=p["density"] * rng.uniform(0.1, 0.3), intensity=p["intensity"] * 0.6)
    return p


def _add_streaks(rng: np.random.Generator, clean: np.ndarray, n_layers: int, draw_layer, draw_veil) -> np.ndarray:
    """Screen-blend ``n_layers`` of ``draw_layer()`` then a veil of ``draw_veil()`` (drawn in
    this order: the earlier presets' random stream)."""
    h, w = clean.shape[:2]
    rain = np.zeros((h, w), np.float32)
    for _ in range(n_layers):
        rain = 1 - (1 - rain) * (1 - draw_layer())
    veil = draw_veil()
    rainy = 1 - (1 - clean) * (1 - rain[..., None])  # screen blend: streaks brighten, never darken
    if veil > 0:  # rain accumulation: a faint, uneven whitish veil
        v = veil * (0.5 + 0.5 * smooth_noise(rng, h, w, cells=3))[..., None]
        rainy = rainy * (1 - v) + v * rng.uniform(0.75, 0.95)
    return np.clip(rainy, 0, 1).astype(np.float32)


def add_rain(rng: np.random.Generator, clean: np.ndarray, preset="heavy") -> np.ndarray:
    """Screen-blend streak layers (and, for heavy rain, a veil) onto ``clean``.

    ``preset``: a severity in [0, 1] (or TRACE), see :func:`rain_params`; or one of the
    earlier presets 'light', 'heavy', 'mixed' (either, per image), which draw exactly as before.
    """
    h, w = clean.shape[:2]
    if not isinstance(preset, str):
        p = rain_params(rng, float(preset))
        base_angle = rng.uniform(-p["angle"], p["angle"])

        def layer():
            return rain_layer(rng, h, w, p["density"] * rng.uniform(0.8, 1.2), p["length"] * rng.uniform(0.8, 1.2),
                              p["width"], base_angle + rng.uniform(-5, 5), p["intensity"] * rng.uniform(0.85, 1.0))
        return _add_streaks(rng, clean, p["layers"], layer, lambda: p["veil"])
    if preset == "mixed":
        preset = "light" if rng.random() < 0.5 else "heavy"
    if preset not in RAIN_PRESETS:
        raise DataError(f"unknown rain preset {preset!r}; expected 'light', 'heavy' or 'mixed' (or a severity "
                        f"number in [0, 1])")
    p = RAIN_PRESETS[preset]
    base_angle = rng.uniform(-p["angle"], p["angle"])
    n_layers = int(rng.integers(p["layers"][0], p["layers"][1] + 1))

    def legacy_layer():
        return rain_layer(rng, h, w, rng.uniform(*p["density"]), rng.uniform(*p["length"]),
                          rng.uniform(*p["width"]), base_angle + rng.uniform(-5, 5), rng.uniform(*p["intensity"]))
    return _add_streaks(rng, clean, n_layers, legacy_layer, lambda: rng.uniform(*p["veil"]))


# -- stereo -----------------------------------------------------------------------------
def _soft_shape(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Alpha mask (h, w) of an ellipse or rounded rectangle filling the box, soft 1-pixel edge."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ry, rx = h / 2, w / 2
    u, v = (xx + 0.5 - rx) / rx, (yy + 0.5 - ry) / ry
    p = 2.0 if rng.random() < 0.5 else 4.0  # ellipse or superellipse (a rounded rectangle)
    dist = (1 - (np.abs(u) ** p + np.abs(v) ** p) ** (1 / p)) * min(rx, ry)
    return np.clip(dist + 0.5, 0, 1)


def _sample_shifted(img: np.ndarray, shift: np.ndarray, width: int) -> np.ndarray:
    """``img`` (H,W',C) sampled at (y, x + shift(y, x)) for x < width (cubic spline)."""
    from scipy.ndimage import map_coordinates

    h = img.shape[0]
    yy, xx = np.mgrid[0:h, 0:width].astype(np.float64)
    coords = [yy, xx + shift[:, :width]]
    return np.stack([map_coordinates(img[..., c], coords, order=3, mode="nearest")
                     for c in range(img.shape[2])], axis=-1)


def _paste(dst: np.ndarray, tex: np.ndarray, alpha: np.ndarray, top: int, left: int) -> None:
    """Alpha-composite ``tex`` over ``dst`` at (top, left), clipped to ``dst``."""
    h, w = dst.shape[:2]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + tex.shape[0], h), min(left + tex.shape[1], w)
    if y0 >= y1 or x0 >= x1:
        return
    a = alpha[y0 - top:y1 - top, x0 - left:x1 - left, None]
    dst[y0:y1, x0:x1] = dst[y0:y1, x0:x1] * (1 - a) + tex[y0 - top:y1 - top, x0 - left:x1 - left] * a


def render_stereo(rng: np.random.Generator, h: int, w: int, max_disparity: float = 0.12,
                  max_objects: int = 3, procedural: float = 0.3) -> Tuple[np.ndarray, np.ndarray]:
    """A rectified (left, right) pair from single images and a disparity field.

    A scene point at column x in the left view is at x - d in the right view. The background
    is an image wider than the view with a smooth disparity field (larger at the bottom: a
    ground plane, plus smooth noise); the right view samples it at x + d, so it shows real
    background content wherever it looks. Foreground objects (image patches in an ellipse or
    rounded-rectangle mask) sit at integer disparities above the background's and are pasted
    far to near at x in the left view and x - d in the right view; what an object hides in
    one view is therefore real background in the other.
    """
    d_max = max(2.0, max_disparity * w)
    wide = w + int(math.ceil(d_max)) + 4
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    bg_hi = rng.uniform(0.15, 0.6) * d_max
    ramp = np.broadcast_to(y ** rng.uniform(0.7, 2.0), (h, wide))
    bg_disp = bg_hi * _normalise(0.7 * ramp + 0.3 * smooth_noise(rng, h, wide, cells=3))
    bg = clean_image(rng, h, wide, procedural)
    left, right = bg[:, :w].copy(), np.clip(_sample_shifted(bg, bg_disp, w), 0, 1).astype(np.float32)
    objects = []
    for _ in range(int(rng.integers(0, max_objects + 1))):
        oh, ow = int(rng.uniform(0.2, 0.7) * h) + 2, int(rng.uniform(0.2, 0.7) * w) + 2
        d = int(rng.integers(int(math.ceil(bg_hi)), int(d_max) + 1))
        top, x0 = int(rng.integers(-oh // 2, h - oh // 2)), int(rng.integers(-ow // 2, wide - ow // 2))
        objects.append((d, clean_image(rng, oh, ow, procedural), _soft_shape(rng, oh, ow), top, x0))
    for d, tex, alpha, top, x0 in sorted(objects, key=lambda o: o[0]):  # far to near
        _paste(left, tex, alpha, top, x0)
        _paste(right, tex, alpha, top, x0 - d)
    return left, right



def haze_image(rng: np.random.Generator, clean: np.ndarray, depth: np.ndarray, airlight: Tuple[float, float],
               severity: float = None, beta_range: Tuple[float, float] = None, nonhomogeneous: float = 0.0,
               noise: float = 0.0) -> np.ndarray:
    """Hazy version of ``clean`` (float ``H,W,3``) over ``depth``: beta from ``severity`` (see
    :func:`haze_beta`) or, without one, uniform in ``beta_range`` (the earlier sampling); A
    uniform in ``airlight``; ``nonhomogeneous`` > 0 lets beta vary smoothly by up to +-that
    fraction; ``noise`` > 0 adds Gaussian sensor noise of a std up to it."""
    beta = rng.uniform(*beta_range) if severity is None else haze_beta(rng, severity)
    if nonhomogeneous > 0:
        beta = beta * np.clip(1 + nonhomogeneous * (2 * smooth_noise(rng, *depth.shape, cells=3) - 1), 0.05, None)
    hazy = add_haze(clean, depth, beta, rng.uniform(*airlight))
    if noise > 0:
        hazy = hazy + rng.normal(0, rng.uniform(0, noise), hazy.shape).astype(np.float32)
    return np.clip(hazy, 0, 1)
