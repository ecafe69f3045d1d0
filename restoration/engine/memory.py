"""Peak memory of a block of work, on the CPU and on CUDA: one owner for the benchmark's
memory columns and for tools/infer.py's tile choice.

CPU: the resident high-water mark ``VmHWM`` of /proc/self/status, reset through Linux's
``/proc/self/clear_refs`` just before the block. glibc keeps freed blocks and raises its
mmap threshold as large blocks are freed, so work after a warm-up reuses pages already
resident and would show almost no growth: :func:`return_freed_memory` (or
:data:`MALLOC_ENV` for a child process) fixes the threshold so that tensors of 128 KiB and
more are mapped and unmapped. CUDA: ``torch.cuda.max_memory_allocated``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Optional

import torch

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
CPU_MEMORY_METHOD = ("peak resident set above the resident set after one warm-up step (VmHWM of /proc/self/status, "
                     "reset with /proc/self/clear_refs), in a separate process with glibc's mmap threshold fixed "
                     "at 128 KiB so that freed tensors leave the resident set")
CPU_MEMORY_FALLBACK = "growth of ru_maxrss after one warm-up step (a lower bound: VmHWM could not be reset)"
CUDA_MEMORY_METHOD = "torch.cuda.max_memory_allocated above the memory allocated after one warm-up step"

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def return_freed_memory() -> bool:
    """In this process, let glibc give freed tensors back to the system at once (what
    :data:`MALLOC_ENV` does for a child). True where it took effect."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, 131072)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 131072))
        libc.malloc_trim(0)  # and give back what is already freed but kept
        return ok
    except (OSError, AttributeError):
        return False


def maxrss_bytes() -> float:
    import resource

    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: kilobytes
    return kb * 1024.0 if sys.platform != "darwin" else float(kb)


def rss_bytes(field: str = "VmRSS") -> Optional[int]:
    """``VmRSS`` / ``VmHWM`` of /proc/self/status in bytes (None where there is no /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def reset_rss_peak() -> bool:
    """Reset ``VmHWM`` (Linux >= 4.0: ``clear_refs`` 5). ``ru_maxrss`` is no use in a child
    process: it also holds the parent's resident size at the fork (kept across exec)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """``with PeakMemory(device) as p: ...`` -> ``p.bytes``, the peak of the block above
    what was in use when it started, and ``p.method``, how it was measured
    (``p.exact`` is False for the ru_maxrss lower bound)."""

    def __init__(self, device: torch.device):
        self.device = torch.device(device)

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.base, self.method = torch.cuda.memory_allocated(self.device), CUDA_MEMORY_METHOD
        elif rss_bytes() is not None and reset_rss_peak():
            self.base, self.method = rss_bytes(), CPU_MEMORY_METHOD
        else:
            self.base, self.method = maxrss_bytes(), CPU_MEMORY_FALLBACK
        self.exact = self.method != CPU_MEMORY_FALLBACK
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.bytes = torch.cuda.max_memory_allocated(self.device) - self.base
        elif self.method == CPU_MEMORY_METHOD:
            self.bytes = max(0, (rss_bytes("VmHWM") or 0) - self.base)
        else:
            self.bytes = max(0.0, maxrss_bytes() - self.base)
