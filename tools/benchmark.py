#!/usr/bin/env python
"""Cross-task SNN vs ANN benchmark: quality, energy, speed and memory, with plots.

    python tools/benchmark.py --tasks dehaze derain stereo_jscc --budget quick
    python tools/benchmark.py --tasks derain --budget full --device cuda --out runs/bench_derain
    python tools/benchmark.py --tasks derain --checkpoint esdnet_tiny=runs/derain/x/esdnet_tiny_last.pth \\
        --checkpoint esdnet_tiny_ann=runs/derain/y/esdnet_tiny_ann_last.pth
    python tools/benchmark.py --tasks dehaze derain stereo_jscc --pretrained    # the shipped weights
    python tools/benchmark.py --tasks stereo_jscc --budget authors --no-speed \
        --models dhf_jscc_authors dhf_jscc_authors_snn dhf_jscc_cnn dhf_jscc_snn    # docs/JSCC.md

For each task it trains with the engine (or loads with --checkpoint) the spiking model,
its ANN twin and the ANN baseline on the same data with the same budget, evaluates all
on the same held-out split and writes tables, CSVs and plots to the run folder. The logic
lives in restoration/benchmark/ (cli.py); see docs/BENCHMARKS.md.
"""
import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from restoration.benchmark.cli import adopt_checkpoint_recipe, cli, main, parser, shipped_weights  # noqa: E402,F401

if __name__ == "__main__":
    sys.exit(cli())
