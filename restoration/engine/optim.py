"""Optimiser with parameter groups, learning-rate schedule, exponential moving average.

Parameter groups follow DehazeSNN: the parameters of spiking neurons (OLIF ``tau`` and
``Vth``, PLIF ``w``) get their own learning rate and weight decay (``optim.neuron_lr``,
``optim.neuron_weight_decay``); with ``optim.no_decay_1d`` the other 1-D parameters
(biases, norm scales) get no weight decay.

The schedule is a pure function of the position in training (epoch, step), so resuming
from a checkpoint gives exactly the learning rates of an uninterrupted run.
"""
from __future__ import annotations

import copy
import math
from typing import Dict, List

import torch
import torch.nn as nn

NEURON_PARAM_NAMES = {"tau", "Vth"}  # DehazeSNN's names, for neurons outside restoration.spiking


def split_parameters(model: nn.Module) -> Dict[str, List[nn.Parameter]]:
    """``{'neuron': [...], 'decay': [...], 'no_decay': [...]}`` (no_decay: dim < 2)."""
    from restoration.spiking import is_spiking_neuron

    neuron_ids = set()
    for m in model.modules():
        if is_spiking_neuron(m):
            neuron_ids.update(id(p) for p in m.parameters(recurse=False))
    groups: Dict[str, List[nn.Parameter]] = {"neuron": [], "decay": [], "no_decay": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if id(p) in neuron_ids or name.rsplit(".", 1)[-1] in NEURON_PARAM_NAMES:
            groups["neuron"].append(p)
        elif p.dim() >= 2:
            groups["decay"].append(p)
        else:
            groups["no_decay"].append(p)
    return groups


def build_optimizer(model: nn.Module, optim_cfg) -> torch.optim.Optimizer:
    o = optim_cfg
    g = split_parameters(model)
    wd = float(o.weight_decay)
    param_groups = []
    if o.no_decay_1d:
        param_groups.append({"name": "decay", "params": g["decay"], "weight_decay": wd, "lr": o.lr})
        param_groups.append({"name": "no_decay", "params": g["no_decay"], "weight_decay": 0.0, "lr": o.lr})
    else:
        param_groups.append({"name": "main", "params": g["decay"] + g["no_decay"], "weight_decay": wd,
                             "lr": o.lr})
    neuron_lr = o.lr if o.neuron_lr is None else o.neuron_lr
    param_groups.append({"name": "neuron", "params": g["neuron"], "weight_decay": float(o.neuron_weight_decay),
                         "lr": neuron_lr})
    param_groups = [pg for pg in param_groups if pg["params"]]
    if not param_groups:
        raise ValueError("the model has no trainable parameters")
    for pg in param_groups:
        pg["base_lr"] = float(pg["lr"])
    name = str(o.name).lower()
    if name == "adamw":
        return torch.optim.AdamW(param_groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, amsgrad=o.amsgrad)
    if name == "adam":
        return torch.optim.Adam(param_groups, lr=o.lr, betas=tuple(o.betas), eps=o.eps, amsgrad=o.amsgrad)
    if name == "sgd":
        return torch.optim.SGD(param_groups, lr=o.lr, momentum=o.momentum)
    raise ValueError(f"unknown optimiser optim.name={o.name!r}; choose adamw, adam or sgd")


class LRSchedule:
    """Linear warm-up from ``warmup_lr`` then cosine decay to ``min_lr`` (or constant).

    Positions are counted in optimiser steps (``per_step``, as DehazeSNN's timm
    scheduler) or in epochs (as ESDNet's warm-up + CosineAnnealingLR).
    ``warmup_lr`` and ``min_lr`` are absolute, as in both seeds, capped at each
    group's own base lr.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, sched_cfg, epochs: int, steps_per_epoch: int):
        s = sched_cfg
        self.optimizer = optimizer
        self.name = str(s.name).lower()
        if self.name not in ("cosine", "constant"):
            raise ValueError(f"unknown schedule sched.name={s.name!r}; choose cosine or constant")
        self.per_step = bool(s.per_step)
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        unit = self.steps_per_epoch if self.per_step else 1
        self.total = max(1, int(epochs * unit))
        self.warmup = int(round(float(s.warmup_epochs) * unit))
        self.warmup_lr = float(s.warmup_lr)
        self.min_lr = float(s.min_lr)

    def lr_factor_at(self, base: float, t: int) -> float:
        if t < self.warmup:
            start = min(self.warmup_lr, base)
            return start + (base - start) * t / self.warmup
        if self.name == "constant":
            return base
        lo = min(self.min_lr, base)
        span = max(1, self.total - self.warmup)
        frac = min(1.0, (t - self.warmup) / span)
        return lo + 0.5 * (base - lo) * (1.0 + math.cos(math.pi * frac))

    def position(self, epoch: int, step: int) -> int:
        return epoch * self.steps_per_epoch + step if self.per_step else epoch

    def set(self, epoch: int, step: int = 0) -> float:
        """Set every group's lr for optimiser step ``step`` of ``epoch``; returns the
        first group's lr (for logging)."""
        t = self.position(epoch, step)
        for g in self.optimizer.param_groups:
            g["lr"] = self.lr_factor_at(g["base_lr"], t)
        return self.optimizer.param_groups[0]["lr"]


class ModelEMA:
    """Exponential moving average of a model's parameters (buffers copied as they are)."""

    def __init__(self, model: nn.Module, decay: float):
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for e, p in zip(self.module.parameters(), model.parameters()):
            e.mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)
        for e, b in zip(self.module.buffers(), model.buffers()):
            e.copy_(b)

    def state_dict(self):
        return self.module.state_dict()

    def load_state_dict(self, sd):
        self.module.load_state_dict(sd)
