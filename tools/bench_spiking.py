#!/usr/bin/env python
"""Speed of the spiking core: each path as a ratio to the memory floor, and training steps
of every SNN next to its ANN twin.

    python tools/bench_spiking.py                       # CPU, kernels and training steps
    python tools/bench_spiking.py --threads 1 --skip-train
    python tools/bench_spiking.py --device cuda         # also the CuPy paths when cupy is usable

`--help` says what is measured; the logic lives in restoration/benchmark/kernels.py and the
figures go to docs/BENCHMARKS.md.
"""
import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from restoration.benchmark.kernels import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
