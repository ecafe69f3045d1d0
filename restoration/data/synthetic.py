"""Paired data made offline and deterministically, written in the benchmarks' real layouts.

``make_dataset(task, out_dir, n_train, n_test, seed, **options)`` writes

* ``dehaze``: DehazeSNN layout ``<out>/{train,test}/{hazy,GT}`` (``naming='reside'``: RESIDE
  names ``hazy/<id>_<k>.png`` -> ``GT/<id>.png`` with ``hazy_per_clean`` hazy images per clear one);
* ``derain``: ESDNet layout ``<out>/{train,test}/{input,target}`` (``naming='rain200'``:
  ``rain-<n>.png`` / ``norain-<n>.png``);
* ``stereo_jscc``: ``<out>/{train,test}/{left,right}``;

so the readers in ``paired.py`` / ``stereo.py`` serve made and downloaded data alike.
``ensure_builtin_data(task)`` makes a small default set once into a cache folder and reuses it.

Clean images (training): crops of real photographs -- the pinned wallpaper-package corpus
(``corpus.py``: Debian packages, sha256-checked) plus the photographs shipped inside
scikit-image -- or of a user's own folder (``clean_dir``), and a small share of procedural
"dead leaves" images. Crops come at two scales: from a reduced copy of the whole photograph
(zoomed log-uniformly down to the whole frame) and at native resolution, so the fine detail
of a real photograph is in the training distribution.

Test splits:

* ``test`` (``test_source='photos'``, the default): the held-out real-photo split, made from
  the corpus photographs of role ``heldout`` (never trained on; without the corpus, a
  documented fallback of three scikit-image photographs that are then left out of training).
  Image ``i`` has severity ``SEVERITIES[i % 3]`` (light, medium, heavy) in its name
  (``light_00000.png``), so evaluation reports each severity separately; each photograph
  appears whole (reduced) and as a native-resolution crop;
* ``motorcycle``: the Middlebury 2014 motorcycle scene (``skimage.data.stereo_motorcycle()``,
  real stereo with real disparity; dehaze uses its true depth), the project's earlier test set,
  kept as a second documented one (``test_source='motorcycle'`` writes it as ``test``). It is
  held out of every training split, and is stereo_jscc's only test source.

Degradations, over the whole range (``severity`` s in [0, 1]; training draws s uniformly and
gives a share ``clean_share`` of nearly clean "trace" inputs, so a model learns to leave good
pixels alone):

* haze: the atmospheric scattering model of RESIDE, ``I = J t + A (1 - t)``,
  ``t = exp(-beta d)``, ``beta = 0.2 * 15^s`` (thin 0.2 to dense 3.0; trace: 0.02-0.12) and A
  in [0.7, 1.0]; ``d`` a smooth plausible depth (ground plane + smooth noise +
  brighter-is-farther cue) normalised to about [0, 1.3]; optionally non-homogeneous (beta
  varies smoothly) and sensor noise. An explicit ``beta`` range restores the earlier sampling
  (beta uniform in it, no severities);
* rain: layers of streaks (random seeds convolved with a line kernel of random length,
  width and angle, then blurred) screen-blended onto the image; s moves every parameter from a
  few thin faint streaks in one layer (below Rain200L) to three dense layers of long wide
  streaks with a veil (Rain200H-like). The earlier presets ``light``, ``heavy`` and ``mixed``
  remain available;
* stereo: a background with a smooth disparity field and 0-3 foreground objects at larger
  constant disparity; each view samples every layer at its own shift and composites back to
  front, so regions hidden in one view are filled with the true background in the other.

Same seed, same options -> byte-identical PNG files (each image has its own RNG seeded by
``(seed, task, split, index)``; PNGs carry no time stamps).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
import shutil
import uuid
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from PIL import Image
from tqdm import tqdm

from .corpus import Photo, corpus_fingerprint, corpus_photos, folder_fingerprint, folder_photos
from .images import DataError, PathLike, save_png

logger = logging.getLogger("restoration.data")

GENERATOR_VERSION = 2  # bump when the generated pixels change: invalidates cached built-in sets
TASKS = ("dehaze", "derain", "stereo_jscc")
_TASK_IDS = {t: i for i, t in enumerate(TASKS)}
_SPLIT_IDS = {"train": 0, "test": 1, "motorcycle": 2}  # "test" keeps id 1: earlier sets reproduce
MANIFEST = "dataset.json"
ENV_DATA_DIR = "SNN_RESTORATION_DATA"
SEVERITIES = ("light", "medium", "heavy")
SEVERITY_BANDS = {"light": (0.0, 1 / 3), "medium": (1 / 3, 2 / 3), "heavy": (2 / 3, 1.0)}
TRACE = -1.0  # severity value of a "nearly clean" training input
LEGACY_RAIN_PRESETS = ("light", "heavy", "mixed")
MOTORCYCLE_SPLIT = "motorcycle"

# Default number of images per split for make_dataset / ensure_builtin_data. The paired
# tasks' 24 test images: 8 held-out photographs x 3 severities.
DEFAULT_COUNTS = {"dehaze": (400, 24), "derain": (400, 24), "stereo_jscc": (400, 8)}

# Options each task accepts, with their defaults.
_PAIRED = dict(train_size=128, test_size=(160, 256), procedural=0.1, clean_share=0.1, test_source="photos",
               motorcycle=8, clean_dir=None)
TASK_OPTIONS: Dict[str, dict] = {
    "dehaze": dict(_PAIRED, beta=None, airlight=(0.7, 1.0), nonhomogeneous=0.0, noise=0.0, naming="dehazesnn",
                   hazy_per_clean=1),
    "derain": dict(_PAIRED, preset="range", naming="esdnet"),
    "stereo_jscc": dict(train_size=128, test_size=(160, 256), max_disparity=0.12, max_objects=3,
                        procedural=0.3),
}
OPTION_HELP = {
    "train_size": "side of the square training images in pixels",
    "test_size": "(min, max) side of the test images; sides are multiples of 16",
    "beta": "(min, max) scattering coefficient beta drawn uniformly (the earlier sampling, e.g. RESIDE ITS "
            "0.6-1.8; no severities); default: from the severity, 0.2 (thin) to 3.0 (dense)",
    "airlight": "(min, max) atmospheric light A (RESIDE ITS: 0.7-1.0)",
    "nonhomogeneous": "0 = homogeneous haze; s > 0 lets beta vary smoothly by up to +-s (relative)",
    "noise": "maximum std of Gaussian sensor noise added to hazy images (0 = none)",
    "procedural": "fraction of training images that are procedural instead of photo crops",
    "clean_share": "fraction of training inputs that are nearly clean (a trace of rain or haze)",
    "test_source": "'photos' (held-out real photographs at light/medium/heavy severity, plus the motorcycle "
                   "split) or 'motorcycle' (the Middlebury scene as the test split, as before)",
    "motorcycle": "with test_source='photos': images in the second test split 'motorcycle' (0 = none)",
    "clean_dir": "a folder of your own clean photographs to train on instead of the built-in corpus",
    "naming": "dehaze: 'dehazesnn' (identical names) or 'reside' (<id>_<k> -> <id>); "
              "derain: 'esdnet' (identical names) or 'rain200' (rain-<n> -> norain-<n>)",
    "hazy_per_clean": "with naming='reside': hazy versions of each clear image",
    "preset": "rain: 'range' (every severity, light to heavy, plus nearly clean inputs) or the earlier "
              "presets 'light' (Rain200L-like), 'heavy' (Rain200H-like), 'mixed' (either)",
    "max_disparity": "largest disparity as a fraction of the image width",
    "max_objects": "most foreground objects per training stereo pair",
}

# scikit-image photographs shipped in its wheel (checked to load offline). Gray ones get a
# random two-colour tint. The motorcycle pair is *not* here: it is reserved for test splits.
PHOTOS_RGB = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")
PHOTOS_GRAY = ("camera", "brick", "grass", "gravel", "coins", "clock", "moon")

# Middlebury 2014 motorcycle calibration for the 4x down-sampled images skimage ships.
_MB_FOCAL, _MB_BASELINE_MM, _MB_DOFFS = 994.978, 193.001, 31.086


# -- clean sources ----------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _photos() -> Tuple[np.ndarray, ...]:
    """The shipped photographs as uint8 arrays (RGB: H,W,3; gray: H,W), big ones reduced."""
    import skimage.data

    out = []
    for name in PHOTOS_RGB + PHOTOS_GRAY:
        try:
            img = np.asarray(getattr(skimage.data, name)())
        except Exception as e:  # noqa: BLE001 - an install without this file: use the others
            logger.warning("skimage.data.%s unavailable (%s); generating without it", name, e)
            continue
        if img.ndim == 3:
            img = img[..., :3]
        if max(img.shape[:2]) > 640:  # keeps crops from tiny regions of huge images cheap
            f = 640 / max(img.shape[:2])
            pil = Image.fromarray(img).resize((round(img.shape[1] * f), round(img.shape[0] * f)), Image.BICUBIC)
            img = np.asarray(pil)
        out.append(np.ascontiguousarray(img))
    if not out:
        raise DataError("no scikit-image sample photograph could be loaded; reinstall scikit-image")
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _motorcycle() -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Middlebury motorcycle: left, right (uint8) and left-view depth in mm (float32)."""
    import skimage.data

    try:
        left, right, disp = skimage.data.stereo_motorcycle()
    except Exception as e:  # noqa: BLE001
        raise DataError(f"cannot load skimage.data.stereo_motorcycle() ({e}); it ships with "
                        f"scikit-image and makes every test split: reinstall scikit-image") from None
    disp = np.asarray(disp, dtype=np.float64)
    bad = ~np.isfinite(disp)
    if bad.any():  # fill pixels without ground truth from the nearest valid one
        from scipy.ndimage import distance_transform_edt

        idx = distance_transform_edt(bad, return_distances=False, return_indices=True)
        disp = disp[tuple(idx)]
    depth = _MB_FOCAL * _MB_BASELINE_MM / (disp + _MB_DOFFS)
    return left, right, depth.astype(np.float32)


