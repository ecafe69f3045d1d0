"""Joint transforms for image pairs and stereo views (``H,W,C`` numpy arrays).

Every function takes a list of arrays and applies the *same* geometric change to all
of them, so a degraded image stays aligned with its clean target and a left view with
its right view. Randomness comes from ``rng`` (a ``random.Random``); by default the
``random`` module, which PyTorch re-seeds in every DataLoader worker.

The training crop follows DehazeSNN's ``augment``: with ``edge_decay > 0`` a crop is
snapped to an image border with probability ``patch / side * edge_decay`` (per axis),
otherwise drawn uniformly; then a horizontal flip with probability 1/2 and, unless
``only_h_flip``, a rotation by a uniformly drawn multiple of 90 degrees.
"""
from __future__ import annotations

import random as _random
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from .images import DataError

Arrays = List[np.ndarray]


def _rng(rng: Optional[_random.Random]):
    return _random if rng is None else rng


def _check_same_size(imgs: Sequence[np.ndarray]) -> Tuple[int, int]:
    shapes = {im.shape[:2] for im in imgs}
    if len(shapes) != 1:
        raise DataError(f"joint transform got images of different sizes {sorted(shapes)}; "
                        f"the images of a pair must have the same size")
    return next(iter(shapes))


def _patch_hw(size) -> Tuple[int, int]:
    return (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))


def crop_origin(length: int, patch: int, edge_decay: float = 0.0,
                rng: Optional[_random.Random] = None) -> int:
    """Start index of a random crop of ``patch`` along an axis of ``length`` (DehazeSNN rule)."""
    r = _rng(rng)
    if r.random() < patch / length * edge_decay:
        return 0 if r.randint(0, 1) == 0 else length - patch
    return r.randint(0, length - patch)


def random_crop(imgs: Sequence[np.ndarray], size, edge_decay: float = 0.0,
                rng: Optional[_random.Random] = None, names: Sequence[str] = ()) -> Arrays:
    """The same random ``size`` crop (int or (h, w)) of every image."""
    h, w = _check_same_size(imgs)
    ph, pw = _patch_hw(size)
    if ph > h or pw > w:
        what = f" ({', '.join(map(str, names))})" if names else ""
        raise DataError(f"image{what} is {w}x{h} (width x height), smaller than the training "
                        f"patch {pw}x{ph}; use a smaller patch_size or larger images")
    top = crop_origin(h, ph, edge_decay, rng)
    left = crop_origin(w, pw, edge_decay, rng)
    return [im[top:top + ph, left:left + pw] for im in imgs]


def center_crop(imgs: Sequence[np.ndarray], size) -> Arrays:
    """The central ``size`` crop of every image (DehazeSNN's ``align``); clamped to the image."""
    h, w = _check_same_size(imgs)
    ph, pw = _patch_hw(size)
    ph, pw = min(ph, h), min(pw, w)
    top, left = (h - ph) // 2, (w - pw) // 2
    return [im[top:top + ph, left:left + pw] for im in imgs]


def flip_rotate(imgs: Sequence[np.ndarray], only_h_flip: bool = False, flip: bool = True,
                rotate: bool = True, rng: Optional[_random.Random] = None) -> Arrays:
    """Random horizontal flip, then (unless ``only_h_flip``) a random rot90, same for all."""
    r = _rng(rng)
    out = list(imgs)
    if flip and r.randint(0, 1) == 1:
        out = [np.flip(im, axis=1) for im in out]
    if rotate and not only_h_flip:
        k = r.randint(0, 3)
        out = [np.rot90(im, k, axes=(0, 1)) for im in out]
    return out


def resize(img: np.ndarray, size) -> np.ndarray:
    """Bilinear, antialiased resize of an ``H,W,C`` float array to ``size`` (int or (h, w))."""
    h, w = _patch_hw(size)
    t = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None]
    out = F.interpolate(t, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
    return out[0].clamp_(0, 1).numpy().transpose(1, 2, 0)
