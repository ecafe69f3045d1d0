"""The OLIF CUDA kernel source, compiled for the CPU, so its logic is tested without a GPU.

``cupy_kernels.KERNEL_TEMPLATE`` is plain C++ with a grid-stride loop. With a small
prelude (``blockIdx``/``threadIdx``/... as per-thread variables) the same text compiles
with the system C++ compiler into a shared library, loaded through ctypes: one source,
two targets, and the test that checks one checks both. OpenMP threads take the place
of CUDA blocks: thread k of K runs the kernel's loop over the k-th contiguous chunk of
the range; each "CUDA thread" owns one whole group of ``lif`` pixels, so no two
threads write the same element.

It is not a dispatch target: its one-thread-per-group layout coalesces on a GPU but
walks memory badly on a CPU. The CPU's fast path is ``cpu_kernels.py`` (a separate
source written for the CPU), built by the same machinery.

This module owns that machinery: :func:`compile_library` compiles a C++ source with the
system compiler (``$CXX``, else g++/c++/clang++) into ``~/.cache/snn-restoration/kernels``
(``SNN_RESTORATION_CACHE`` overrides), one file per hash of source, flags and host CPU,
written to a temporary name and renamed; it announces a build on stderr. Where no
compiler is found or the build fails, :func:`available` is False and the tests that need
it are skipped.
"""
from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Optional

import torch

from .cupy_kernels import KERNEL_TEMPLATE, KernelOLIF

HOST_PRELUDE = r"""
#include <omp.h>
struct olif_dim3 { unsigned int x; };
static const olif_dim3 blockIdx = {0}, gridDim = {1}, threadIdx = {0}, blockDim = {1};
#define __global__
#define __restrict__ __restrict
"""

# Host entry points: each OpenMP thread runs the kernel's loop over one contiguous
# chunk of the thread range (interleaved chunks would write neighbouring elements
# from different cores and thrash the cache lines).
HOST_DRIVERS = r"""
#define OLIF_CHUNK(n, k, K) ((n) * (long long)(k) / (K))
#define OLIF_DRIVERS(T)                                                                   \
extern "C" void olif_forward_host_##T(const T* x, const T* tau, const T* vth, T* y, T* u,   \
    unsigned char* s, long long n, int lif, long long groups, long long axis_len,           \
    long long inner, int save, int n_threads_omp) {                                          \
    _Pragma("omp parallel num_threads(n_threads_omp)")                                      \
    {                                                                                        \
        const int k = omp_get_thread_num(), K = omp_get_num_threads();                       \
        olif_forward_##T(x, tau, vth, y, u, s, OLIF_CHUNK(n, k, K), OLIF_CHUNK(n, k + 1, K),  \
                         lif, groups, axis_len, inner, save);                                \
    }                                                                                        \
}                                                                                            \
extern "C" void olif_backward_host_##T(const T* g, const T* u, const unsigned char* s,     \
    const T* tau, T* gx, T* pt, T* pv, long long n, int lif, long long groups,              \
    long long axis_len, long long inner, int n_threads_omp) {                               \
    _Pragma("omp parallel num_threads(n_threads_omp)")                                      \
    {                                                                                        \
        const int k = omp_get_thread_num(), K = omp_get_num_threads();                       \
        olif_backward_##T(g, u, s, tau, gx, pt, pv, OLIF_CHUNK(n, k, K),                     \
                          OLIF_CHUNK(n, k + 1, K), lif, groups, axis_len, inner);            \
    }                                                                                        \
}
OLIF_DRIVERS(float)
OLIF_DRIVERS(double)
"""

def host_source() -> str:
    return (HOST_PRELUDE + KERNEL_TEMPLATE.substitute(T="float") + KERNEL_TEMPLATE.substitute(T="double")
            + HOST_DRIVERS)


