#!/usr/bin/env python
"""Firing-rate maps of every spiking layer of a model for one image, as a PNG grid.

    python tools/visualize_spikes.py --model esdnet_tiny --checkpoint runs/.../esdnet_tiny_last.pth \\
        --image rainy.png --target clean.png --out spikes.png
    python tools/visualize_spikes.py --model dehazesnn_s --image hazy.png --out olif.png

`--help` says more; the logic lives in restoration/benchmark/visualize.py.
"""
import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from restoration.benchmark.visualize import cli, folder_summary, image_maps, main, parser  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(cli())
