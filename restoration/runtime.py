"""Process-wide settings the tools share: how many torch CPU threads to run.

Small spiking networks run thousands of tiny operations; with as many threads as cores,
any other busy process makes each one wait for a time slice (measured 50x slower on 2
shared cores). Half the cores is the safe default; ``--threads`` or ``OMP_NUM_THREADS``
overrides it.
"""
from __future__ import annotations

import os
from typing import Optional


def default_threads() -> int:
    """Half the logical cores, at least one."""
    return max(1, (os.cpu_count() or 2) // 2)


def set_threads(threads: Optional[int] = None) -> int:
    """Set torch's CPU threads: ``threads`` when given, else ``OMP_NUM_THREADS`` when set
    (torch reads it itself), else :func:`default_threads`. Returns the count in force."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    elif "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(default_threads())
    return torch.get_num_threads()
