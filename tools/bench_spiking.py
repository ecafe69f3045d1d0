#!/usr/bin/env python
"""Forward+backward time of the spiking core, as a ratio to ``x.clone()`` of the same tensor.

    python tools/bench_spiking.py                 # CPU, N=8 C=48 H=W=128, LIF T=4
    python tools/bench_spiking.py --device cuda   # also the CuPy paths when cupy is usable

Each figure is the median over ``--repeats`` timed runs after ``--warmup`` runs. The
clone of the same tensor on the same device is the yardstick: a fused elementwise
op cannot beat a few passes over memory, so "x clone" says how far from that floor a
path is. Targets (issue 2): CPU OLIF fwd+bwd <= 2.5x clone; CUDA CuPy OLIF >= 5x faster
than the torch path and <= 4x clone.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from restoration.engine.log import cpu_name  # noqa: E402
from restoration.spiking import LIF, host_kernels, olif  # noqa: E402
from restoration.spiking.neurons import cupy_available  # noqa: E402
from spikingjelly.activation_based import functional  # noqa: E402


def timeit(fn, device, warmup, repeats):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--n", type=int, default=8, help="batch size N (default 8)")
    p.add_argument("--c", type=int, default=48, help="channels C (default 48)")
    p.add_argument("--size", type=int, default=128, help="H = W (default 128)")
    p.add_argument("--t", type=int, default=4, help="time steps of the multistep LIF (default 4)")
    p.add_argument("--lif", type=int, default=4, help="OLIF group length (default 4)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=15)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    shape = (args.n, args.c, args.size, args.size)
    x = torch.randn(shape, device=device) * 0.5
    g = torch.randn(shape, device=device)

    print(f"# machine: {cpu_name()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"# tensor N,C,H,W = {shape} float32; LIF input T,N,C,H,W = {(args.t,) + shape}")
    t_clone = timeit(lambda: x.clone(), device, args.warmup, args.repeats)
    rows = [("x.clone() (yardstick)", t_clone)]

    backends = ["torch"] + (["cupy"] if device.type == "cuda" and cupy_available() else [])
    olif_paths = list(backends)
    if device.type == "cpu" and host_kernels.available():
        olif_paths.append("host")  # backend='auto' on CPU: the kernel source compiled for the host
    for backend in olif_paths:
        for dim, axis in ((2, "H"), (3, "W")):
            tau = torch.tensor([0.25], device=device, requires_grad=True)
            vth = torch.tensor([0.25], device=device, requires_grad=True)
            xr = x.clone().requires_grad_(True)

            def step():
                if backend == "host":
                    y = host_kernels.olif_host(xr, tau, vth, args.lif, dim)
                else:
                    y = olif(xr, tau, vth, args.lif, dim, backend=backend)
                y.backward(g)
                xr.grad = tau.grad = vth.grad = None

            rows.append((f"OLIF {backend:5s} along {axis} fwd+bwd", timeit(step, device, args.warmup, args.repeats)))

    x_seq = torch.randn((args.t,) + shape, device=device)
    g_seq = torch.randn_like(x_seq)
    t_clone_seq = timeit(lambda: x_seq.clone(), device, args.warmup, args.repeats)
    rows.append((f"x_seq.clone() T={args.t} (yardstick)", t_clone_seq))
    for backend in backends:
        lif = LIF(tau=2.0, v_threshold=1.0, backend=backend)
        xs = x_seq.clone().requires_grad_(True)

        def lif_step():
            s = lif(xs)
            s.backward(g_seq)
            functional.reset_net(lif)
            xs.grad = None

        rows.append((f"LIF {backend:5s} T={args.t} fwd+bwd", timeit(lif_step, device, args.warmup, args.repeats)))

    print("\n| path | median ms | x clone of the same tensor |\n|---|---:|---:|")
    for name, t in rows:
        base = t_clone_seq if "LIF " in name and "OLIF" not in name or "x_seq" in name else t_clone
        print(f"| {name} | {t * 1e3:.2f} | {t / base:.2f}x |")


if __name__ == "__main__":
    main()
