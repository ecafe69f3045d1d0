"""``python -m restoration.benchmark _measure ...``: the fresh process of one speed or
memory measurement (:func:`restoration.benchmark.measure_speed` starts it)."""
import sys

from .speed import _measure_cli

if len(sys.argv) > 1 and sys.argv[1] == "_measure":
    sys.exit(_measure_cli(sys.argv[2:]))
print("usage: python tools/benchmark.py --help (this module's own entry point is internal)", file=sys.stderr)
sys.exit(2)
