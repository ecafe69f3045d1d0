"""Speed of the spiking core: each path as a ratio to the memory floor, and training steps
of every SNN next to its ANN twin.

    python tools/bench_spiking.py                       # CPU, kernels and training steps
    python tools/bench_spiking.py --threads 1 --skip-train
    python tools/bench_spiking.py --device cuda         # also the CuPy paths when cupy is usable

**Kernels**: forward + backward of OLIF (N=8, C=48, H=W=128, both axes) and of the multi-step
LIF (T=4 x the same tensor at H=W=64) on each backend. The yardsticks, on a tensor of the
same size: the *memory floor*, ``torch.add(a, b, out=c)`` twice (reads four tensors and
writes two, what a one-pass forward + backward must at least move), and ``x.clone()``.
**Training steps** (``--skip-train`` leaves them out): the trainer's step (forward, loss,
backward, optimiser) of each task's SNN with the torch neurons (today's path before the C++
kernels), with ``backend='auto'``, and of its ANN twin, at the CPU recipe's crop and batch.

The machine is shared, so every figure is a ratio measured within one run, and the paths
are timed in interleaved rounds (one call of each per round), so that a burst of load
elsewhere falls on all of them alike. Each figure is the median over ``--repeats`` rounds
after ``--warmup`` rounds; the load average is printed at the start and the end.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from spikingjelly.activation_based import functional

from ..engine.log import cpu_name
from ..spiking import LIF, cpp_available, cupy_available, olif, set_backend
from .speed import _steps
from .suite import SUITES, build_bench_config


def twins():
    """(task, spiking model, its ANN twin) of every benchmarked task, from the plugins' suites."""
    out = []
    for task, specs in SUITES.items():
        roles = {s.role: s.name for s in specs}
        if "SNN" in roles and "ANN twin" in roles:
            out.append((task, roles["SNN"], roles["ANN twin"]))
    return out


def interleaved(fns, device, warmup, repeats):
    """{name: median seconds}: ``repeats`` rounds, each calling every fn once in turn."""
    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(t) for name, t in times.items()}


def yardsticks(shape, device):
    a, b = torch.randn(shape, device=device), torch.randn(shape, device=device)
    c = torch.empty(shape, device=device)

    def floor():
        torch.add(a, b, out=c)
        torch.add(a, b, out=c)

    return {"memory floor (2x add)": floor, "clone": lambda: a.clone()}


def kernel_rows(args, device):
    backends = ["torch"] + (["cpp"] if device.type == "cpu" and cpp_available() else []) \
        + (["cupy"] if device.type == "cuda" and cupy_available() else [])
    rows = []
    shape = (args.n, args.c, args.size, args.size)
    x, g = torch.randn(shape, device=device) * 0.5, torch.randn(shape, device=device)
    fns = yardsticks(shape, device)
    for backend in backends:
        for dim, axis in ((2, "H"), (3, "W")):
            tau = torch.tensor([0.25], device=device, requires_grad=True)
            vth = torch.tensor([0.25], device=device, requires_grad=True)
            xr = x.clone().requires_grad_(True)

            def step(backend=backend, dim=dim, tau=tau, vth=vth, xr=xr):
                olif(xr, tau, vth, args.lif, dim, backend=backend).backward(g)
                xr.grad = tau.grad = vth.grad = None

            fns[f"OLIF {backend} along {axis}"] = step
    rows.append((f"OLIF, N,C,H,W = {shape}", interleaved(fns, device, args.warmup, args.repeats)))

    seq_shape = (args.t, args.n, args.c, args.lif_size, args.lif_size)
    xs, gs = torch.randn(seq_shape, device=device), torch.randn(seq_shape, device=device)
    fns = yardsticks(seq_shape, device)
    for backend in backends:
        for surr, decay, label in (("atan", True, "ATan, decay_input (dhf_jscc)"),
                                   ("sigmoid", False, "Sigmoid, no decay_input (esdnet)")):
            node = LIF(tau=2.0, v_threshold=1.0 if decay else 0.15, decay_input=decay, surrogate_function=surr,
                       backend=backend)
            xr = xs.clone().requires_grad_(True)

            def lif_step(node=node, xr=xr):
                node(xr).backward(gs)
                functional.reset_net(node)
                xr.grad = None

            fns[f"LIF {backend} {label}"] = lif_step
    rows.append((f"multi-step LIF, T,N,C,H,W = {seq_shape}", interleaved(fns, device, args.warmup, args.repeats)))
    return rows


