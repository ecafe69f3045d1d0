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
import torch.utils.data
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
    e = DataError(f"{_read_problem(path, err)}. Expected a complete image file "
                  f"({', '.join(IMG_EXTENSIONS)}); the file may be truncated or not an image. "
                  f"Replace or delete it, or skip bad pairs with --set data.args.skip_bad=true "
                  f"(skip_bad=True in Python).")
    e.problem = _read_problem(path, err)  # the short form, for a caller that skips the file
    raise e from None


def _to_float_rgb(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit grayscale (Pillow opens it as I;16 or, in older versions, I).
        arr = np.asarray(img).astype(np.float32) / 65535.0
        return np.repeat(np.clip(arr, 0.0, 1.0)[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        if not np.isfinite(arr).all():  # a float TIFF can hold NaN; it would poison training
            raise ValueError(f"it holds {int((~np.isfinite(arr)).sum())} NaN or infinite pixel values")
        arr = np.clip(arr, 0.0, 1.0)
        return np.repeat(arr[..., None], 3, axis=2)
    if mode in ("P", "PA"):
        # Palette images may carry transparency; go through RGBA and drop alpha below.
        img = img.convert("RGBA")
    if img.mode != "RGB":
        # RGBA/LA: alpha is dropped (as OpenCV and scikit-image readers do); L/1/CMYK/YCbCr: converted.
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.float32) / 255.0


def _decode(path: Path, upright: bool = False) -> np.ndarray:
    with Image.open(path) as img:
        img.load()  # decode fully now: a truncated file fails here, not later
        if upright:  # a phone photo's EXIF orientation, applied as a viewer shows it
            from PIL import ImageOps

            img = ImageOps.exif_transpose(img)
        return np.ascontiguousarray(_to_float_rgb(img))


def _header_size(path: Path) -> Tuple[int, int]:
    with Image.open(path) as img:
        w, h = img.size
    return h, w


def load_image(path: PathLike, upright: bool = False) -> np.ndarray:
    """Read ``path`` as a float32 ``H,W,3`` RGB array in [0, 1]; ``upright`` applies the
    EXIF orientation (for a user's photographs; data sets are read as stored).

    Raises DataError naming the file when it is missing, truncated or not an image.
    """
    path = Path(path)
    try:
        return _decode(path, upright)
    except _READ_ERRORS as e:
        _raise_read_error(path, e)


def load_tensor(path: PathLike, upright: bool = False) -> torch.Tensor:
    """:func:`load_image` as a float32 ``3,H,W`` tensor."""
    return to_tensor(load_image(path, upright))


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
                        f"same size; fix or remove the pair, or pass --set data.args.skip_bad=true (skip_bad=True "
                        f"in Python), which checks every file up front and skips bad pairs.")


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


def save_image(img: torch.Tensor, path: PathLike) -> None:
    """A ``3,H,W`` (or ``1,H,W``) tensor in [0, 1] -> image file, written to a temporary
    name and renamed. The format follows the extension (PNG when it has none; JPEG at
    quality 95)."""
    from ..atomic import temp_path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = to_uint8(img.detach().float().clamp(0, 1).cpu().numpy())
    arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
           ".webp": "WEBP", ".ppm": "PPM", ".pgm": "PPM", ".pnm": "PPM"}.get(path.suffix.lower(), "PNG")
    tmp = temp_path(path)
    try:
        Image.fromarray(arr).save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def expand_inputs(spec: PathLike) -> Tuple[Path, List[Path]]:
    """A user's ``--input``: an image file, a folder (its images, not sub-folders) or a
    glob pattern (``'photos/*.jpg'``, ``'trip/**/*.png'``). Returns the folder that output
    names are relative to and the image files, in natural order."""
    import glob

    text = os.path.expanduser(str(spec))
    p = Path(text)
    if p.is_dir():
        files = [p / n for n in list_images(p)]
        base = p
    elif p.is_file():
        if not is_image_file(p.name):
            raise DataError(f"--input {text} is not an image file ({', '.join(IMG_EXTENSIONS)})")
        files, base = [p], p.parent
    elif glob.has_magic(text):
        files = [Path(f) for f in natsorted(glob.glob(text, recursive=True))
                 if Path(f).is_file() and is_image_file(Path(f).name)]
        base = Path(os.path.commonpath([str(f.parent) for f in files])) if files else Path(".")
    else:
        raise MissingDataError(f"--input {text} does not exist; pass an image file, a folder of images or a "
                               f"quoted glob such as 'photos/*.jpg'")
    if not files:
        raise MissingDataError(f"no images ({', '.join(IMG_EXTENSIONS)}) in --input {text}")
    return base, files


class ImageFiles(torch.utils.data.Dataset):
    """A user's images (any size, no target) for inference: items ``{'input', 'name'}``,
    the name relative to the input folder. A file that cannot be read raises DataError
    when its item is asked for, so a caller can skip it and go on."""

    def __init__(self, spec: PathLike):
        self.base, self.paths = expand_inputs(spec)
        self.names = [str(p.relative_to(self.base)) for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        return {"input": load_tensor(self.paths[i], upright=True), "name": self.names[i]}


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """``H,W,3`` float array -> contiguous float32 ``3,H,W`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32))


def warn_skipped(dataset: str, problems: Sequence[str]) -> None:
    """One warning listing everything ``skip_bad=True`` dropped."""
    if problems:
        warnings.warn(f"{dataset}: skip_bad=True skipped {len(problems)} bad pair(s):\n"
                      f"{list_problems(problems)}", BadDataWarning, stacklevel=3)
