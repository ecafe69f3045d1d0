"""Stereo image pairs: items ``{'left': 3xHxW, 'right': 3xHxW, 'name': str}`` in [0, 1].

Layouts (``layout=``):

``kitti``       KITTI stereo 2015: ``<root>/<split>/image_2/X`` (left) <-> ``image_3/X`` (right).
                ``split`` ``train``/``test`` also finds KITTI's ``training``/``testing`` folders.
``leftright``   ``<root>/<split>/left/X`` <-> ``<root>/<split>/right/X``.
``instereo2k``  ``<root>/<split>/<scene>/left.png`` + ``right.png`` (InStereo2K).
``pathlist``    a text file as DHF-JSCC uses: a left path and a right path on alternate lines
                (``dataset/data_paths/KITTI_stereo_train.txt``), or ``left right`` on one line.
                Relative paths are relative to ``root`` (DHF-JSCC's ``dataset_path``) or, when
                ``root`` is the list file, to the list file's folder. The list is ``list_file=``,
                ``root`` itself, ``<root>/<split>.txt`` or the one ``<root>/*_<split>.txt``.
``auto``        picks one of the above from what is on disk.

Transforms: DHF-JSCC's pre-processing is ``center_crop=370, resize=128`` (both optional,
applied in every mode). Then ``mode='train'``: the same random ``patch_size`` crop of both
views and a random horizontal flip; flipping mirrors the scene, so the flipped right view
becomes the left one (the views are swapped, keeping the left view left of the right one).
No rotations: they would break the horizontal epipolar lines. ``'valid'``: centre
``patch_size`` crop. ``'test'``: no crop.
"""
from __future__ import annotations

import random as _random
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from natsort import natsorted

from ..registry import DATASETS
from .base import MODES, FilePair, FilePairDataset, check_choice
from .images import (DataError, MissingDataError, PathLike, find_subdir, list_images, load_image,
                     require_same_size, to_tensor)
from .paired import _folder_listing, _images_or_raise, _stem, read_path_list, resolve_listed
from .transforms import center_crop as _center_crop
from .transforms import random_crop, resize as _resize

LAYOUTS = ("auto", "kitti", "leftright", "instereo2k", "pathlist")
_SPLIT_ALIASES = {"train": ("train", "training"), "test": ("test", "testing"), "val": ("val", "valid"),
                  "valid": ("valid", "val")}

Resolved = Tuple[List[FilePair], List[str], str, str]


def _split_dir(root: Path, split: Optional[str], needed: Sequence[str], layout: str, expect: str) -> Path:
    if not root.exists():
        raise MissingDataError(f"dataset root {root} does not exist (layout {layout} expects {expect})")
    if split:
        for name in _SPLIT_ALIASES.get(split, (split,)):
            if (root / name).is_dir():
                return root / name
    else:
        return root
    if needed and all(find_subdir(root, [n]) for n in needed):
        return root
    raise MissingDataError(f"missing folder {root / split}: layout {layout} expects {expect}. "
                           f"{root} contains: {_folder_listing(root)}")


def _two_folders(root: Path, split: Optional[str], layout: str, left_name: str, right_name: str) -> Resolved:
    expect = f"<root>/<split>/{{{left_name},{right_name}}} with identical file names"
    sd = _split_dir(root, split, [left_name, right_name], layout, expect)
    dirs = []
    for n in (left_name, right_name):
        d = find_subdir(sd, [n])
        if d is None:
            raise MissingDataError(f"missing folder {sd / n} (layout {layout} expects {expect}); "
                                   f"{sd} contains: {_folder_listing(sd)}")
        dirs.append(d)
    left_dir, right_dir = dirs
    lefts, rights = _images_or_raise(left_dir), list_images(right_dir)
    rset = set(rights)
    rstems: Dict[str, str] = {}
    for r in rights:
        rstems.setdefault(_stem(r), r)
    pairs, problems, used = [], [], set()
    for n in lefts:
        r = n if n in rset else rstems.get(_stem(n))
        if r is None:
            problems.append(f"left image {left_dir / n} has no right partner: expected {right_dir / n}")
            continue
        used.add(r)
        pairs.append(FilePair(left_dir / n, right_dir / r, n))
    problems += [f"right image {right_dir / r} has no left partner: expected {left_dir / r}"
                 for r in rights if r not in used]
    return pairs, problems, layout, f"{sd}: {left_dir.name}/ + {right_dir.name}/"