def train_rows(args, device):
    out = []
    for task, snn, ann in twins():
        specs = {s.name: s for s in SUITES[task]}
        fns = {}
        for label, name, backend in ((f"{snn} torch neurons", snn, "torch"), (f"{snn} auto", snn, "auto"),
                                     (f"{ann} (ANN twin)", ann, None)):
            cfg = build_bench_config(specs[name], task, "full", device=str(device))
            _, _, step = _steps(cfg, None, 64, int(cfg.data.patch_size), int(cfg.data.batch_size), 1, str(device))
            if backend:
                set_backend(step.model, backend)
            fns[label] = step
        crop = f"batch {int(cfg.data.batch_size)} x {int(cfg.data.patch_size)}x{int(cfg.data.patch_size)}"
        out.append((task, crop, interleaved(fns, device, args.train_warmup, args.train_repeats)))
    return out


def thread_rows(args, device):
    """Each task's default SNN training step (backend 'auto') at each of ``--compare-threads``,
    interleaved in one run: {task: {threads: seconds}}."""
    out = []
    for task, snn, _ in twins():
        spec = next(s for s in SUITES[task] if s.name == snn)
        cfg = build_bench_config(spec, task, "full", device=str(device))
        _, _, step = _steps(cfg, None, 64, int(cfg.data.patch_size), int(cfg.data.batch_size), 1, str(device))
        fns = {}
        for n in args.compare_threads:
            def run(n=n):
                torch.set_num_threads(n)
                step()
            fns[n] = run
        out.append((task, snn, interleaved(fns, device, args.train_warmup, args.train_repeats)))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/bench_spiking.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--n", type=int, default=8, help="batch size N (default 8)")
    p.add_argument("--c", type=int, default=48, help="channels C (default 48)")
    p.add_argument("--size", type=int, default=128, help="OLIF H = W (default 128)")
    p.add_argument("--lif-size", type=int, default=64, help="multi-step LIF H = W (default 64)")
    p.add_argument("--t", type=int, default=4, help="time steps of the multi-step LIF (default 4)")
    p.add_argument("--lif", type=int, default=4, help="OLIF group length (default 4)")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--skip-train", action="store_true", help="leave out the training-step comparison")
    p.add_argument("--train-warmup", type=int, default=2)
    p.add_argument("--train-repeats", type=int, default=10)
    p.add_argument("--compare-threads", type=int, nargs="+", metavar="N",
                   help="instead of everything else: each task's SNN training step at these torch thread "
                        "counts, interleaved (e.g. --compare-threads 1 2)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cpp = cpp_available() if device.type == "cpu" else False  # builds (announced) before any timing

    print(f"# machine: {cpu_name()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at the start; "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "")
          + ("" if device.type != "cpu" else f"; C++ kernels {'built' if cpp else 'NOT available'}"))
    if args.compare_threads:
        print("\nTraining step at each thread count (backend 'auto'), interleaved rounds\n")
        base = args.compare_threads[0]
        print("| task | model | " + " | ".join(f"{n} threads (ms)" for n in args.compare_threads)
              + " | " + " | ".join(f"{n} vs {base}" for n in args.compare_threads[1:]) + " |")
        print("|---|---|" + "---:|" * (2 * len(args.compare_threads) - 1))
        for task, snn, times in thread_rows(args, device):
            print(f"| {task} | {snn} | " + " | ".join(f"{times[n] * 1e3:.0f}" for n in args.compare_threads)
                  + " | " + " | ".join(f"{times[n] / times[base]:.2f}x" for n in args.compare_threads[1:]) + " |")
        print(f"\n# load average {os.getloadavg()[0]:.2f} at the end")
        return
    for title, times in kernel_rows(args, device):
        floor, clone = times["memory floor (2x add)"], times["clone"]
        print(f"\n{title}, float32, forward + backward\n")
        print("| path | median ms | x memory floor | x clone |\n|---|---:|---:|---:|")
        for name, t in times.items():
            print(f"| {name} | {t * 1e3:.2f} | {t / floor:.2f}x | {t / clone:.2f}x |")
    if not args.skip_train:
        print("\nTraining step (forward, loss, backward, optimiser), each task's CPU recipe crop and batch\n")
        print("| task | step | median ms | x ANN twin | x torch neurons |\n|---|---|---:|---:|---:|")
        for task, crop, times in train_rows(args, device):
            twin = next(t for k, t in times.items() if "ANN twin" in k)
            before = next(t for k, t in times.items() if k.endswith("torch neurons"))
            for name, t in times.items():
                print(f"| {task} ({crop}) | {name} | {t * 1e3:.0f} | {t / twin:.2f}x | {t / before:.2f}x |")
    print(f"\n# load average {os.getloadavg()[0]:.2f} at the end")
