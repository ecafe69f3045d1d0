"""Time and peak memory of tools/infer.py on one large photograph, as a user runs it.

    python tools/bench_infer.py                      # 3000x2000 JPEG, default derain weights, no flags
    python tools/bench_infer.py --size 4000x3000 --task dehaze -- --max-memory 1G

The photograph is scikit-image's astronaut, resized to --size and saved as a JPEG in a
temporary folder. tools/infer.py runs in a child process with the extra arguments after
``--``; the figures printed (wall and CPU time, the child's peak resident memory, the
tile size infer chose, the load average before and after) go to docs/ENGINE.md.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# what tools/infer.py runs, in a child process of its own (so its peak memory is its own)
INFER = "import sys; from restoration.engine.runner import infer_main; sys.exit(infer_main(sys.argv[1:]))"


def main(argv=None, default_task: str = None) -> int:
    p = argparse.ArgumentParser(prog="tools/bench_infer.py", description=__doc__.split("\n")[0])
    p.add_argument("--size", default="3000x2000", help="WIDTHxHEIGHT of the test photograph (default 3000x2000)")
    p.add_argument("--task", default=default_task, required=default_task is None,
                   help="task whose default shipped weights restore it"
                        + (f" (default {default_task})" if default_task else ""))
    p.add_argument("extra", nargs="*", help="arguments passed on to tools/infer.py (after --)")
    args = p.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))

    import numpy as np
    from PIL import Image
    from skimage import data, transform

    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        img = transform.resize(data.astronaut(), (h, w), order=1)
        Image.fromarray((img * 255).round().astype(np.uint8)).save(src / "photo.jpg", quality=92)
        cmd = [sys.executable, "-c", INFER, "--task", args.task, "--input", str(src), "--output", str(out),
               *args.extra]
        load0 = os.getloadavg()
        t0 = time.time()
        root = str(Path(__file__).resolve().parents[2])  # importable from a checkout without installing
        env = {**os.environ, "RESTORATION_NO_TQDM": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.time() - t0
        load1 = os.getloadavg()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        print(log, file=sys.stderr)
        return proc.returncode
    tile = re.search(r"(\d+) tiles of (\d+) px", log)
    print(f"tools/infer.py --task {args.task} {' '.join(args.extra)} on a {w}x{h} JPEG "
          f"({w * h / 1e6:.1f} megapixels)")
    print(f"  tiles: {f'{tile.group(1)} of {tile.group(2)} px' if tile else 'none (whole image)'}")
    print(f"  wall {wall:.0f} s, CPU {usage.ru_utime + usage.ru_stime:.0f} s, peak resident memory "
          f"{usage.ru_maxrss / 2 ** 20:.2f} GB")
    print(f"  load average {load0[0]:.1f} before, {load1[0]:.1f} after, on {os.cpu_count()} cores")
    return 0