def _instereo2k(root: Path, split: Optional[str]) -> Resolved:
    expect = "<root>/<split>/<scene>/{left,right}.png"
    sd = _split_dir(root, split, [], "instereo2k", expect)
    scenes = natsorted((p for p in sd.iterdir() if p.is_dir()), key=lambda p: p.name)
    pairs, problems = [], []
    for s in scenes:
        files = {_stem(f).lower(): f for f in list_images(s)}
        if "left" not in files and "right" not in files:
            continue
        if "left" not in files or "right" not in files:
            have, miss = ("left", "right") if "left" in files else ("right", "left")
            problems.append(f"{have} image {s / files[have]} has no {miss} partner: expected {s / miss}.png")
            continue
        pairs.append(FilePair(s / files["left"], s / files["right"], f"{s.name}/{files['left']}"))
    if not pairs and not problems:
        raise DataError(f"empty split: {sd} has no <scene>/left.png + right.png folders ({expect})")
    return pairs, problems, "instereo2k", f"{sd}: <scene>/left + right"


def _find_list(root: Path, split: Optional[str], list_file: Optional[PathLike]) -> Path:
    if list_file is not None:
        lf = Path(list_file)
        return root / lf if not lf.is_absolute() and not lf.exists() and root.is_dir() else lf
    if root.is_file():
        return root
    if split:
        if (root / f"{split}.txt").is_file():
            return root / f"{split}.txt"
        cands = sorted(root.glob(f"*_{split}.txt")) + sorted(root.glob(f"data_paths/*_{split}.txt"))
        if len(cands) == 1:
            return cands[0]
        if len(cands) > 1:
            raise DataError(f"several path-list files for split {split!r} in {root}: "
                            f"{', '.join(map(str, cands))}; pass list_file=... to choose one")
    raise MissingDataError(f"no path-list file for split {split!r} in {root}: layout pathlist needs "
                           f"list_file=<file>, a list file as root, {root}/{split}.txt or {root}/*_{split}.txt")


def _pathlist(root: Path, split: Optional[str], list_file: Optional[PathLike]) -> Resolved:
    lf = _find_list(root, split, list_file)
    rows = read_path_list(lf)
    if not rows:
        raise DataError(f"empty split: path-list file {lf} lists no stereo pairs")
    widths = {len(f) for _, f in rows}
    if widths == {2}:
        entries = [(n, f[0], f[1]) for n, f in rows]
    elif widths == {1}:
        if len(rows) % 2:
            raise DataError(f"{lf}: {len(rows)} paths, an odd number; DHF-JSCC path lists alternate a "
                            f"left path and a right path on successive lines (line {rows[-1][0]} has no "
                            f"right partner)")
        entries = [(rows[i][0], rows[i][1][0], rows[i + 1][1][0]) for i in range(0, len(rows), 2)]
    else:
        bad = next(n for n, f in rows if len(f) not in (1, 2)) if widths - {1, 2} else rows[0][0]
        raise DataError(f"{lf} line {bad}: expected either one path per line (left and right on "
                        f"alternate lines, as DHF-JSCC) or 'left right' on every line, not a mix")
    bases = [root if root.is_dir() else lf.parent, lf.parent]
    pairs, problems = [], []
    for line_no, left, right in entries:
        a, b = resolve_listed(left, bases), resolve_listed(right, bases)
        missing = [f"{lab} file {p}" for lab, p in (("left", a), ("right", b)) if not p.is_file()]
        if missing:
            problems.append(f"{lf} line {line_no}: {' and '.join(missing)} does not exist")
            continue
        pairs.append(FilePair(a, b, left))
    return pairs, problems, "pathlist", f"path list {lf}"


