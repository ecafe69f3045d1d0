"""Which implementation a spiking neuron runs: the one place that decides.

* ``'auto'`` (default): on CUDA the CuPy kernels when cupy is usable; on the CPU the
  C++ kernels of ``cpu_kernels.py`` for float32/float64 when they could be built (else,
  after one warning, the torch path); the portable torch path otherwise.
* ``'torch'``: SpikingJelly's torch backend (LIF/PLIF) and ``olif._OLIFTorch`` (OLIF):
  the references the fast paths are tested against.
* ``'cupy'``: forced CuPy (CUDA tensors). ``'cpp'``: forced C++ kernels (CPU tensors).

Both ``neurons.py`` and ``olif.py`` import from here (and not from each other).
"""
from __future__ import annotations

import functools
from typing import Optional

import torch

BACKENDS = ("auto", "torch", "cupy", "cpp")
CPP_DTYPES = (torch.float32, torch.float64)


@functools.lru_cache(maxsize=None)
def cupy_available() -> bool:
    """True when cupy imports and sees a GPU (a failed import is not an error)."""
    try:
        import cupy  # noqa: F401

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, CUDARuntimeError, missing driver...
        return False


def cpp_available() -> bool:
    """True when the C++ CPU kernels are built and loaded (the first call may build them)."""
    from . import cpu_kernels

    return cpu_kernels.available()


def resolve_backend(requested: str, x: Optional[torch.Tensor] = None) -> str:
    """The backend to run for input ``x``: 'torch', 'cupy' or 'cpp'. With ``x=None`` it
    only validates the name (and, for 'cupy'/'cpp', that the backend is usable here)."""
    if requested not in BACKENDS:
        raise ValueError(f"unknown spiking backend {requested!r}; choose one of {BACKENDS}")
    if requested == "auto":
        if x is None:
            return "torch"
        if x.is_cuda:
            return "cupy" if cupy_available() else "torch"
        if x.device.type == "cpu" and x.dtype in CPP_DTYPES and cpp_available():
            return "cpp"
        return "torch"
    if requested == "cupy" and not cupy_available():
        raise RuntimeError("backend 'cupy' was requested but cupy is not usable here; install the "
                           "'cuda12' or 'cuda13' extra (pip install cupy-cuda12x) or use backend='auto'")
    if requested == "cpp":
        if x is not None and (x.device.type != "cpu" or x.dtype not in CPP_DTYPES):
            raise RuntimeError(f"backend 'cpp' needs a float32/float64 CPU tensor, got {x.dtype} on {x.device}; "
                               "use backend='auto'")
        if not cpp_available():
            raise RuntimeError("backend 'cpp' was requested but the C++ kernels could not be built (install "
                               "g++ or set CXX); use backend='auto' to fall back to the torch path")
    return requested
