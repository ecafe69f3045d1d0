"""Paired image folders: a degraded ``input`` image and its clean ``target``.

Layouts (``layout=``), each as the public benchmarks ship it:

``dehazesnn``  ``<root>/<split>/hazy/X`` <-> ``<root>/<split>/GT/X`` (identical names, one to one;
               DehazeSNN's RESIDE-6K / RS-HAZE / ITS / OTS folders).
``reside``     ``hazy/1400_1.png``, ``hazy/1400_2.png`` -> ``GT/1400.png``: several hazy images per
               clear image, the clear id being the part before the first ``_``; extensions may
               differ between the folders (``.jpg`` hazy, ``.png`` clear). ``GT/``, ``gt/`` or
               ``clear/`` are accepted for the clear folder.
``esdnet``     ``<root>/<split>/input/X`` <-> ``<root>/<split>/target/X`` (identical names).
``rain100``    Rain100/Rain200 naming ``rain-12.png`` (or ``rain-12x2.png``, ``norain-12x2.png``)
               -> ``norain-12.png``, in ``input/``+``target/``, ``rain/``|``rainy/``+``norain/``, or
               both kinds of file in one folder.
``pairlist``   a text file, one ``input_path target_path`` per line (``#`` comments allowed);
               relative paths are relative to ``root`` (or to the list file's folder when
               ``root`` is the list file). The list is ``pair_list=``, ``root`` itself, or
               ``<root>/<split>.txt``.
``auto``       looks at what is on disk and picks one of the above (``dataset.layout`` and
               ``repr(dataset)`` say what it found).

``split`` is the sub-folder (``train``, ``test``, ...); when ``<root>/<split>`` does not exist but
``root`` itself holds the image folders, ``root`` is used.
"""
from __future__ import annotations

import re
import shlex
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..registry import DATASETS
from .base import MODES, FilePair, FilePairDataset, check_choice
from .images import (IMG_EXTENSIONS, DataError, MissingDataError, PathLike, find_subdir, list_images, load_image, require_same_size, to_tensor)
from .transforms import center_crop, flip_rotate, random_crop

LAYOUTS = ("auto", "dehazesnn", "reside", "esdnet", "rain100", "pairlist")

HAZY_DIRS = ("hazy",)
CLEAR_DIRS = ("GT", "clear")
ESD_INPUT_DIRS = ("input",)
ESD_TARGET_DIRS = ("target",)
RAIN_DIRS = ("input", "rain", "rainy")
NORAIN_DIRS = ("target", "norain")

# rain-12, rain-12x2, norain-12x2 (JORDER names its rainy files so), rain_012 ...
_RAIN_RE = re.compile(r"^(?:no)?rain[-_]?(\d+)(x\d+)?$", re.IGNORECASE)
_NORAIN_RE = re.compile(r"^norain[-_]?(\d+)(x\d+)?$", re.IGNORECASE)

Resolved = Tuple[List[FilePair], List[str], str, str]  # pairs, problems, layout, description


# -- helpers ----------------------------------------------------------------------------
def _stem(name: str) -> str:
    return Path(name).stem


def _by_stem(names: Sequence[str]) -> Dict[str, List[str]]:
    index: Dict[str, List[str]] = defaultdict(list)
    for n in names:
        index[_stem(n)].append(n)
    return index


def _prefer_ext(candidates: List[str], like: str) -> str:
    """Among same-stem files, prefer the one with the input's extension."""
    same = [c for c in candidates if Path(c).suffix.lower() == Path(like).suffix.lower()]
    return (same or candidates)[0]


def _folder_listing(folder: Path) -> str:
    if not folder.is_dir():
        return "(does not exist)"
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir())
    shown = ", ".join(entries[:12]) + (" ..." if len(entries) > 12 else "")
    return shown or "(empty)"


