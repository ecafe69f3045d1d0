"""The real-photo corpus of the built-in data: which photographs, where, pinned by sha256.

``corpus.json`` (next to this file) lists photographs shipped by Debian wallpaper packages
(surveyed by eye: photographs only, no drawings or renders), each with its package, path,
sha256 and role: ``train`` photographs give the clean images of training splits;
``heldout`` ones make the held-out real-photo evaluation split and are never trained on.

Where the packages are missing (no apt, no root), :func:`corpus_status` says which and
how to install them, once, and the generator falls back to scikit-image's photographs
(see ``restoration.data.synthetic``). A file whose sha256 differs from the manifest (a
different package version) is treated as missing, so a built-in set is always made from
exactly the pinned pixels.

Users bring their own clean photographs with :func:`folder_photos` (``--clean-dir``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
from PIL import Image

from .images import DataError, PathLike, list_images, load_image_u8

logger = logging.getLogger("restoration.data")

MANIFEST_PATH = Path(__file__).with_name("corpus.json")
ENV_CORPUS = "SNN_RESTORATION_CORPUS"  # 'skimage' forces the fallback (fast tests); a path: another manifest
ROLES = ("train", "heldout")
REDUCED_SIDE = 1024   # long side of the cached whole-photo copy (crops at reduced scale)
NATIVE_TILE = 384     # side of the cached native-resolution tiles (crops at full detail)
NATIVE_TILES = 6      # tiles kept per photograph


@dataclass(frozen=True)
class Photo:
    """One photograph ready for cropping: a reduced whole copy and native-resolution tiles."""

    name: str
    reduced: np.ndarray                 # uint8 H,W,3, long side <= REDUCED_SIDE
    tiles: Tuple[np.ndarray, ...]       # uint8 tiles of the full-resolution image
    scale: float                        # reduced size / full size


def read_corpus_manifest(path: Optional[PathLike] = None) -> dict:
    path = Path(path) if path is not None else _manifest_path()
    try:
        m = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the corpus manifest {path}: {e}; restore it with "
                        f"'git checkout -- restoration/data/corpus.json'") from None
    for p in m.get("photos", []):
        for key in ("name", "package", "path", "sha256", "role"):
            if key not in p:
                raise DataError(f"corpus manifest {path}: entry {p.get('name', '?')!r} has no {key!r}")
        if p["role"] not in ROLES:
            raise DataError(f"corpus manifest {path}: entry {p['name']!r} has role {p['role']!r}, "
                            f"expected one of {ROLES}")
    return m


def _manifest_path() -> Path:
    env = os.environ.get(ENV_CORPUS, "")
    return Path(env) if env and env != "skimage" else MANIFEST_PATH


def forced_fallback() -> bool:
    return os.environ.get(ENV_CORPUS, "") == "skimage"


@functools.lru_cache(maxsize=64)
def _sha256(path: str, size: int, mtime: float) -> str:  # size/mtime: re-hash a changed file
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _entry_ok(entry: dict) -> bool:
    p = Path(entry["path"])
    try:
        st = p.stat()
    except OSError:
        return False
    return _sha256(str(p), st.st_size, st.st_mtime) == entry["sha256"]


@dataclass(frozen=True)
class CorpusStatus:
    present: Tuple[dict, ...]
    missing: Tuple[dict, ...]
    install: str

    @property
    def complete(self) -> bool:
        return not self.missing

    def message(self) -> str:
        """One line: what is missing and the command that installs it ('' when complete)."""
        if not self.missing:
            return ""
        pkgs = sorted({e["package"] for e in self.missing})
        return (f"real-photo corpus incomplete: {len(self.missing)} of {len(self.missing) + len(self.present)} "
                f"photographs missing or changed (packages {', '.join(pkgs)}); install them with "
                f"'sudo apt-get install {' '.join(pkgs)}' (or 'bash tools/setup_env.sh' as root); "
                f"until then the built-in data uses scikit-image's photographs only")


def corpus_status(manifest: Optional[dict] = None) -> CorpusStatus:
    """Which manifest photographs are installed with the pinned sha256."""
    m = read_corpus_manifest() if manifest is None else manifest
    if forced_fallback():
        present: list = []
        missing = list(m["photos"])
    else:
        present, missing = [], []
        for e in m["photos"]:
            (present if _entry_ok(e) else missing).append(e)
    pkgs = sorted({e["package"] for e in m["photos"]})
    return CorpusStatus(tuple(present), tuple(missing), "apt-get install -y --no-install-recommends " + " ".join(pkgs))


@functools.lru_cache(maxsize=None)
def _warn_once(msg: str) -> None:
    logger.warning(msg)


def corpus_entries(role: str, manifest: Optional[dict] = None) -> List[dict]:
    """Installed photographs of ``role``, in manifest order; warns once if some are missing.

    The corpus is used whole or not at all: a partly installed corpus would make a set
    that depends on what happens to be installed, so then it counts as missing.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    st = corpus_status(manifest)
    if not st.complete:
        if not forced_fallback():
            _warn_once(st.message())
        return []
    return [e for e in st.present if e["role"] == role]


def corpus_fingerprint() -> str:
    """Short key of what the built-in data is made from (part of the built-in set's name)."""
    st = corpus_status()
    if not st.complete:
        return "skimage"
    return hashlib.sha256("".join(e["sha256"] for e in st.present).encode()).hexdigest()[:8]


def _prepare(name: str, full: np.ndarray, tile_seed: int) -> Photo:
    """A reduced whole copy and a few full-resolution tiles at fixed random places."""
    h, w = full.shape[:2]
    f = min(1.0, REDUCED_SIDE / max(h, w))
    reduced = full if f == 1.0 else np.asarray(
        Image.fromarray(full).resize((max(1, round(w * f)), max(1, round(h * f))), Image.BICUBIC))
    rng = np.random.default_rng(tile_seed)
    t = min(NATIVE_TILE, h, w)
    tiles = tuple(np.ascontiguousarray(full[y:y + t, x:x + t])
                  for y, x in zip(rng.integers(0, h - t + 1, NATIVE_TILES), rng.integers(0, w - t + 1, NATIVE_TILES)))
    return Photo(name, np.ascontiguousarray(reduced), tiles, f)


@functools.lru_cache(maxsize=None)
def _load_photo(path: str, name: str) -> Photo:
    seed = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    return _prepare(name, load_image_u8(path), seed)


def corpus_photos(role: str) -> Tuple[Photo, ...]:
    """The installed corpus photographs of ``role`` (empty when the corpus is missing)."""
    return tuple(_load_photo(e["path"], e["name"]) for e in corpus_entries(role))


def folder_images(folder: PathLike) -> List[Path]:
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"clean-photo folder {folder} does not exist; pass --clean-dir (or data.builtin.clean_dir) "
                        f"with a folder of your own clean photographs")
    names = list_images(folder)
    if not names:
        raise DataError(f"no images in clean-photo folder {folder}; it needs clean photographs "
                        f"(.png, .jpg, ...) directly inside it")
    return [folder / n for n in names]


def folder_fingerprint(folder: PathLike) -> str:
    """Names, sizes and modification times of a user's folder: a changed folder makes a new set."""
    h = hashlib.sha256()
    for p in folder_images(folder):
        st = p.stat()
        h.update(f"{p.name}\0{st.st_size}\0{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:12]


def folder_photos(folder: PathLike) -> Tuple[Photo, ...]:
    """Every image in ``folder`` prepared for cropping (read with ``images.load_image_u8``)."""
    return tuple(_load_photo(str(p), p.name) for p in folder_images(folder))
