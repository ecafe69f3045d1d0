#!/usr/bin/env bash
# The checks that need a GPU, in one go (docs/BENCHMARKS.md records what they printed):
#   1. python -m pytest -m cuda       the CuPy paths (OLIF kernel, SpikingJelly's multi-step
#                                     LIF) against the torch path, every SNN on CUDA
#   2. tools/bench_spiking.py --device cuda, at the default size and at one past the L2 cache
#   3. optional: tools/infer.py --device cuda on a photo folder, compared with CPU outputs
#      made beforehand (REF_DIR/cpu_<model>/ beside REF_DIR/photos/)
# Usage: bash tools/check_cuda.sh OUT_DIR [REF_DIR]
# Each step has its own time limit so one hang cannot cost the others.
set -uo pipefail
out=${1:?usage: tools/check_cuda.sh OUT_DIR [REF_DIR]}
ref=${2:-}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $py -c "import torch, cupy, spikingjelly; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'| cupy', cupy.__version__, '| spikingjelly', spikingjelly.__file__)"; } 2>&1 | tee "$out/machine.txt"

timeout 240 $py -m pytest -m cuda -q -p no:cacheprovider 2>&1 | tee "$out/pytest_cuda.txt"
timeout 180 $py tools/bench_spiking.py --device cuda 2>&1 | tee "$out/bench_spiking_cuda.txt"
timeout 90 $py tools/bench_spiking.py --device cuda --skip-train --n 32 --size 256 --lif-size 128 2>&1 \
    | tee "$out/bench_spiking_cuda_large.txt"

if [ -n "$ref" ]; then
    for model in dehazesnn_s esdnet_tiny; do
        gpu_out=$(mktemp -d)/$model  # the pictures stay on the GPU machine; the comparison comes back
        timeout 60 $py tools/infer.py --pretrained "$model" --input "$ref/photos" --output "$gpu_out" \
            --device cuda 2>&1 | tail -2
        $py - "$ref/cpu_$model" "$gpu_out" "$model" <<'EOF' 2>&1 | tee -a "$out/infer_cpu_vs_cuda.txt"
import sys, pathlib
import numpy as np
from skimage import io
cpu_dir, gpu_dir, model = map(pathlib.Path, sys.argv[1:])
for f in sorted(cpu_dir.iterdir()):
    a = io.imread(f).astype(np.float64)
    b = io.imread(gpu_dir / f.name).astype(np.float64)
    mse = ((a - b) ** 2).mean()
    psnr = float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)
    print(f"{model} {f.name}: CPU vs CUDA output PSNR {psnr:.2f} dB, max |diff| {np.abs(a - b).max():.0f}/255")
EOF
    done
fi
