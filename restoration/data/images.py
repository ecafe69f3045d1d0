"""Reading and writing images, listing image folders, and the data-layer errors.

Every image the data layer hands out is a float32 ``H,W,3`` RGB array in [0, 1]
(``to_tensor`` turns it into ``3,H,W``). Grayscale, gray+alpha, palette, RGBA, CMYK
and 16-bit files are converted here, so nothing downstream sees another format.
Pillow reads 16-bit RGB PNGs at 8-bit precision (16-bit grayscale keeps all 16 bits).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple, Union

import numpy as np
import torch
from natsort import natsorted
from PIL import Image, UnidentifiedImageError

PathLike = Union[str, os.PathLike]

IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm")

# How many offending files an error message spells out before summarising the rest.
MAX_LISTED = 10


class DataError(ValueError):
    """A dataset on disk is not what the reader expected (message names files and the fix)."""


class MissingDataError(DataError, FileNotFoundError):
    """A folder or file the layout needs does not exist."""


class BadDataWarning(UserWarning):
    """Issued once per dataset when ``skip_bad=True`` drops unusable pairs."""


def list_problems(problems: Sequence[str], limit: int = MAX_LISTED) -> str:
    """Bullet list of the first ``limit`` problems, then a count of the rest."""
    lines = [f"  - {p}" for p in problems[:limit]]
    if len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return "\n".join(lines)


def is_image_file(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMG_EXTENSIONS)


def list_images(folder: PathLike) -> List[str]:
    """Image file names directly inside ``folder``, in natural order (2.png before 10.png)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingDataError(f"image folder {folder} does not exist")
    return natsorted(n for n in os.listdir(folder) if is_image_file(n) and (folder / n).is_file())


def find_subdir(parent: Path, names: Iterable[str]) -> Path | None:
    """The first of ``names`` that exists in ``parent`` as a folder, matched without case."""
    if not parent.is_dir():
        return None
    present = {p.name.lower(): p for p in parent.iterdir() if p.is_dir()}
    for n in names:
        if n.lower() in present:
            return present[n.lower()]
    return None


_READ_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError)


def _read_problem(path: Path, err: BaseException) -> str:
    if isinstance(err, FileNotFoundError):
        return f"image file {path} does not exist"
    return f"cannot read image {path}: {err}"


def _raise_read_error(path: Path, err: BaseException):
    if isinstance(err, FileNotFoundError):
        raise MissingDataError(_read_problem(path, err)) from None
    raise DataError(f"{_read_problem(path, err)}. Expected a complete image file "
                    f"({', '.join(IMG_EXTENSIONS)}); the file may be truncated or not an image. "
                    f"Replace or delete it, or pass skip_bad=True to skip bad pairs.") from None


def _to_float_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale (Pillow opens it as I;16 or, in older versions, I).
        arr = np.asarray(img).astype(np.float32) / 65535.0
        return np.repeat(np.clip(arr, 0.0, 1.0)[..., None], 3, axis=2)
    if mode == "F":
        arr = np.clip(np.asarray(img, dtype=np.float32), 0.0, 1.0)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode in ("P", "PA"):
        # Palette images may carry transparency; go through RGBA and drop alpha below.
        img = img.convert("RGBA")
    if img.mode != "RGB":
        # RGBA/LA: alpha is dropped (as OpenCV and scikit-image readers do); L/1/CMYK/YCbCr: converted.
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.float32) / 255.0


def _decode(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        img.load()  # decode fully now: a truncated file fails here, not later
        return np.ascontiguousarray(_to_float_rgb(img))


def _header_size(path: Path) -> Tuple[int, int]:
    with Image.open(path) as img:
        w, h = img.size
    return h, w


def load_image(path: PathLike) -> np.ndarray:
    """Read ``path`` as a float32 ``H,W,3`` RGB array in [0, 1].

    Raises DataError naming the file when it is missing, truncated or not an image.
    """
    path = Path(path)
    try:
        return _decode(path)
    except _READ_ERRORS as e:
        _raise_read_error(path, e)


def load_image_u8(path: PathLike) -> np.ndarray:
    """Read ``path`` as a uint8 ``H,W,3`` RGB array (4x faster than ``load_image`` on large
    8-bit photographs; other formats go through it). Same errors as ``load_image``."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGB", "L", "RGBA", "LA", "CMYK", "YCbCr", "1"):
                return np.ascontiguousarray(np.asarray(img.convert("RGB")))
            return to_uint8(_to_float_rgb(img))
    except _READ_ERRORS as e:
        _raise_read_error(path, e)


def image_size(path: PathLike) -> Tuple[int, int]:
    """``(height, width)`` from the file header only (cheap; does not decode pixels)."""
    path = Path(path)
    try:
        return _header_size(path)
    except _READ_ERRORS as e:
        _raise_read_error(path, e)


def check_files(paths: Sequence[Path], labels: Sequence[str], full: bool = True) -> List[str]:
    """Problems (strings naming files) with a group of images that must share one size.

    ``full=True`` decodes every file (finds truncation); ``False`` reads headers only.
    """
    sizes = []
    for p in paths:
        try:
            sizes.append(_decode(Path(p)).shape[:2] if full else _header_size(Path(p)))
        except _READ_ERRORS as e:
            return [_read_problem(Path(p), e)]
    if len(set(sizes)) > 1:
        desc = ", ".join(f"{lab} {p} is {w}x{h}" for lab, p, (h, w) in zip(labels, paths, sizes))
        return [f"size mismatch: {desc} (width x height; the images of a pair must have the same size)"]
    return []


def require_same_size(arrays: Sequence[np.ndarray], paths: Sequence[Path], labels: Sequence[str]) -> None:
    """Raise DataError naming the files if the decoded arrays differ in size."""
    shapes = [a.shape[:2] for a in arrays]
    if len(set(shapes)) > 1:
        desc = ", ".join(f"{lab} {p} is {s[1]}x{s[0]}" for lab, p, s in zip(labels, paths, shapes))
        raise DataError(f"size mismatch: {desc} (width x height). The images of a pair must have the "
                        f"same size; fix or remove the pair, or pass skip_bad=True (which checks every "
                        f"file up front and skips bad pairs).")


def to_uint8(img: np.ndarray) -> np.ndarray:
    """Float [0,1] -> uint8 with rounding (uint8 input is returned unchanged)."""
    if img.dtype == np.uint8:
        return img
    return np.clip(np.rint(np.asarray(img, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def save_png(path: PathLike, img: np.ndarray) -> None:
    """Write an ``H,W,3`` (or ``H,W``) float [0,1] or uint8 image as PNG, byte-deterministic.

    No metadata (time stamps etc.) is written, so the same pixels give the same bytes.
    """
    Image.fromarray(to_uint8(img)).save(path, format="PNG", compress_level=6)


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``H,W,3`` float array -> contiguous float32 ``3,H,W`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))


def warn_skipped(dataset: str, problems: Sequence[str]) -> None:
    """One warning listing everything ``skip_bad=True`` dropped."""
    if problems:
        warnings.warn(f"{dataset}: skip_bad=True skipped {len(problems)} bad pair(s):\n"
                      f"{list_problems(problems)}", BadDataWarning, stacklevel=3)