def _split_dir(root: Path, split: Optional[str], needed: Sequence[Sequence[str]], layout: str,
               expect: str) -> Path:
    """``<root>/<split>``, or ``root`` itself if it directly holds the folders the layout needs."""
    if not root.exists():
        raise MissingDataError(f"dataset root {root} does not exist (layout {layout} expects {expect})")
    cand = root / split if split else root
    if cand.is_dir():
        return cand
    if needed and all(find_subdir(root, names) for names in needed):
        return root
    raise MissingDataError(f"missing folder {cand}: layout {layout} expects {expect}. "
                           f"{root} contains: {_folder_listing(root)}")


def _need_subdir(split_dir: Path, names: Sequence[str], layout: str, expect: str) -> Path:
    found = find_subdir(split_dir, names)
    if found is None:
        raise MissingDataError(f"missing folder {split_dir / names[0]} (layout {layout} expects "
                               f"{expect}); {split_dir} contains: {_folder_listing(split_dir)}")
    return found


def _images_or_raise(folder: Path) -> List[str]:
    names = list_images(folder)
    if not names:
        raise DataError(f"empty split: {folder} contains no images (looked for "
                        f"{', '.join(IMG_EXTENSIONS)}); check the path and the split name")
    return names


# -- one resolver per layout ------------------------------------------------------------
def _identical_names(root: Path, split: Optional[str], layout: str, in_dirs, tg_dirs,
                     in_label: str, tg_label: str, one_to_one: bool) -> Resolved:
    expect = f"<root>/<split>/{{{in_dirs[0]},{tg_dirs[0]}}} with identical file names"
    sd = _split_dir(root, split, [in_dirs, tg_dirs], layout, expect)
    in_dir = _need_subdir(sd, in_dirs, layout, expect)
    tg_dir = _need_subdir(sd, tg_dirs, layout, expect)
    inputs, targets = _images_or_raise(in_dir), list_images(tg_dir)
    tset, tstems = set(targets), _by_stem(targets)
    pairs, problems, used = [], [], set()
    for n in inputs:
        t = n if n in tset else (_prefer_ext(tstems[_stem(n)], n) if _stem(n) in tstems else None)
        if t is None:
            problems.append(f"{in_label} image {in_dir / n} has no {tg_label} partner: expected "
                            f"{tg_dir / n}")
            continue
        used.add(t)
        pairs.append(FilePair(in_dir / n, tg_dir / t, n))
    if one_to_one:
        problems += [f"{tg_label} image {tg_dir / t} has no {in_label} partner: expected {in_dir / t}"
                     for t in targets if t not in used]
    return pairs, problems, layout, f"{sd}: {in_dir.name}/ -> {tg_dir.name}/, identical names"


def _reside(root: Path, split: Optional[str]) -> Resolved:
    expect = "<root>/<split>/{hazy,GT} with hazy/<id>_<k>.<ext> -> GT/<id>.<ext>"
    sd = _split_dir(root, split, [HAZY_DIRS, CLEAR_DIRS], "reside", expect)
    hazy_dir = _need_subdir(sd, HAZY_DIRS, "reside", expect)
    gt_dir = _need_subdir(sd, CLEAR_DIRS, "reside", expect)
    hazy, clear = _images_or_raise(hazy_dir), list_images(gt_dir)
    cset, cstems = set(clear), _by_stem(clear)
    pairs, problems = [], []
    for n in hazy:
        stem, clear_id = _stem(n), _stem(n).split("_")[0]
        if n in cset:
            t = n
        elif stem in cstems:
            t = _prefer_ext(cstems[stem], n)
        elif clear_id in cstems:
            t = _prefer_ext(cstems[clear_id], n)
        else:
            problems.append(f"hazy image {hazy_dir / n} has no clear partner: looked for "
                            f"{gt_dir / clear_id}.* (RESIDE naming <id>_<k>.<ext> -> <id>.<ext>)")
            continue
        pairs.append(FilePair(hazy_dir / n, gt_dir / t, n))
    return pairs, problems, "reside", f"{sd}: {hazy_dir.name}/<id>_<k> -> {gt_dir.name}/<id>, many-to-one"


