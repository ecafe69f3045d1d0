"""Built-in data sets: made offline and deterministically, in the benchmarks' real layouts.

A task plugin that has built-in data declares it (``Task.builtin``, a :class:`BuiltinData`):
a *sampler* that makes image ``i`` of a split as ``{relative path: image}`` in the task's
real layout, its options with their defaults and help, and its default image counts. This
module does the rest for every task alike and names none:

* ``make_dataset(task, out_dir, n_train, n_test, seed, **options)`` writes
  ``<out>/train/...``, ``<out>/test/...`` (and, for paired tasks testing on photographs,
  ``<out>/motorcycle/...``), so the readers in ``paired.py`` / ``stereo.py`` serve made and
  downloaded data alike; ``tools/make_data.py`` is its command line;
* ``ensure_builtin_data(task)`` makes a small default set once into a cache folder and reuses it.

Where the pixels come from is ``sources.py`` (real photographs for training, held-out
photographs and the Middlebury scene for testing, severities); how they are degraded,
``degradations.py`` (haze, rain, stereo rendering). Test-like splits of a sampling with
severities carry the level in the file name (``light_00000.png``, ``medium_00001.png``, ...;
:func:`sample_name`), so evaluation reports each severity separately.

Same seed, same options -> byte-identical PNG files (each image has its own RNG seeded by
``(seed, the task's seed_id, split, index)``; PNGs carry no time stamps).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import uuid
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
from tqdm import tqdm

from .corpus import corpus_fingerprint, folder_fingerprint
from .images import DataError, PathLike, save_png
from .sources import SEVERITIES, photo_pool

logger = logging.getLogger("restoration.data")

GENERATOR_VERSION = 2  # bump when the generated pixels change: invalidates cached built-in sets
_SPLIT_IDS = {"train": 0, "test": 1, "motorcycle": 2}  # "test" keeps id 1: earlier sets reproduce
MANIFEST = "dataset.json"
ENV_DATA_DIR = "SNN_RESTORATION_DATA"
MOTORCYCLE_SPLIT = "motorcycle"


@dataclasses.dataclass(frozen=True)
class Option:
    """One option of a task's built-in data: its default, a line of help for
    ``tools/make_data.py``, and its type (``pair``: a ``(min, max)`` of ``kind``)."""
    default: Any
    help: str
    kind: Optional[type] = None  # None: the type of the default
    pair: bool = False
    choices: Tuple[Any, ...] = ()

    def with_default(self, default: Any) -> "Option":
        return dataclasses.replace(self, default=default)


# Options shared by the tasks that test on held-out photographs; a plugin takes those it
# uses (``with_default`` to change one) and adds its own.
COMMON_OPTIONS: Dict[str, Option] = {
    "train_size": Option(128, "side of the square training images in pixels"),
    "test_size": Option((160, 256), "(min, max) side of the test images; sides are multiples of 16",
                        kind=int, pair=True),
    "procedural": Option(0.1, "fraction of training images that are procedural instead of photo crops"),
    "clean_share": Option(0.1, "fraction of training inputs that are nearly clean (a trace of the degradation)"),
    "test_source": Option("photos", "'photos' (held-out real photographs at light/medium/heavy severity, plus "
                          "the motorcycle split) or 'motorcycle' (the Middlebury scene as the test split, as "
                          "before)", choices=("photos", "motorcycle")),
    "motorcycle": Option(8, "with test_source='photos': images in the second test split 'motorcycle' (0 = none)"),
    "clean_dir": Option(None, "a folder of your own clean photographs to train on instead of the built-in corpus",
                        kind=str),
}
PAIRED_OPTIONS = ("train_size", "test_size", "procedural", "clean_share", "test_source", "motorcycle", "clean_dir")

Sampler = Callable[[np.random.Generator, str, int, Mapping[str, Any]], Dict[str, np.ndarray]]


@dataclasses.dataclass(frozen=True)
class BuiltinData:
    """A task's built-in data, declared in its plugin (``Task.builtin``).

    ``sampler(rng, split, i, options)`` returns image ``i`` of ``split`` ('train', 'test' or
    'motorcycle') as ``{path relative to the split folder: H,W,3 image}`` (float in [0, 1]
    or uint8), drawing every random number from ``rng``; options are checked against their
    declared types and ``choices``. ``seed_id`` is the task's share of each image's RNG seed
    (default: from the task name). ``layout`` is one line for the help.
    """
    sampler: Sampler
    options: Mapping[str, Option]
    counts: Tuple[int, int] = (400, 24)
    seed_id: Optional[int] = None
    layout: str = ""


def builtin_spec(task: str) -> BuiltinData:
    """The built-in data declared by the registered task ``task``."""
    from ..registry import TASKS, UnknownNameError

    try:
        spec = getattr(TASKS.get(task), "builtin", None)
    except UnknownNameError:
        spec = None
    if spec is None:
        raise DataError(f"unknown task {task!r} for synthetic data; expected one of {', '.join(builtin_tasks())}")
    return spec


def builtin_tasks() -> List[str]:
    """Names of the registered tasks that declare built-in data."""
    from ..registry import TASKS

    return [name for name in TASKS.names() if getattr(TASKS.get(name), "builtin", None) is not None]


def default_counts(task: str) -> Tuple[int, int]:
    return tuple(builtin_spec(task).counts)


def _seed_id(task: str, spec: BuiltinData) -> int:
    return spec.seed_id if spec.seed_id is not None else zlib.crc32(task.encode())


def _rng(seed: int, task: str, split: str, index: int, spec: Optional[BuiltinData] = None) -> np.random.Generator:
    spec = builtin_spec(task) if spec is None else spec
    return np.random.default_rng([int(seed), _seed_id(task, spec), _SPLIT_IDS.get(split, 1), int(index)])


def _choices_text(choices) -> str:
    quoted = [repr(c) for c in choices]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _resolve_options(task: str, options: dict) -> dict:
    spec = builtin_spec(task)
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise DataError(f"unknown option(s) {', '.join(unknown)} for task {task!r}; known: "
                        f"{', '.join(sorted(spec.options))}")
    opt = {**{k: o.default for k, o in spec.options.items()}, **options}
    for key, o in spec.options.items():
        if o.pair and opt[key] is not None:
            kind = o.kind or type(o.default[0])
            opt[key] = tuple(kind(v) for v in opt[key])
        if o.choices and opt[key] not in o.choices:
            raise DataError(f"{task} {key} must be {_choices_text(o.choices)}, got {opt[key]!r}")
    if "test_size" in opt and (opt["test_size"][0] < 16 or opt["test_size"][0] > opt["test_size"][1]):
        raise DataError(f"test_size must be (min, max) with 16 <= min <= max, got {opt['test_size']}")
    if opt.get("clean_dir"):
        opt["clean_dir"] = str(Path(opt["clean_dir"]).expanduser().resolve())
        folder_fingerprint(opt["clean_dir"])  # a missing or empty folder fails here, with its fix
    return opt


def _splits(opt: dict, n_test: int) -> Dict[str, int]:
    """Test-like splits and their sizes (besides 'train'): a task testing on held-out
    photographs also gets the Middlebury scene as a second test split."""
    out = {"test": n_test}
    if opt.get("test_source") == "photos" and int(opt.get("motorcycle") or 0) > 0:
        out[MOTORCYCLE_SPLIT] = int(opt["motorcycle"])
    return out


def test_source(split: str, opt: Mapping[str, Any]) -> str:
    """Where test-like ``split``'s clean images come from: 'photos' (the held-out real
    photographs) or 'motorcycle' (the Middlebury scene)."""
    return "photos" if split == "test" and opt.get("test_source") == "photos" else "motorcycle"



def sample_name(split: str, i: int, graded: bool = True) -> Tuple[Optional[str], str]:
    """(severity level or None, file stem) of image ``i``: test-like splits of a sampling with
    severities (``graded``) carry the level in the name (``heavy_00005``), which evaluation
    groups by; the level cycles light, medium, heavy."""
    if split == "train" or not graded:
        return None, f"{i:05d}"
    level = SEVERITIES[i % len(SEVERITIES)]
    return level, f"{level}_{i:05d}"


def _write_split(task: str, spec: BuiltinData, split: str, n: int, seed: int, opt: dict, out: Path, bar) -> int:
    """Write ``n`` samples of ``split``; the sampler returns {relative path: image}."""
    count = 0
    for i in range(n):
        sample = spec.sampler(_rng(seed, task, split, i, spec), split, i, opt)
        for rel, img in sample.items():
            path = out / split / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            save_png(path, img)
            count += 1
        bar.update(1)
    return count


def _sources(opt: dict, n_train: int, n_test: int) -> Dict[str, list]:
    """Names of the photographs each split is made from (for dataset.json)."""
    out: Dict[str, list] = {}
    if n_train:
        out["train"] = [p.name for p in photo_pool("train", opt.get("clean_dir"))]
    for split, n in _splits(opt, n_test).items():
        if n:
            out[split] = ([p.name for p in photo_pool("heldout")] if test_source(split, opt) == "photos"
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
    spec = builtin_spec(task)
    try:
        total = n_train + sum(_splits(opt, n_test).values())
        with tqdm(total=total, desc=f"making {task} data", unit="img", disable=not progress) as bar:
            files = _write_split(task, spec, "train", n_train, seed, opt, tmp, bar)
            for split, n in _splits(opt, n_test).items():
                files += _write_split(task, spec, split, n, seed, opt, tmp, bar)
        manifest = dict(task=task, seed=int(seed), n_train=int(n_train), n_test=int(n_test),
                        options={k: list(v) if isinstance(v, tuple) else v for k, v in sorted(opt.items())},
                        generator_version=GENERATOR_VERSION, files=files,
                        splits={"train": n_train, **_splits(opt, n_test)},
                        sources=_sources(opt, n_train, n_test))
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def make_dataset(task: str, out_dir: PathLike, n_train: Optional[int] = None, n_test: Optional[int] = None,
                 seed: int = 0, progress: bool = True, overwrite: bool = False, **options) -> Path:
    """Write a synthetic paired dataset for ``task`` into ``out_dir`` and return its path.

    ``n_train``/``n_test``: images per split (``None``: the task's default counts; for
    dehaze with ``naming='reside'`` they count clear images). ``options``: the task's
    ``BuiltinData.options`` (``tools/make_data.py --help`` lists them). The set is written to a temporary folder and renamed, so ``out_dir``
    never holds a half-written set. An existing ``out_dir`` is replaced only with
    ``overwrite=True`` and only if it is a set made here (it holds ``dataset.json``).
    """
    opt = _resolve_options(task, options)
    counts = default_counts(task)
    n_train = counts[0] if n_train is None else int(n_train)
    n_test = counts[1] if n_test is None else int(n_test)
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
    counts = default_counts(task)
    n_train = counts[0] if n_train is None else int(n_train)
    n_test = counts[1] if n_test is None else int(n_test)
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