def detect_layout(root: Path, split: Optional[str]) -> str:
    if root.is_file():
        return "pathlist"
    if not root.exists():
        raise MissingDataError(f"dataset root {root} does not exist")
    sd = None
    if split:
        sd = next((root / n for n in _SPLIT_ALIASES.get(split, (split,)) if (root / n).is_dir()), None)
    sd = sd or root
    if find_subdir(sd, ["image_2"]) or find_subdir(sd, ["image_3"]):
        return "kitti"
    if find_subdir(sd, ["left"]) or find_subdir(sd, ["right"]):
        return "leftright"
    if split and ((root / f"{split}.txt").is_file() or list(root.glob(f"*_{split}.txt"))
                  or list(root.glob(f"data_paths/*_{split}.txt"))):
        return "pathlist"
    scenes = [p for p in sd.iterdir() if p.is_dir()][:50] if sd.is_dir() else []
    if any(_stem(f).lower() == "left" for p in scenes for f in list_images(p)):
        return "instereo2k"
    if split and sd == root:
        raise MissingDataError(f"missing folder {root / split}: expected <root>/<split>/ holding image_2/+image_3/, "
                               f"left/+right/ or <scene>/left.png+right.png, or a path list <root>/{split}.txt. "
                               f"{root} contains: {_folder_listing(root)}")
    raise DataError(f"cannot tell the stereo layout of {sd}: it contains {_folder_listing(sd)}. Expected "
                    f"image_2/+image_3/ (kitti), left/+right/ (leftright), <scene>/left.png+right.png "
                    f"(instereo2k) or a path list (<split>.txt, *_<split>.txt, or list_file=...)")


def resolve_stereo(root: PathLike, split: Optional[str] = "train", layout: str = "auto",
                   list_file: Optional[PathLike] = None) -> Resolved:
    check_choice("stereo layout", layout, LAYOUTS)
    root = Path(root).expanduser()
    detected = layout == "auto"
    if detected:
        layout = "pathlist" if list_file is not None else detect_layout(root, split)
    if layout == "kitti":
        out = _two_folders(root, split, "kitti", "image_2", "image_3")
    elif layout == "leftright":
        out = _two_folders(root, split, "leftright", "left", "right")
    elif layout == "instereo2k":
        out = _instereo2k(root, split)
    else:
        out = _pathlist(root, split, list_file)
    pairs, problems, layout, desc = out
    return pairs, problems, layout, (f"layout {layout} (auto-detected), " if detected else f"layout {layout}, ") + desc


@DATASETS.register("stereo")
class StereoDataset(FilePairDataset):
    """Rectified stereo pairs (see the module docstring for layouts and transforms).

    Args:
        root, split, layout: where the pairs are; ``layout='auto'`` detects it.
        mode: ``'train'`` | ``'valid'`` | ``'test'``.
        patch_size: random (train) or centre (valid) crop; ``None``: no crop.
        center_crop, resize: pre-processing in every mode (DHF-JSCC: 370 and 128).
        flip: random horizontal flip (with left/right swap) in train mode.
        skip_bad, verify: as for PairedImageDataset.
        list_file: path-list file for ``layout='pathlist'``.
    """

    labels = ("left", "right")

    def __init__(self, root: PathLike, split: Optional[str] = "train", layout: str = "auto",
                 mode: str = "train", patch_size: Union[int, Tuple[int, int], None] = None,
                 center_crop: Union[int, Tuple[int, int], None] = None,
                 resize: Union[int, Tuple[int, int], None] = None, flip: bool = True,
                 skip_bad: bool = False, verify: Union[bool, str, None] = None,
                 list_file: Optional[PathLike] = None):
        check_choice("mode", mode, MODES)
        self.root, self.split, self.mode = Path(root), split, mode
        self.patch_size, self.center_crop, self.resize, self.flip = patch_size, center_crop, resize, flip
        pairs, problems, layout, desc = resolve_stereo(root, split, layout, list_file)
        where = f"{root}" + (f" split {split!r}" if split else "")
        self._finish(pairs, problems, where, layout, desc, skip_bad, verify)

    def __getitem__(self, idx: int) -> dict:
        p = self.pairs[idx]
        left, right = load_image(p.first), load_image(p.second)
        require_same_size([left, right], [p.first, p.second], self.labels)
        if self.center_crop is not None:
            left, right = _center_crop([left, right], self.center_crop)
        if self.resize is not None:
            left, right = _resize(left, self.resize), _resize(right, self.resize)
        if self.patch_size is not None:
            if self.mode == "train":
                left, right = random_crop([left, right], self.patch_size, names=[p.first])
            elif self.mode == "valid":
                left, right = _center_crop([left, right], self.patch_size)
        if self.mode == "train" and self.flip and _random.randint(0, 1) == 1:
            left, right = np.flip(right, axis=1), np.flip(left, axis=1)
        return {"left": to_tensor(left), "right": to_tensor(right), "name": p.name}
