"""Session-wide test settings.

The built-in data generator reads the real-photo corpus (Debian wallpaper packages) when
it is installed. Tests must not depend on whether apt ran, nor decode ~25 large photographs
in every process, so they use the documented scikit-image fallback unless a test points
SNN_RESTORATION_CORPUS at a small manifest of its own (tests/test_corpus.py). Set in
os.environ so that tool subprocesses inherit it.
"""
import os

from restoration.data.corpus import ENV_CORPUS

os.environ[ENV_CORPUS] = "skimage"
