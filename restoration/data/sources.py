"""Clean images and severities for the built-in data sets (``synthetic.py`` writes them).

* training: crops of real photographs -- the pinned wallpaper-package corpus (``corpus.py``:
  Debian packages, sha256-checked) plus the photographs shipped inside scikit-image -- or of a
  user's own folder, and a small share of procedural "dead leaves" images. Crops come at two
  scales: from a reduced copy of the whole photograph (zoomed log-uniformly down to the whole
  frame) and at native resolution, so the fine detail of a real photograph is in the training
  distribution;
* held-out test photographs: the corpus photographs of role ``heldout`` (never trained on;
  without the corpus, a documented fallback of three scikit-image photographs that are then
  left out of training), whole (reduced) or as a native-resolution crop;
* the Middlebury 2014 motorcycle scene (``skimage.data.stereo_motorcycle()``: real stereo with
  real disparity, so a true depth), the project's earlier test set, held out of every training
  split;
* severities: ``light``, ``medium``, ``heavy`` are thirds of s in [0, 1]; training draws s
  uniformly, with a share of nearly clean ``TRACE`` inputs.
"""
from __future__ import annotations

import functools
import logging
import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from PIL import Image

from .corpus import Photo, corpus_photos, folder_photos
from .images import DataError

logger = logging.getLogger("restoration.data")

SEVERITIES = ("light", "medium", "heavy")
SEVERITY_BANDS = {"light": (0.0, 1 / 3), "medium": (1 / 3, 2 / 3), "heavy": (2 / 3, 1.0)}
TRACE = -1.0  # severity value of a "nearly clean" training input

# scikit-image photographs shipped in its wheel (checked to load offline). Gray ones get a
# random two-colour tint. The motorcycle pair is *not* here: it is reserved for test splits.
PHOTOS_RGB = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")
PHOTOS_GRAY = ("camera", "brick", "grass", "gravel", "coins", "clock", "moon")

# Middlebury 2014 motorcycle calibration for the 4x down-sampled images skimage ships.
_MB_FOCAL, _MB_BASELINE_MM, _MB_DOFFS = 994.978, 193.001, 31.086


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


def severity_value(rng: np.random.Generator, level: Optional[str], clean_share: float = 0.0) -> float:
    """A severity s in [0, 1] for ``level`` (light/medium/heavy: its third of the range), or,
    for training (``level`` None), TRACE with probability ``clean_share``, else uniform."""
    if level is None:
        return TRACE if rng.random() < clean_share else float(rng.uniform(0.0, 1.0))
    if level not in SEVERITY_BANDS:
        raise DataError(f"unknown severity {level!r}; expected one of {', '.join(SEVERITIES)}")
    return float(rng.uniform(*SEVERITY_BANDS[level]))



def heldout_photo(rng: np.random.Generator, i: int, test_size: Sequence[int]) -> np.ndarray:
    """Test image ``i`` of the held-out real-photo split: photograph ``(i // 3) % P`` (each at
    the three severities in turn), whole and reduced or a native-resolution crop, alternately."""
    pool = photo_pool("heldout")
    j = i // len(SEVERITIES)
    whole = (j % len(pool) + j // len(pool)) % 2 == 0  # alternate; the next pass swaps the two
    return heldout_view(rng, pool[j % len(pool)], test_size, whole)


def motorcycle_crops(rng: np.random.Generator, test_size: Sequence[int], i: int) -> Dict[str, np.ndarray]:
    """Test view ``i`` of the Middlebury scene (see ``_test_window``), both views cropped alike:
    ``left`` and ``right`` (uint8 ``H,W,3``) and ``depth``, the left view's true depth relative
    to the scene's farthest point."""
    left, right, depth_mm = _motorcycle()
    (sh, sw), win = _test_window(rng, test_size, i, left.shape[:2])
    return {"left": _crop(_resize_u8(left, (sh, sw)), win), "right": _crop(_resize_u8(right, (sh, sw)), win),
            "depth": _crop(_resize_f(depth_mm, (sh, sw)), win) / float(depth_mm.max())}


def as_float(img: np.ndarray) -> np.ndarray:
    """uint8 ``H,W,C`` -> float32 in [0, 1]."""
    return img.astype(np.float32) / 255.0
