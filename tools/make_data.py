#!/usr/bin/env python
"""Make a synthetic paired dataset, offline and deterministically, in a benchmark's real layout.

    python tools/make_data.py --task dehaze --out data/dehaze_syn --n-train 400 --n-test 8 --seed 0
    python tools/make_data.py --task derain --out data/rain_syn --preset heavy --naming rain200
    python tools/make_data.py --task derain --out data/my_rain --clean-dir ~/Pictures/clean
    python tools/make_data.py --task stereo_jscc --out data/stereo_syn

Layouts written (read back by restoration.data.PairedImageDataset / StereoDataset):
  dehaze       <out>/{train,test}/{hazy,GT}      (DehazeSNN; --naming reside: hazy/<id>_<k>.png -> GT/<id>.png)
  derain       <out>/{train,test}/{input,target} (ESDNet;    --naming rain200: rain-<n>.png -> norain-<n>.png)
  stereo_jscc  <out>/{train,test}/{left,right}
Training clean images: the real-photo corpus (Debian wallpaper packages pinned in
restoration/data/corpus.json; scikit-image's photographs where they are not installed) or
your own folder (--clean-dir). dehaze/derain test splits: test/ holds held-out real
photographs at light, medium and heavy severity (light_00000.png, medium_00001.png, ...),
motorcycle/ the Middlebury scene (--test-source motorcycle puts it in test/ instead);
stereo_jscc tests on the Middlebury pair. None of these is ever used for training.
The same --seed, options and installed corpus write byte-identical files.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from restoration.data.images import DataError  # noqa: E402
from restoration.data.synthetic import DEFAULT_COUNTS, TASK_OPTIONS, TASKS, make_dataset  # noqa: E402


def _pair(kind):
    def parse(text: str):
        parts = text.replace(",", " ").split()
        if len(parts) != 2:
            raise argparse.ArgumentTypeError(f"expected two numbers 'MIN,MAX', got {text!r}")
        return tuple(kind(p) for p in parts)
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, choices=TASKS, help="which kind of pairs to make")
    p.add_argument("--out", required=True, type=Path,
                   help="output folder (must not exist or be empty, unless --overwrite)")
    p.add_argument("--n-train", type=int, default=None,
                   help="training images (default: " + ", ".join(f"{t} {c[0]}" for t, c in DEFAULT_COUNTS.items())
                   + "); with --naming reside: clear images")
    p.add_argument("--n-test", type=int, default=None,
                   help="test images, from held-out real photographs, 3 severities in turn (stereo_jscc: the "
                        "Middlebury pair) (default: "
                   + ", ".join(f"{t} {c[1]}" for t, c in DEFAULT_COUNTS.items()) + ")")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes identical files (default 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace --out if it holds a set made by this tool (has dataset.json)")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    g = p.add_argument_group("options (all tasks)")
    g.add_argument("--train-size", type=int, help="side of the square training images in px (default 128)")
    g.add_argument("--test-size", type=_pair(int), metavar="MIN,MAX",
                   help="range of test image sides in px, rounded down to multiples of 16 (default 160,256)")
    g.add_argument("--procedural", type=float,
                   help="fraction of training images that are procedural rather than photo crops "
                        "(default 0.1; stereo_jscc 0.3)")
    g = p.add_argument_group("dehaze / derain options")
    g.add_argument("--clean-dir", type=str, metavar="DIR",
                   help="train on crops of your own clean photographs in DIR instead of the built-in corpus")
    g.add_argument("--clean-share", type=float,
                   help="fraction of training inputs that are nearly clean, a trace of rain or haze (default 0.1)")
    g.add_argument("--test-source", choices=("photos", "motorcycle"),
                   help="test split: 'photos' (default: held-out real photographs, light/medium/heavy) or "
                        "'motorcycle' (the Middlebury scene, as before)")
    g.add_argument("--motorcycle", type=int,
                   help="images in the second test split motorcycle/ (default 8; 0: none)")
    g = p.add_argument_group("dehaze options")
    g.add_argument("--beta", type=_pair(float), metavar="MIN,MAX",
                   help="draw beta uniformly in this range, the earlier sampling without severities (e.g. "
                        "0.6,1.8 as RESIDE ITS); default: from the severity, 0.2 (thin) to 3.0 (dense)")
    g.add_argument("--airlight", type=_pair(float), metavar="MIN,MAX",
                   help="range of the atmospheric light A (default 0.7,1.0 as RESIDE ITS)")
    g.add_argument("--nonhomogeneous", type=float,
                   help="let beta vary smoothly across the image by up to +-this fraction (default 0: homogeneous)")
    g.add_argument("--noise", type=float, help="max std of Gaussian sensor noise on hazy images (default 0)")
    g.add_argument("--hazy-per-clean", type=int, help="with --naming reside: hazy versions per clear image (default 1)")
    g = p.add_argument_group("file naming (dehaze / derain)")
    g.add_argument("--naming", choices=("dehazesnn", "reside", "esdnet", "rain200"),
                   help="file naming: dehaze 'dehazesnn' (default, identical names) or 'reside'; "
                        "derain 'esdnet' (default, identical names) or 'rain200'")
    g = p.add_argument_group("derain options")
    g.add_argument("--preset", choices=("range", "light", "heavy", "mixed"),
                   help="rain: range (default: every severity from a few thin streaks to dense streaks with a "
                        "veil, plus nearly clean inputs) or the earlier presets light (Rain200L-like), heavy "
                        "(Rain200H-like), mixed (either per image)")
    g = p.add_argument_group("stereo_jscc options")
    g.add_argument("--max-disparity", type=float, help="largest disparity as a fraction of the width (default 0.12)")
    g.add_argument("--max-objects", type=int, help="most foreground objects per training pair (default 3)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k in set().union(*TASK_OPTIONS.values()) and v is not None}
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


if __name__ == "__main__":
    sys.exit(main())
