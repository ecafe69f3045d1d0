#!/usr/bin/env python
"""Ship the weights of a finished training run: pretrained/<name>.pth plus its entry in
pretrained/MANIFEST.yaml (how it was made, sha256, held-out metrics from tools/test.py).

    python tools/export_pretrained.py --run-dir runs/derain/esdnet_tiny --name esdnet_tiny --role SNN \\
        --default --train-command "python tools/train.py --config derain/esdnet_tiny_pretrained.yaml --exp esdnet_tiny"
    python tools/export_pretrained.py --table          # the manifest as a markdown table

`--help` says more; the logic lives in restoration/engine/export.py.
"""
import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from restoration.engine.export import (do_no_harm, main, markdown_table, measure, read_train_log,  # noqa: E402,F401
                                       worse_cell)

if __name__ == "__main__":
    sys.exit(main())