def _cache_dir() -> Path:
    root = os.environ.get("SNN_RESTORATION_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                                   "snn-restoration")
    return Path(root) / "kernels"


def find_compiler() -> Optional[str]:
    """The C++ compiler to use: ``$CXX``, else g++, c++ or clang++ on PATH; None if none."""
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def _host_tag() -> str:
    """What -march=native depends on: a library built on one CPU may not run on another
    (a home directory shared between machines), so the CPU's flags go into the file name."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        flags = ""
    return platform.machine() + flags


def compile_library(stem: str, source: str, flags, out_dir: Optional[Path] = None,
                    announce: Optional[str] = None) -> Path:
    """Compile ``source`` (C++) into ``<out_dir>/<stem>_<hash>.so`` unless it is cached; return the path.

    The hash covers the source, the flags and the host CPU. The library is written under a
    temporary name and renamed, so concurrent builds end with one whole file. ``announce``
    is printed to stderr before a build (never when the file is cached), so that a first use
    does not stall silently. Raises RuntimeError when no compiler is found or the build fails.
    """
    flags = list(flags)
    digest = hashlib.sha256("\0".join([source, *flags, _host_tag()]).encode()).hexdigest()[:16]
    out_dir = Path(out_dir) if out_dir else _cache_dir()
    lib = out_dir / f"{stem}_{digest}.so"
    if lib.exists():
        return lib
    cxx = find_compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler found (set CXX or install g++)")
    if announce:
        print(f"[snn-restoration] {announce} -> {lib}", file=sys.stderr, flush=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        src_path = Path(tmp) / f"{stem}.cpp"
        src_path.write_text(source)
        tmp_lib = Path(tmp) / lib.name
        cmd = [cxx, *flags, "-shared", "-fPIC", "-o", str(tmp_lib), str(src_path)]
        t0 = time.monotonic()
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"building {stem} failed:\n{' '.join(cmd)}\n{done.stderr[-2000:]}")
        os.replace(tmp_lib, lib)  # atomic: a concurrent build ends with one whole file
    if announce:
        print(f"[snn-restoration] built in {time.monotonic() - t0:.0f} s (cached for later runs)",
              file=sys.stderr, flush=True)
    return lib


def build(out_dir: Optional[Path] = None) -> Path:
    """Compile the host library of the CUDA kernel source (if not cached) and return its path."""
    return compile_library("olif_host", host_source(), ["-O3", "-march=native", "-fopenmp"], out_dir)


@functools.lru_cache(maxsize=None)
def _library() -> Optional[ctypes.CDLL]:
    if os.environ.get("SNN_RESTORATION_NO_HOST_KERNELS"):
        return None
    try:
        return ctypes.CDLL(str(build()))
    except Exception as e:  # noqa: BLE001 - reported once; callers skip the host path
        warnings.warn(f"OLIF host kernels unavailable ({e})", stacklevel=3)
        return None


def available() -> bool:
    return _library() is not None


def run_host(which: str, ctype: str, tensors, sizes, save: bool) -> None:
    """Launcher for ``cupy_kernels.KernelOLIF``: the host build, torch's thread count."""
    n_threads, lif, groups, axis_len, inner = sizes
    L = ctypes.c_longlong
    args = [ctypes.c_void_p(t.data_ptr()) for t in tensors] + [L(n_threads), ctypes.c_int(lif), L(groups),
                                                               L(axis_len), L(inner)]
    if which == "forward":
        args.append(ctypes.c_int(int(save)))
    args.append(ctypes.c_int(torch.get_num_threads()))
    getattr(_library(), f"olif_{which}_host_{ctype}")(*args)


def olif_host(x: torch.Tensor, tau: torch.Tensor, vth: torch.Tensor, lif: int, dim: int) -> torch.Tensor:
    """OLIF on CPU through the host-compiled kernels (call :func:`available` first)."""
    if x.device.type != "cpu":
        raise RuntimeError("olif_host needs a CPU tensor")
    return KernelOLIF.apply(x, tau, vth, lif, dim, run_host)
