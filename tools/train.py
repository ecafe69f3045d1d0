"""Train a restoration model with the shared engine.

    python tools/train.py --task derain          # CPU recipe on built-in data, < 10 min on 2 cores

See --help for every flag and docs/ENGINE.md for configs, resume and DDP (torchrun).
"""
import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from restoration.engine.runner import train_main

if __name__ == "__main__":
    sys.exit(train_main())
