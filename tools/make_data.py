#!/usr/bin/env python
"""Make a task's built-in data set, offline and deterministically, in a benchmark's real layout.

    python tools/make_data.py --task dehaze --out data/dehaze_syn --n-train 400 --n-test 8 --seed 0
    python tools/make_data.py --task derain --out data/rain_syn --preset heavy --naming rain200
    python tools/make_data.py --task derain --out data/my_rain --clean-dir ~/Pictures/clean
    python tools/make_data.py --task stereo_jscc --out data/stereo_syn

`--help` lists every task's layout and options (declared by the task plugins). The logic
lives in restoration/data/cli.py.
"""
import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from restoration.data.cli import build_parser, main  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(main())
