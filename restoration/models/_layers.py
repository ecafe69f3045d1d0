"""Small layers shared by several model files (no registrations here: the registry
skips modules whose name starts with an underscore)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int, mode: str = "reflect") -> torch.Tensor:
    """``x`` (``..., C, H, W``, any leading dims) padded at the bottom and the right so that
    H and W are multiples of ``multiple``; crop back with ``[..., :H, :W]``. 'reflect'
    needs the pad smaller than the side, so tiny inputs fall back to 'replicate'. The one
    padding rule of the models, the evaluator and the tools."""
    h, w = x.shape[-2:]
    m = max(1, int(multiple or 1))
    ph, pw = (-h) % m, (-w) % m
    if ph == 0 and pw == 0:
        return x
    if mode == "reflect" and not (ph < h and pw < w):
        mode = "replicate"
    lead = x.shape[:-3]
    y = F.pad(x.reshape(-1, *x.shape[-3:]), (0, pw, 0, ph), mode=mode)
    return y.reshape(*lead, *y.shape[-3:])


def drop_path(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drop the whole residual branch of a sample with probability ``p``
    and scale the kept ones by ``1 / (1 - p)`` so the expectation is unchanged."""
    if p == 0.0 or not training:
        return x
    keep = 1.0 - p
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)  # one draw per sample
    mask = x.new_empty(shape).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    """Module form of :func:`drop_path` (the identity in eval mode or with ``p=0``)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"DropPath probability must be in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p:.4f}"
