"""Evaluate a trained checkpoint on a data split (results.csv, summary.txt, restored images).

    python tools/test.py --task derain           # best checkpoint of the default derain run

See --help for every flag and docs/ENGINE.md.
"""
import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from restoration.engine.runner import test_main

if __name__ == "__main__":
    sys.exit(test_main())
