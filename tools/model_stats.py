#!/usr/bin/env python
"""Parameters and MACs of every registered model at a stated input size.

    python tools/model_stats.py                       # table of all models at 256x256
    python tools/model_stats.py --models esdnet aecrnet --size 128
    python tools/model_stats.py --write docs/MODELS.md

The logic lives in restoration/benchmark/zoo.py.
"""
import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from restoration.benchmark.zoo import main, model_row, render  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(main())
