"""Training losses and their weighted sums.

A loss term is called as ``term(pred, target, extras)`` and returns a scalar;
``extras`` is the dict a task's forward returns beside the prediction (the rate of a
JSCC model, the degraded input for a contrastive loss). A recipe names terms::

    loss:
      terms:
        - {name: psnr, weight: 1.0}        # ESDNet
        - {name: ssim, weight: 1.0}
        - {name: rate, weight: 3.0e-5}     # DHF-JSCC lambda

:func:`build_loss` turns that list into a :class:`WeightedLoss`, which returns the total
and each weighted part (logged separately). New terms register in :data:`LOSSES`.
"""
from __future__ import annotations

import inspect
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..metrics import ms_ssim, rgb_to_y, ssim_map
from ..registry import Registry

LOSSES = Registry("loss")


def _flat(t: torch.Tensor) -> torch.Tensor:
    """Fold any leading dims into the batch: N,V,C,H,W (stereo views) -> N*V,C,H,W."""
    return t.reshape(-1, *t.shape[-3:]) if t.dim() > 4 else t


@LOSSES.register("l1")
class L1Loss(nn.Module):
    def forward(self, pred, target, extras=None):
        return F.l1_loss(pred, target)


@LOSSES.register("mse")
class MSELoss(nn.Module):
    """Mean squared error; ``scale`` multiplies it (DHF-JSCC trains on MSE * 255**2)."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def forward(self, pred, target, extras=None):
        return self.scale * F.mse_loss(pred, target)


@LOSSES.register("charbonnier")
class CharbonnierLoss(nn.Module):
    def __init__(self, eps: float = 1e-3):
        super().__init__()
        self.eps = eps

    def forward(self, pred, target, extras=None):
        return torch.sqrt((pred - target) ** 2 + self.eps ** 2).mean()


@LOSSES.register("psnr")
class PSNRLoss(nn.Module):
    """Negative PSNR in dB, averaged over images (ESDNet/NAFNet ``PSNRLoss``:
    ``10/ln10 * log(mse + 1e-8)``). Lower is better; its value is -PSNR."""

    def __init__(self, y_channel: bool = False):
        super().__init__()
        self.y_channel = y_channel

    def forward(self, pred, target, extras=None):
        pred, target = _flat(pred), _flat(target)
        if self.y_channel:
            pred, target = rgb_to_y(pred), rgb_to_y(target)
        mse = ((pred - target) ** 2).flatten(1).mean(1)
        return (10.0 / math.log(10.0)) * torch.log(mse + 1e-8).mean()


@LOSSES.register("ssim")
class SSIMLoss(nn.Module):
    """``1 - SSIM`` (11x11 Gaussian window, sigma 1.5; valid region)."""

    def forward(self, pred, target, extras=None):
        return 1.0 - ssim_map(_flat(pred), _flat(target)).mean()


@LOSSES.register("ms_ssim")
class MSSSIMLoss(nn.Module):
    """``1 - MS-SSIM`` (as many scales as the patch allows)."""

    def forward(self, pred, target, extras=None):
        return 1.0 - ms_ssim(_flat(pred), _flat(target)).mean()


@LOSSES.register("rate")
class RateLoss(nn.Module):
    """The rate term of a learned-compression / JSCC model: ``extras[key]`` (bits per
    pixel or a channel-usage proxy the model returns); weight it with lambda."""

    def __init__(self, key: str = "rate"):
        super().__init__()
        self.key = key

    def forward(self, pred, target, extras=None):
        if not extras or self.key not in extras or extras[self.key] is None:
            raise KeyError(f"loss term 'rate' needs extras[{self.key!r}] from the task's forward; this "
                           f"model returned {sorted(extras or {})}. Remove the 'rate' term from "
                           f"loss.terms or use a model that returns a rate")
        r = extras[self.key]
        return r.mean() if torch.is_tensor(r) else torch.as_tensor(r, dtype=pred.dtype, device=pred.device)


def rate_distortion_loss(out: Dict[str, Optional[torch.Tensor]], pair: torch.Tensor,
                         lam: float = 3e-5) -> torch.Tensor:
    """``MSE(recon, pair) + lam * rate`` (both views; MSE on [0, 1] images, rate in bits
    per pixel). Without an entropy model (``rate`` None) this is the MSE alone. The seed
    configuration's lambda is 3e-5 (DHF-JSCC; the recipes use the 'mse' and 'rate' terms)."""
    loss = F.mse_loss(out["recon"], pair)
    if out.get("rate") is not None:
        loss = loss + lam * out["rate"]
    return loss


@LOSSES.register("contrast")
class ContrastLossTerm(nn.Module):
    """AECR-Net's contrastive regularisation: pull the output towards the clear image,
    push it away from the hazy input (``extras['input']``), with the ``ContrastLoss`` of
    :mod:`restoration.losses.contrast` (its feature extractor's weights are loaded from a
    path the user gives; nothing is downloaded)."""

    def __init__(self, **kwargs):
        super().__init__()
        from .contrast import ContrastLoss  # lazy: only recipes that use it pay for it

        self.inner = ContrastLoss(**kwargs)

    def forward(self, pred, target, extras=None):
        if not extras or "input" not in extras:
            raise KeyError("loss term 'contrast' needs extras['input'] (the degraded image) from the task")
        return self.inner(pred, target, extras["input"])


class WeightedLoss(nn.Module):
    """``sum_i weight_i * term_i``; returns ``(total, {name: weighted part})``."""

    def __init__(self, terms: Sequence[Tuple[str, float, nn.Module]]):
        super().__init__()
        if not terms:
            raise ValueError("loss.terms is empty; give at least one term, e.g. [{name: l1, weight: 1.0}]")
        self.names = [n for n, _, _ in terms]
        self.weights = [float(w) for _, w, _ in terms]
        self.terms = nn.ModuleList([t for _, _, t in terms])

    def forward(self, pred, target, extras: Optional[Mapping[str, Any]] = None):
        parts: Dict[str, torch.Tensor] = {}
        total = None
        for name, w, term in zip(self.names, self.weights, self.terms):
            v = w * term(pred, target, extras)
            key = name if name not in parts else f"{name}_{len(parts)}"
            parts[key] = v.detach()
            total = v if total is None else total + v
        return total, parts


def build_loss(terms: Sequence[Mapping[str, Any]]) -> WeightedLoss:
    """``[{name: psnr, weight: 1.0, <constructor args>}, ...]`` -> :class:`WeightedLoss`."""
    built: List[Tuple[str, float, nn.Module]] = []
    if isinstance(terms, Mapping):
        raise ValueError("loss.terms must be a list of {name: ..., weight: ...} mappings, got a mapping")
    for i, spec in enumerate(terms):
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, Mapping) or "name" not in spec:
            raise ValueError(f"loss.terms[{i}] = {spec!r} needs a 'name' (one of {LOSSES.names()})")
        spec = dict(spec)
        name = spec.pop("name")
        weight = spec.pop("weight", 1.0)
        cls = LOSSES.get(name)
        try:
            params = inspect.signature(cls.__init__).parameters
        except (TypeError, ValueError):
            params = {}
        accepts_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
        unknown = [k for k in spec if k not in params and not accepts_any]
        if unknown:
            valid = [p for p in params if p != "self"]
            raise ValueError(f"loss term {name!r} has no option {unknown[0]!r}; its options are "
                             f"{valid or 'none'} (plus 'weight')")
        built.append((name, weight, cls(**spec)))
    return WeightedLoss(built)