def _rain100(root: Path, split: Optional[str]) -> Resolved:
    expect = ("rain-<n>.png -> norain-<n>.png in <root>/<split>/{input,target} (or rain|rainy + "
              "norain folders, or both kinds of file in <root>/<split>)")
    if not root.exists():
        raise MissingDataError(f"dataset root {root} does not exist (layout rain100 expects {expect})")
    sd = root / split if split and (root / split).is_dir() else root
    in_dir, tg_dir = find_subdir(sd, RAIN_DIRS), find_subdir(sd, NORAIN_DIRS)
    if in_dir is None and tg_dir is None:
        if sd is root and split:
            files = list_images(root)
            if not any(_RAIN_RE.match(_stem(f)) for f in files):
                raise MissingDataError(f"missing folder {root / split} (layout rain100 expects {expect}); "
                                       f"{root} contains: {_folder_listing(root)}")
        in_dir = tg_dir = sd  # one folder holding both rain-* and norain-* files
        everything = list_images(sd)
        inputs = [f for f in everything if not _NORAIN_RE.match(_stem(f))]
        targets = [f for f in everything if _NORAIN_RE.match(_stem(f))]
    elif in_dir is None or tg_dir is None:
        missing = (RAIN_DIRS if in_dir is None else NORAIN_DIRS)[0]
        raise MissingDataError(f"missing folder {sd / missing} (layout rain100 expects {expect}); "
                               f"{sd} contains: {_folder_listing(sd)}")
    else:
        inputs, targets = list_images(in_dir), list_images(tg_dir)
    if not inputs:
        raise DataError(f"empty split: no rainy images in {in_dir} (layout rain100 expects {expect})")
    by_key: Dict[Tuple[int, str], List[str]] = defaultdict(list)
    for t in targets:
        m = _NORAIN_RE.match(_stem(t))
        if m:
            by_key[(int(m.group(1)), (m.group(2) or "").lower())].append(t)
    tstems = _by_stem(targets)
    pairs, problems = [], []
    for n in inputs:
        m = _RAIN_RE.match(_stem(n))
        t = None
        if m:
            num, scale = int(m.group(1)), (m.group(2) or "").lower()
            cands = by_key.get((num, scale)) or by_key.get((num, ""))
            t = _prefer_ext(cands, n) if cands else None
        if t is None and in_dir != tg_dir and _stem(n) in tstems:  # plain identical names
            t = _prefer_ext(tstems[_stem(n)], n)
        if t is None:
            want = f"norain-{int(m.group(1))}.*" if m else f"{_stem(n)}.* or norain-<n>.*"
            problems.append(f"rainy image {in_dir / n} has no clean partner: looked for {tg_dir / want}")
            continue
        pairs.append(FilePair(in_dir / n, tg_dir / t, n))
    where = f"{in_dir.name}/ -> {tg_dir.name}/" if in_dir != tg_dir else "one folder"
    return pairs, problems, "rain100", f"{sd}: rain-<n> -> norain-<n>, {where}"