def _resize_u8(img: np.ndarray, hw: Tuple[int, int]) -> np.ndarray:
    return np.asarray(Image.fromarray(img).resize((hw[1], hw[0]), Image.BICUBIC))


def _resize_f(img: np.ndarray, hw: Tuple[int, int], resample=Image.BILINEAR) -> np.ndarray:
    """Resize a float32 H,W map (PIL mode F)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(img, dtype=np.float32), mode="F")
                      .resize((hw[1], hw[0]), resample), dtype=np.float32)


def smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int = 4) -> np.ndarray:
    """A smooth random field in [0, 1]: a coarse random grid upsampled bicubically."""
    grid = rng.random((cells + 1, cells + 1)).astype(np.float32)
    return _normalise(_resize_f(grid, (h, w), Image.BICUBIC))


def _normalise(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def procedural_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A "dead leaves" image: overlapping shapes of power-law sizes, shaded and textured.

    Dead-leaves images share the edge and scale statistics of natural photographs, which
    makes them a standard procedural stand-in for natural images.
    """
    c0, c1 = rng.random(3), rng.random(3)
    ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = np.broadcast_to(c0 * (1 - ramp) + c1 * ramp, (h, w, 3)).astype(np.float32).copy()
    r_min, r_max = 2.0, 0.5 * max(h, w)
    for _ in range(int(rng.integers(30, 120))):
        r = r_min * (r_max / r_min) ** rng.random() ** 1.5  # many small, few large
        cy, cx = rng.uniform(-r / 2, h + r / 2), rng.uniform(-r / 2, w + r / 2)
        y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, h)
        x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, w)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dy, dx = yy - cy, xx - cx
        kind = rng.integers(3)
        if kind == 0:  # disk
            dist = r - np.hypot(dy, dx)
        else:  # rotated rectangle (kind 1) or ellipse (kind 2)
            a = rng.uniform(0, np.pi)
            u, v = dx * np.cos(a) + dy * np.sin(a), -dx * np.sin(a) + dy * np.cos(a)
            ry = r * rng.uniform(0.3, 1.0)
            if kind == 1:
                dist = np.minimum(r - np.abs(u), ry - np.abs(v))
            else:
                dist = (1 - np.sqrt((u / r) ** 2 + (v / ry) ** 2)) * ry
        mask = np.clip(dist + 0.5, 0, 1)[..., None]  # 1-pixel anti-aliased edge
        colour = rng.random(3).astype(np.float32)
        shade = 1 + rng.uniform(-0.3, 0.3) * (dy / max(r, 1))[..., None]  # a little shading
        img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - mask) + np.clip(colour * shade, 0, 1) * mask
    texture = (smooth_noise(rng, h, w, cells=max(h, w) // 4) - 0.5) * rng.uniform(0.02, 0.1)
    return np.clip(img + texture[..., None], 0, 1).astype(np.float32)


def _tint(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dark, light = rng.uniform(0, 0.35, 3), rng.uniform(0.65, 1, 3)
    g = gray.astype(np.float32)[..., None] / 255.0
    return (dark * (1 - g) + light * g).astype(np.float32)


# scikit-image photographs held out (and left out of training) when the corpus is missing
FALLBACK_HELDOUT = ("chelsea", "coffee", "rocket")


@functools.lru_cache(maxsize=None)
def _skimage_pool() -> Tuple[Photo, ...]:
    names = PHOTOS_RGB + PHOTOS_GRAY
    photos = _photos()
    if len(photos) != len(names):  # some failed to load (warned): names by position are unknown
        names = tuple(f"skimage_{i}" for i in range(len(photos)))
    return tuple(Photo(n, p, (), 1.0) for n, p in zip(names, photos))


def photo_pool(role: str, clean_dir: Optional[str] = None) -> Tuple[Photo, ...]:
    """Photographs for ``role`` 'train' or 'heldout'.

    train: ``clean_dir``'s images if given, else the corpus's training photographs plus
    scikit-image's; heldout: the corpus's held-out photographs. Without the corpus both fall
    back to scikit-image, with FALLBACK_HELDOUT moved from training to held-out.
    """
    if role == "train" and clean_dir:
        return folder_photos(clean_dir)
    corpus = corpus_photos(role)
    sk = _skimage_pool()
    if not corpus:  # the corpus is used whole or not at all (corpus_entries): the documented fallback
        held = tuple(p for p in sk if p.name in FALLBACK_HELDOUT)
        return held if role == "heldout" else tuple(p for p in sk if p.name not in FALLBACK_HELDOUT)
    return corpus if role == "heldout" else corpus + sk


def _crop_photo(rng: np.random.Generator, photo: Photo, h: int, w: int, native: float = 0.5) -> np.ndarray:
    """An ``h,w`` uint8 crop: at native resolution from a full-resolution tile (probability
    ``native``, when a tile is large enough), else from the reduced whole photograph at a
    log-uniform zoom between its own scale and the whole frame."""
    fits = [t for t in photo.tiles if t.shape[0] >= h and t.shape[1] >= w]
    if fits and rng.random() < native:
        tile = fits[int(rng.integers(len(fits)))]
        top, left = int(rng.integers(tile.shape[0] - h + 1)), int(rng.integers(tile.shape[1] - w + 1))
        return np.ascontiguousarray(tile[top:top + h, left:left + w])
    src = photo.reduced
    sh, sw = src.shape[:2]
    s_max = min(sh / h, sw / w)
    s = math.exp(rng.uniform(0, math.log(s_max))) if s_max > 1 else s_max  # zoom, log-uniform
    ch, cw = max(1, min(sh, round(h * s))), max(1, min(sw, round(w * s)))
    top, left = int(rng.integers(sh - ch + 1)), int(rng.integers(sw - cw + 1))
    return _resize_u8(np.ascontiguousarray(src[top:top + ch, left:left + cw]), (h, w))


def clean_image(rng: np.random.Generator, h: int, w: int, procedural: float = 0.3,
                photos: Optional[Sequence[Photo]] = None) -> np.ndarray:
    """A clean ``h,w,3`` float image: a random crop of a photograph, or procedural.

    ``photos``: the pool to crop from (default: the training pool, ``photo_pool('train')``).
    """
    if rng.random() < procedural:
        return procedural_image(rng, h, w)
    pool = photo_pool("train") if photos is None else photos
    weights = np.array([2.0 if p.reduced.ndim == 3 else 1.0 for p in pool])  # colour photos twice as often
    photo = pool[int(rng.choice(len(pool), p=weights / weights.sum()))]
    crop = _crop_photo(rng, photo, h, w)
    img = _tint(crop, rng) if crop.ndim == 2 else crop.astype(np.float32) / 255.0
    if rng.random() < 0.5:
        img = img[:, ::-1]
    return np.ascontiguousarray(img)


def heldout_view(rng: np.random.Generator, photo: Photo, test_size: Sequence[int], whole: bool) -> np.ndarray:
    """A held-out test image (float ``H,W,3``, sides multiples of 16): the whole photograph
    reduced to a long side of ``test_size[1]``, or a native-resolution crop with sides in
    ``test_size``."""
    lo, hi = int(test_size[0]), int(test_size[1])
    if whole or not photo.tiles:
        src = photo.reduced
        f = hi / max(src.shape[:2])
        sh, sw = max(16, round(src.shape[0] * f)), max(16, round(src.shape[1] * f))
        img = _resize_u8(src, (sh, sw))
        h, w = sh // 16 * 16, sw // 16 * 16
        img = img[(sh - h) // 2:(sh - h) // 2 + h, (sw - w) // 2:(sw - w) // 2 + w]
    else:
        tile = photo.tiles[int(rng.integers(len(photo.tiles)))]
        h = min(tile.shape[0], int(rng.integers(lo, hi + 1))) // 16 * 16
        w = min(tile.shape[1], int(rng.integers(lo, hi + 1))) // 16 * 16
        top, left = int(rng.integers(tile.shape[0] - h + 1)), int(rng.integers(tile.shape[1] - w + 1))
        img = tile[top:top + h, left:left + w]
    return _tint(img, rng) if img.ndim == 2 else np.ascontiguousarray(img, dtype=np.float32) / 255.0


def _test_window(rng: np.random.Generator, test_size: Sequence[int], index: int, shape: Tuple[int, int]):
    """Scale and crop window of the Middlebury scene for test image ``index``.

    Image 0 is the whole scene reduced so its long side is ``test_size[1]``; the others are
    random crops (sides in ``test_size``) of the scene reduced by a random 0.3-0.6. Sides are
    multiples of 16 so that U-Nets need no padding.
    """
    lo, hi = int(test_size[0]), int(test_size[1])
    full_h, full_w = shape
    if index == 0:
        s = hi / max(full_h, full_w)
        sh, sw = round(full_h * s), round(full_w * s)
        h, w = max(16, sh // 16 * 16), max(16, sw // 16 * 16)
        return (max(sh, h), max(sw, w)), ((sh - h) // 2, (sw - w) // 2, h, w)
    s_lo = lo / min(full_h, full_w)
    s = rng.uniform(max(s_lo, 0.3), max(s_lo, 0.6))
    sh, sw = round(full_h * s), round(full_w * s)
    h = min(sh, int(rng.integers(lo, hi + 1))) // 16 * 16
    w = min(sw, int(rng.integers(lo, hi + 1))) // 16 * 16
    return (sh, sw), (int(rng.integers(sh - h + 1)), int(rng.integers(sw - w + 1)), h, w)


def _crop(img: np.ndarray, win) -> np.ndarray:
    top, left, h, w = win
    return img[top:top + h, left:left + w]


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


def severity_value(rng: np.random.Generator, level: Optional[str], clean_share: float = 0.0) -> float:
    """A severity s in [0, 1] for ``level`` (light/medium/heavy: its third of the range), or,
    for training (``level`` None), TRACE with probability ``clean_share``, else uniform."""
    if level is None:
        return TRACE if rng.random() < clean_share else float(rng.uniform(0.0, 1.0))
    if level not in SEVERITY_BANDS:
        raise DataError(f"unknown severity {level!r}; expected one of {', '.join(SEVERITIES)}")
    return float(rng.uniform(*SEVERITY_BANDS[level]))


def haze_beta(rng: np.random.Generator, s: float) -> float:
    """Scattering coefficient for severity ``s``: 0.2 * 15^s (t at the far end of the depth
    range ~1.3: 0.77 thin .. 0.02 dense); TRACE: 0.02-0.12, a barely visible haze."""
    if s == TRACE:
        return float(rng.uniform(0.02, 0.12))
    return 0.2 * 15.0 ** float(np.clip(s, 0.0, 1.0))


def _haze_sample(rng: np.random.Generator, clean: np.ndarray, depth: np.ndarray, opt: dict,
                 severity: Optional[float] = None) -> np.ndarray:
    """Hazy version of ``clean``: beta from ``severity`` or, with ``opt['beta']`` set (and no
    severity), uniform in that range as before."""
    beta = rng.uniform(*opt["beta"]) if severity is None else haze_beta(rng, severity)
    if opt["nonhomogeneous"] > 0:
        s = opt["nonhomogeneous"]
        beta = beta * np.clip(1 + s * (2 * smooth_noise(rng, *depth.shape, cells=3) - 1), 0.05, None)
    hazy = add_haze(clean, depth, beta, rng.uniform(*opt["airlight"]))
    if opt["noise"] > 0:
        hazy = hazy + rng.normal(0, rng.uniform(0, opt["noise"]), hazy.shape).astype(np.float32)
    return np.clip(hazy, 0, 1)


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


# -- writing a dataset --------------------------------------------------------------------
def _rng(seed: int, task: str, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), _TASK_IDS[task], _SPLIT_IDS.get(split, 1), int(index)])


def _resolve_options(task: str, options: dict) -> dict:
    if task not in TASK_OPTIONS:
        raise DataError(f"unknown task {task!r} for synthetic data; expected one of {', '.join(TASKS)}")
    unknown = sorted(set(options) - set(TASK_OPTIONS[task]))
    if unknown:
        raise DataError(f"unknown option(s) {', '.join(unknown)} for task {task!r}; known: "
                        f"{', '.join(sorted(TASK_OPTIONS[task]))}")
    opt = {**TASK_OPTIONS[task], **options}
    for key in ("test_size", "beta", "airlight"):
        if opt.get(key) is not None:
            opt[key] = tuple(float(v) if key != "test_size" else int(v) for v in opt[key])
    if opt["test_size"][0] < 16 or opt["test_size"][0] > opt["test_size"][1]:
        raise DataError(f"test_size must be (min, max) with 16 <= min <= max, got {opt['test_size']}")
    if task == "dehaze" and opt["naming"] not in ("dehazesnn", "reside"):
        raise DataError(f"dehaze naming must be 'dehazesnn' or 'reside', got {opt['naming']!r}")
    if task == "derain":
        if opt["naming"] not in ("esdnet", "rain200"):
            raise DataError(f"derain naming must be 'esdnet' or 'rain200', got {opt['naming']!r}")
        if opt["preset"] not in ("range",) + LEGACY_RAIN_PRESETS:
            raise DataError(f"derain preset must be 'range', 'light', 'heavy' or 'mixed', got {opt['preset']!r}")
    if "test_source" in opt and opt["test_source"] not in ("photos", "motorcycle"):
        raise DataError(f"test_source must be 'photos' or 'motorcycle', got {opt['test_source']!r}")
    if opt.get("clean_dir"):
        opt["clean_dir"] = str(Path(opt["clean_dir"]).expanduser().resolve())
        folder_fingerprint(opt["clean_dir"])  # a missing or empty folder fails here, with its fix
    return opt


def _legacy(task: str, opt: dict) -> bool:
    """The earlier sampling (uniform beta range, rain presets): no severities, numbered names."""
    return (task == "dehaze" and opt["beta"] is not None) or (task == "derain" and opt["preset"] in LEGACY_RAIN_PRESETS)


def _splits(task: str, opt: dict, n_test: int) -> Dict[str, int]:
    """Test-like splits and their sizes (besides 'train')."""
    out = {"test": n_test}
    if task != "stereo_jscc" and opt["test_source"] == "photos" and int(opt["motorcycle"]) > 0:
        out[MOTORCYCLE_SPLIT] = int(opt["motorcycle"])
    return out


def _test_source(split: str, opt: dict) -> str:
    return "photos" if split == "test" and opt.get("test_source") == "photos" else "motorcycle"


def _heldout_photo(rng, i: int, opt: dict) -> np.ndarray:
    """Test image ``i`` of the held-out real-photo split: photograph ``(i // 3) % P`` (each at
    the three severities in turn), whole and reduced or a native-resolution crop, alternately."""
    pool = photo_pool("heldout")
    j = i // len(SEVERITIES)
    whole = (j % len(pool) + j // len(pool)) % 2 == 0  # alternate; the next pass swaps the two
    return heldout_view(rng, pool[j % len(pool)], opt["test_size"], whole)


def _named(task: str, opt: dict, split: str, i: int) -> Tuple[Optional[str], str]:
    """(severity level or None, file stem) of image ``i``: test-like splits of the severity
    sampling carry the level in the name (``heavy_00005``), which evaluation groups by."""
    if split == "train" or _legacy(task, opt):
        return None, f"{i:05d}"
    level = SEVERITIES[i % len(SEVERITIES)]
    return level, f"{level}_{i:05d}"


def _dehaze_files(rng, split, i, size, opt):
    level, stem = _named("dehaze", opt, split, i)
    if split == "train":
        clean = clean_image(rng, size, size, opt["procedural"], photo_pool("train", opt["clean_dir"]))
        depth = synthetic_depth(rng, clean)
    elif _test_source(split, opt) == "photos":
        clean = _heldout_photo(rng, i, opt)
        depth = synthetic_depth(rng, clean)
    else:
        left, _, depth_mm = _motorcycle()
        (sh, sw), win = _test_window(rng, opt["test_size"], i, left.shape[:2])
        clean = _crop(_resize_u8(left, (sh, sw)), win).astype(np.float32) / 255.0
        z = _crop(_resize_f(depth_mm, (sh, sw)), win)
        depth = z / float(depth_mm.max()) * rng.uniform(0.9, 1.3)  # true relative depth

    def hazy():
        if _legacy("dehaze", opt):
            return _haze_sample(rng, clean, depth, opt)
        return _haze_sample(rng, clean, depth, opt, severity_value(rng, level, opt["clean_share"]))
    if opt["naming"] == "reside":
        files = {f"GT/{i + 1}.png": clean}
        for k in range(int(opt["hazy_per_clean"])):
            files[f"hazy/{i + 1}_{k + 1}.png"] = hazy()
        return files
    return {f"GT/{stem}.png": clean, f"hazy/{stem}.png": hazy()}


def _derain_files(rng, split, i, size, opt):
    level, stem = _named("derain", opt, split, i)
    if split == "train":
        clean = clean_image(rng, size, size, opt["procedural"], photo_pool("train", opt["clean_dir"]))
    elif _test_source(split, opt) == "photos":
        clean = _heldout_photo(rng, i, opt)
    else:  # held-out real scene: a crop of either Middlebury view
        left, right, _ = _motorcycle()
        src = left if rng.random() < 0.5 else right
        (sh, sw), win = _test_window(rng, opt["test_size"], i, src.shape[:2])
        clean = _crop(_resize_u8(src, (sh, sw)), win).astype(np.float32) / 255.0
    if _legacy("derain", opt):
        rainy = add_rain(rng, clean, opt["preset"])
    else:
        rainy = add_rain(rng, clean, severity_value(rng, level, opt["clean_share"]))
    if opt["naming"] == "rain200":
        return {f"input/rain-{i + 1}.png": rainy, f"target/norain-{i + 1}.png": clean}
    return {f"input/{stem}.png": rainy, f"target/{stem}.png": clean}


def _stereo_files(rng, split, i, size, opt):
    if split == "train":
        left, right = render_stereo(rng, size, size, opt["max_disparity"], opt["max_objects"], opt["procedural"])
    else:  # the real rectified Middlebury pair, both views scaled and cropped alike
        l_full, r_full, _ = _motorcycle()
        (sh, sw), win = _test_window(rng, opt["test_size"], i, l_full.shape[:2])
        left = _crop(_resize_u8(l_full, (sh, sw)), win)
        right = _crop(_resize_u8(r_full, (sh, sw)), win)
    return {f"left/{i:05d}.png": left, f"right/{i:05d}.png": right}


_SAMPLERS = {"dehaze": _dehaze_files, "derain": _derain_files, "stereo_jscc": _stereo_files}


def _write_split(task: str, split: str, n: int, seed: int, opt: dict, out: Path, bar) -> int:
    """Write ``n`` samples of ``split``; each sampler returns {relative path: image}."""
    count = 0
    for i in range(n):
        sample = _SAMPLERS[task](_rng(seed, task, split, i), split, i, int(opt["train_size"]), opt)
        for rel, img in sample.items():
            path = out / split / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            save_png(path, img)
            count += 1
        bar.update(1)
    return count


def _sources(task: str, opt: dict, n_train: int, n_test: int) -> Dict[str, list]:
    """Names of the photographs each split is made from (for dataset.json)."""
    out: Dict[str, list] = {}
    if n_train:
        out["train"] = [p.name for p in photo_pool("train", opt.get("clean_dir"))]
    for split, n in _splits(task, opt, n_test).items():
        if n:
            out[split] = ([p.name for p in photo_pool("heldout")] if _test_source(split, opt) == "photos"
                          else ["skimage.data.stereo_motorcycle"])
    return out


def _count_files(root: Path) -> int:
    return sum(1 for split in root.iterdir() if split.is_dir() and not split.name.startswith(".")
               for p in split.rglob("*.png"))


def _is_complete(root: Path) -> bool:
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        return manifest.get("generator_version") == GENERATOR_VERSION and _count_files(root) == manifest["files"]
    except (OSError, ValueError, KeyError):
        return False


def _generate(task: str, dest: Path, n_train: int, n_test: int, seed: int, opt: dict, progress: bool) -> Path:
    """Write the whole set into a temporary sibling of ``dest`` and return it (not yet renamed)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        total = n_train + sum(_splits(task, opt, n_test).values())
        with tqdm(total=total, desc=f"making {task} data", unit="img", disable=not progress) as bar:
            files = _write_split(task, "train", n_train, seed, opt, tmp, bar)
            for split, n in _splits(task, opt, n_test).items():
                files += _write_split(task, split, n, seed, opt, tmp, bar)
        manifest = dict(task=task, seed=int(seed), n_train=int(n_train), n_test=int(n_test),
                        options={k: list(v) if isinstance(v, tuple) else v for k, v in sorted(opt.items())},
                        generator_version=GENERATOR_VERSION, files=files,
                        splits={"train": n_train, **_splits(task, opt, n_test)},
                        sources=_sources(task, opt, n_train, n_test))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def make_dataset(task: str, out_dir: PathLike, n_train: Optional[int] = None, n_test: Optional[int] = None,
                 seed: int = 0, progress: bool = True, overwrite: bool = False, **options) -> Path:
    """Write a synthetic paired dataset for ``task`` into ``out_dir`` and return its path.

    ``n_train``/``n_test``: images per split (``None``: the defaults in DEFAULT_COUNTS; for
    dehaze with ``naming='reside'`` they count clear images). ``options``: see TASK_OPTIONS
    and OPTION_HELP. The set is written to a temporary folder and renamed, so ``out_dir``
    never holds a half-written set. An existing ``out_dir`` is replaced only with
    ``overwrite=True`` and only if it is a set made here (it holds ``dataset.json``).
    """
    opt = _resolve_options(task, options)
    n_train = DEFAULT_COUNTS[task][0] if n_train is None else int(n_train)
    n_test = DEFAULT_COUNTS[task][1] if n_test is None else int(n_test)
    if n_train < 0 or n_test < 0 or n_train + n_test == 0:
        raise DataError(f"n_train and n_test must be >= 0 and not both 0, got {n_train} and {n_test}")
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not overwrite:
            raise DataError(f"{out} already exists and is not empty; choose another output folder or "
                            f"pass overwrite=True (--overwrite) to replace a set made by this tool")
        if not (out / MANIFEST).is_file():
            raise DataError(f"refusing to overwrite {out}: it has no {MANIFEST}, so it was not made by "
                            f"make_dataset; delete it yourself or choose another folder")
    tmp = _generate(task, out, n_train, n_test, seed, opt, progress)
    if out.exists():
        trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
        out.rename(trash)
        shutil.rmtree(trash, ignore_errors=True)
    tmp.rename(out)
    return out


def default_data_dir() -> Path:
    """Cache root for built-in sets: $SNN_RESTORATION_DATA or ~/.cache/snn-restoration/data."""
    env = os.environ.get(ENV_DATA_DIR)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "snn-restoration" / "data"


def builtin_name(task: str, n_train: int, n_test: int, seed: int, opt: dict) -> str:
    # what the photographs are is part of the name: installing the corpus, or changing the
    # user's clean_dir, makes a new set instead of reusing one made from other pixels
    photos = corpus_fingerprint() + (f"+{folder_fingerprint(opt['clean_dir'])}" if opt.get("clean_dir") else "")
    key = json.dumps(dict(task=task, n_train=n_train, n_test=n_test, seed=seed, version=GENERATOR_VERSION,
                          options={k: list(v) if isinstance(v, tuple) else v for k, v in opt.items()}, photos=photos),
                     sort_keys=True)
    return f"{task}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def ensure_builtin_data(task: str, root: Optional[PathLike] = None, n_train: Optional[int] = None,
                        n_test: Optional[int] = None, seed: int = 0, progress: bool = True, **options) -> Path:
    """Path of a complete built-in set for ``task``, generating it on first use.

    The set lives in ``<root>/<task>-<hash of its settings>`` (``root`` defaults to
    ``default_data_dir()``); a complete one is reused. Generation goes to a temporary folder
    that is renamed when done, so an interrupted run never leaves a set that looks complete,
    and two processes racing both end up with the same complete set.
    """
    opt = _resolve_options(task, options)
    n_train = DEFAULT_COUNTS[task][0] if n_train is None else int(n_train)
    n_test = DEFAULT_COUNTS[task][1] if n_test is None else int(n_test)
    base = Path(root).expanduser() if root is not None else default_data_dir()
    final = base / builtin_name(task, n_train, n_test, seed, opt)
    if _is_complete(final):
        return final
    logger.info("generating the built-in %s data set (%d train / %d test) in %s", task, n_train, n_test, final)
    tmp = _generate(task, final, n_train, n_test, seed, opt, progress)
    if final.exists():  # damaged copy (the rename below makes only complete ones): move it away
        if _is_complete(final):  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
            return final
        trash = base / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        try:
            final.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)
        except OSError:
            pass
    try:
        tmp.rename(final)
    except OSError:  # lost a race: the winner's set is complete
        shutil.rmtree(tmp, ignore_errors=True)
        if not _is_complete(final):
            raise
    return final
