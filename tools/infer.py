"""Restore your own images (a file, a folder or a glob; any size) into an output folder,
same file names. Inputs are never written over; large photographs are tiled to stay
within --max-memory.

    python tools/infer.py --task derain --input my_images/ --output restored/
    python tools/infer.py --task stereo_jscc --input pairs/ --snr 5 --output recon/   # pairs/left, pairs/right

See --help for every flag and docs/ENGINE.md.
"""
import sys

import _bootstrap  # noqa: F401  (repository root on sys.path)

from restoration.engine.runner import infer_main

if __name__ == "__main__":
    sys.exit(infer_main())