def read_path_list(list_file: Path) -> List[Tuple[int, List[str]]]:
    """Non-empty, non-comment lines of a path-list file as (line number, fields)."""
    if not list_file.is_file():
        raise MissingDataError(f"path-list file {list_file} does not exist")
    rows = []
    for i, line in enumerate(list_file.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        rows.append((i, shlex.split(line) if ('"' in line or "'" in line) else line.split()))
    return rows


def resolve_listed(path: str, bases: Sequence[Path]) -> Path:
    """A listed path: absolute as is; relative: the first base it exists under (else the first base)."""
    p = Path(path).expanduser()
    if p.is_absolute():
        return p
    for b in bases:
        if (b / p).exists():
            return b / p
    return bases[0] / p


def _pairlist(root: Path, split: Optional[str], pair_list: Optional[PathLike]) -> Resolved:
    if pair_list is not None:
        list_file = Path(pair_list)
        if not list_file.is_absolute() and not list_file.exists() and root.is_dir():
            list_file = root / list_file
    elif root.is_file():
        list_file = root
    else:
        list_file = root / f"{split}.txt"
        if not list_file.is_file():
            raise MissingDataError(f"no pair-list file: layout pairlist needs pair_list=<file>, a list "
                                   f"file as root, or {list_file} (one 'input_path target_path' per line)")
    bases = [root if root.is_dir() else list_file.parent, list_file.parent]
    rows = read_path_list(list_file)
    if not rows:
        raise DataError(f"empty split: pair-list file {list_file} lists no pairs "
                        f"(expected one 'input_path target_path' per line)")
    pairs, problems = [], []
    for line_no, fields in rows:
        if len(fields) != 2:
            raise DataError(f"{list_file} line {line_no}: expected two paths 'input_path target_path', "
                            f"got {len(fields)} field(s): {' '.join(fields)!r} (quote paths with spaces)")
        a, b = (resolve_listed(f, bases) for f in fields)
        missing = [f"{lab} file {p}" for lab, p in (("input", a), ("target", b)) if not p.is_file()]
        if missing:
            problems.append(f"{list_file} line {line_no}: {' and '.join(missing)} does not exist")
            continue
        pairs.append(FilePair(a, b, fields[0]))
    return pairs, problems, "pairlist", f"pair list {list_file}"


def detect_layout(root: Path, split: Optional[str]) -> str:
    """Which layout ``root``/``split`` holds, from the folder and file names on disk."""
    if root.is_file():
        return "pairlist"
    if not root.exists():
        raise MissingDataError(f"dataset root {root} does not exist")
    sd = root / split if split else root
    if not sd.is_dir():
        if split and (root / f"{split}.txt").is_file():
            return "pairlist"
        known = HAZY_DIRS + CLEAR_DIRS + RAIN_DIRS + NORAIN_DIRS
        if find_subdir(root, known) is None and not any(_RAIN_RE.match(_stem(f)) for f in list_images(root)):
            raise MissingDataError(f"missing folder {sd}: expected <root>/<split>/ holding hazy/+GT/, "
                                   f"input/+target/ or rain-<n>/norain-<n> files, or <root>/{split}.txt "
                                   f"(a pair list). {root} contains: {_folder_listing(root)}")
        sd = root
    hazy, gt = find_subdir(sd, HAZY_DIRS), find_subdir(sd, CLEAR_DIRS)
    if hazy is not None:
        if gt is None or set(list_images(hazy)) == set(list_images(gt)):
            return "dehazesnn"  # (with gt None, it reports the missing GT/)
        return "reside"
    if gt is not None:
        return "dehazesnn"  # reports the missing hazy/
    in_dir, tg_dir = find_subdir(sd, RAIN_DIRS), find_subdir(sd, NORAIN_DIRS)
    if in_dir is not None or tg_dir is not None:
        if in_dir is not None and tg_dir is not None and in_dir.name.lower() == "input" \
                and tg_dir.name.lower() == "target":
            ins, tgs = list_images(in_dir), list_images(tg_dir)
            if {_stem(n) for n in ins} <= {_stem(n) for n in tgs} or not any(_RAIN_RE.match(_stem(n)) for n in ins):
                return "esdnet"
        if in_dir is not None and in_dir.name.lower() == "input" and tg_dir is None:
            return "esdnet"  # reports the missing target/
        return "rain100"
    files = list_images(sd)
    if any(_NORAIN_RE.match(_stem(f)) for f in files):
        return "rain100"
    if split and (root / f"{split}.txt").is_file():
        return "pairlist"
    raise DataError(f"cannot tell the layout of {sd}: it contains {_folder_listing(sd)}. Expected hazy/+GT/ "
                    f"(dehazesnn, reside), input/+target/ (esdnet), rain-<n>/norain-<n> files (rain100) "
                    f"or a pair list (layout='pairlist', pair_list=...)")


def resolve_pairs(root: PathLike, split: Optional[str] = "train", layout: str = "auto",
                  pair_list: Optional[PathLike] = None) -> Resolved:
    """Find the (input, target) file pairs of a split by names only. See the module docstring."""
    check_choice("paired layout", layout, LAYOUTS)
    root = Path(root).expanduser()
    detected = layout == "auto"
    if detected:
        layout = "pairlist" if pair_list is not None else detect_layout(root, split)
    if layout == "dehazesnn":
        out = _identical_names(root, split, "dehazesnn", HAZY_DIRS, CLEAR_DIRS, "hazy", "clear", True)
    elif layout == "esdnet":
        out = _identical_names(root, split, "esdnet", ESD_INPUT_DIRS, ESD_TARGET_DIRS, "input", "target", True)
    elif layout == "reside":
        out = _reside(root, split)
    elif layout == "rain100":
        out = _rain100(root, split)
    else:
        out = _pairlist(root, split, pair_list)
    pairs, problems, layout, desc = out
    return pairs, problems, layout, (f"layout {layout} (auto-detected), " if detected else f"layout {layout}, ") + desc


@DATASETS.register("paired")
class PairedImageDataset(FilePairDataset):
    """Degraded/clean image pairs; items ``{'input': 3xHxW, 'target': 3xHxW, 'name': str}`` in [0,1].

    Args:
        root: dataset folder (or a pair-list file), e.g. ``datasets/reside6k``.
        split: sub-folder, e.g. ``'train'`` / ``'test'``; ``None`` or ``''``: ``root`` itself.
        layout: see the module docstring; ``'auto'`` detects it.
        mode: ``'train'``: random ``patch_size`` crop (DehazeSNN ``edge_decay`` bias), random
            horizontal flip and rot90 (``only_h_flip`` keeps flips only); ``'valid'``: centre
            ``patch_size`` crop; ``'test'``: full images.
        patch_size: crop side (int or (h, w)); ``None`` keeps full images in every mode.
        skip_bad: list (one warning) and skip unusable pairs instead of raising.
        verify: open every file up front: ``'header'`` (sizes), ``True``/``'full'`` (decode);
            default: ``'full'`` if ``skip_bad`` else no check (bad files then raise on load).
        pair_list: list file for ``layout='pairlist'``.
    """

    labels = ("input", "target")

    def __init__(self, root: PathLike, split: Optional[str] = "train", layout: str = "auto",
                 mode: str = "train", patch_size: Union[int, Tuple[int, int], None] = 256,
                 edge_decay: float = 0.0, only_h_flip: bool = False, rotate: bool = True,
                 flip: bool = True, skip_bad: bool = False, verify: Union[bool, str, None] = None,
                 pair_list: Optional[PathLike] = None):
        check_choice("mode", mode, MODES)
        self.root, self.split, self.mode = Path(root), split, mode
        self.patch_size, self.edge_decay = patch_size, edge_decay
        self.only_h_flip, self.rotate, self.flip = only_h_flip, rotate, flip
        pairs, problems, layout, desc = resolve_pairs(root, split, layout, pair_list)
        where = f"{root}" + (f" split {split!r}" if split else "")
        self._finish(pairs, problems, where, layout, desc, skip_bad, verify)

    def __getitem__(self, idx: int) -> dict:
        p = self.pairs[idx]
        inp, tgt = load_image(p.first), load_image(p.second)
        require_same_size([inp, tgt], [p.first, p.second], self.labels)
        if self.patch_size is not None:
            if self.mode == "train":
                inp, tgt = random_crop([inp, tgt], self.patch_size, self.edge_decay, names=[p.first])
            elif self.mode == "valid":
                inp, tgt = center_crop([inp, tgt], self.patch_size)
        if self.mode == "train":
            inp, tgt = flip_rotate([inp, tgt], self.only_h_flip, self.flip, self.rotate)
        return {"input": to_tensor(inp), "target": to_tensor(tgt), "name": p.name}
