"""Time and peak memory of tools/infer.py on one large photograph, as a user runs it.

    python tools/bench_infer.py                      # 3000x2000 JPEG, default derain weights, no flags
    python tools/bench_infer.py --size 4000x3000 --task dehaze -- --max-memory 1G

The logic lives in restoration/benchmark/infer_photo.py; the figures go to docs/ENGINE.md.
"""
import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from restoration.benchmark.infer_photo import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(default_task="derain"))
