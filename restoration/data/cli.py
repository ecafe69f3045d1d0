"""``tools/make_data.py``: write a task's built-in data set to a folder of your choice.

The flags come from what the task plugins declare (``Task.builtin``: layout, counts and
options with their help), so a new task's options appear here with no edit.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List

from .images import DataError
from .synthetic import Option, builtin_spec, builtin_tasks, make_dataset

DESCRIPTION = """Make a synthetic paired dataset, offline and deterministically, in a benchmark's real layout.

    python tools/make_data.py --task dehaze --out data/dehaze_syn --n-train 400 --n-test 8 --seed 0
    python tools/make_data.py --task derain --out data/rain_syn --preset heavy --naming rain200
    python tools/make_data.py --task derain --out data/my_rain --clean-dir ~/Pictures/clean
    python tools/make_data.py --task stereo_jscc --out data/stereo_syn

Training clean images: the real-photo corpus (Debian wallpaper packages pinned in
restoration/data/corpus.json; scikit-image's photographs where they are not installed) or
your own folder (--clean-dir). Paired tasks' test splits: test/ holds held-out real
photographs at light, medium and heavy severity (light_00000.png, medium_00001.png, ...),
motorcycle/ the Middlebury scene (--test-source motorcycle puts it in test/ instead);
stereo_jscc tests on the Middlebury pair. None of these is ever used for training.
The same --seed, options and installed corpus write byte-identical files.
"""


def _pair(kind):
    def parse(text: str):
        parts = text.replace(",", " ").split()
        if len(parts) != 2:
            raise argparse.ArgumentTypeError(f"expected two numbers 'MIN,MAX', got {text!r}")
        return tuple(kind(p) for p in parts)
    return parse


def _default_text(value) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, tuple) else str(value)


def _options_by_name() -> Dict[str, Dict[str, Option]]:
    """{option name: {task: its declaration}} over every task with built-in data."""
    out: Dict[str, Dict[str, Option]] = {}
    for task in builtin_tasks():
        for name, opt in builtin_spec(task).options.items():
            out.setdefault(name, {})[task] = opt
    return out


def build_parser() -> argparse.ArgumentParser:
    tasks = builtin_tasks()
    layouts = "\n".join(f"  {t:12s} {builtin_spec(t).layout}" for t in tasks)
    p = argparse.ArgumentParser(prog="tools/make_data.py", description=DESCRIPTION + "\nLayouts written:\n" + layouts,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=tasks, help="which kind of pairs to make")
    p.add_argument("--out", required=True, type=Path,
                   help="output folder (must not exist or be empty, unless --overwrite)")
    counts = {t: builtin_spec(t).counts for t in tasks}
    p.add_argument("--n-train", type=int, default=None,
                   help="training images (default: " + ", ".join(f"{t} {c[0]}" for t, c in counts.items())
                   + "); with --naming reside: clear images")
    p.add_argument("--n-test", type=int, default=None,
                   help="test images, from held-out real photographs, 3 severities in turn (stereo_jscc: the "
                        "Middlebury pair) (default: " + ", ".join(f"{t} {c[1]}" for t, c in counts.items()) + ")")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes identical files (default 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it holds a set made by this tool (has dataset.json)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    # one flag per option name; grouped by the tasks that take it
    groups: Dict[str, argparse._ArgumentGroup] = {}
    for name, declared in _options_by_name().items():
        users: List[str] = list(declared)
        title = "options (all tasks)" if len(users) == len(tasks) else " / ".join(users) + " options"
        group = groups.setdefault(title, p.add_argument_group(title))
        first = next(iter(declared.values()))
        kind = first.kind or type(first.default[0] if first.pair else first.default)
        defaults = {t: o.default for t, o in declared.items()}
        if len(set(map(repr, defaults.values()))) == 1:
            default = f"default {_default_text(first.default)}" if first.default is not None else ""
        else:
            default = "default " + "; ".join(f"{t} {_default_text(d)}" for t, d in defaults.items())
        choices = tuple(dict.fromkeys(c for o in declared.values() for c in o.choices)) or None
        helps = dict.fromkeys(o.help for o in declared.values())
        text = " | ".join(helps) + (f" ({default})" if default else "")
        group.add_argument("--" + name.replace("_", "-"), dest=name, type=_pair(kind) if first.pair else kind,
                           choices=choices, metavar="MIN,MAX" if first.pair else None, help=text)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    known = set(_options_by_name())
    options = {k: v for k, v in vars(args).items() if k in known and v is not None}
    t0 = time.perf_counter()
    try:
        out = make_dataset(args.task, args.out, args.n_train, args.n_test, args.seed,
                           progress=not args.no_progress, overwrite=args.overwrite, **options)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    files = sum(1 for _ in out.rglob("*.png"))
    size = sum(f.stat().st_size for f in out.rglob("*.png"))
    print(f"wrote {files} images ({size / 2**20:.1f} MiB) to {out} in {time.perf_counter() - t0:.1f} s")
    sources = json.loads((out / "dataset.json").read_text()).get("sources", {})
    for split, names in sources.items():
        print(f"  {split}: from {len(names)} photograph(s): {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}")
    return 0
