"""Fixes to SpikingJelly 0.0.0.0.14 (the pinned release) that today's NumPy needs.

Its CuPy multi-step kernels (``activation_based.auto_cuda``) check their arguments with
``np.int``, an alias NumPy 1.24 removed: every training-mode forward of a LIF/PLIF on
CUDA then stops with ``AttributeError: module 'numpy' has no attribute 'int'`` (seen on
an H200 with NumPy 2.5 and CuPy 14). :func:`apply` swaps in the same check written with
``np.integer``; it changes nothing where ``np.int`` still exists. ``neurons.py`` applies
it on import, before any neuron runs.
"""
from __future__ import annotations

import numpy as np
import torch


def _check_ctypes(self, py_dict: dict) -> None:
    """SpikingJelly's ``CKernel.check_ctypes``: each argument's dtype fits its C type."""
    from spikingjelly.activation_based.auto_cuda import base

    for key, value in py_dict.items():
        ctype: str = self.cparams[key]
        if isinstance(value, torch.Tensor):
            dtype, is_int = value.dtype, not (value.dtype.is_floating_point or value.dtype.is_complex)
            half, single = dtype == torch.half, dtype == torch.float
        elif base.cupy is not None and isinstance(value, base.cupy.ndarray):
            dtype, is_int = value.dtype, np.issubdtype(value.dtype, np.integer)
            half, single = dtype == np.float16, dtype == np.float32
        else:
            continue
        if single:
            assert base.startswiths(ctype, ("const float", "float")), (key, ctype, dtype)
        elif half:
            assert base.startswiths(ctype, ("const half2", "half2")), (key, ctype, dtype)
        elif is_int and not isinstance(value, torch.Tensor):  # SpikingJelly checks cupy ints only
            assert base.startswiths(ctype, ("const int", "int")), (key, ctype, dtype)


def apply() -> None:
    """Install the fixes once (a no-op under NumPy < 1.24, where ``np.int`` exists)."""
    if hasattr(np, "int"):
        return
    from spikingjelly.activation_based.auto_cuda import base

    base.CKernel.check_ctypes = _check_ctypes
