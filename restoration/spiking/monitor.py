"""Per-layer firing rates, recorded by forward hooks on the spiking neurons.

    with FiringRateMonitor(model) as mon:
        model(x)
    mon.rates()   # {'encoder.0.lif': 0.12, ...}: fraction of output positions that spiked

For SpikingJelly neurons a position fired when its output is non-zero (outputs are
spikes). For OLIF a position fired when its output exceeds the threshold (non-spiking
positions output exactly ``Vth``). Counts accumulate over every forward inside the
``with`` block, so a rate over a whole validation set is one monitor around the loop.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict

import torch
import torch.nn as nn

from .neurons import is_spiking_neuron
from .olif import OLIF


def fired(module: nn.Module, output: torch.Tensor) -> torch.Tensor:
    """Where a spiking layer fired (a bool tensor shaped like ``output``): the one rule of what
    counts as a spike, used by the monitor and by firing-rate maps."""
    if isinstance(module, OLIF):
        return output > module.Vth.to(output.dtype)
    return output != 0


class FiringRateMonitor:
    def __init__(self, model: nn.Module):
        self.model = model
        self._handles = []
        self.spikes: Dict[str, float] = OrderedDict()
        self.positions: Dict[str, int] = OrderedDict()
        self.shapes: Dict[str, tuple] = OrderedDict()

    def _hook(self, name: str):
        def record(module, inputs, output):
            with torch.no_grad():
                count = fired(module, output).sum()
            self.spikes[name] = self.spikes.get(name, 0.0) + float(count)
            self.positions[name] = self.positions.get(name, 0) + output.numel()
            self.shapes[name] = tuple(output.shape)
        return record

    def start(self) -> "FiringRateMonitor":
        for name, m in self.model.named_modules():
            if is_spiking_neuron(m):
                self._handles.append(m.register_forward_hook(self._hook(name or type(m).__name__)))
        if not self._handles:
            raise ValueError(f"{type(self.model).__name__} has no spiking neuron to monitor")
        return self

    def stop(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def reset(self) -> None:
        self.spikes.clear()
        self.positions.clear()

    def rates(self) -> Dict[str, float]:
        """Firing rate per neuron layer, in forward order of first call."""
        return OrderedDict((k, self.spikes[k] / max(self.positions[k], 1)) for k in self.spikes)

    def mean_rate(self) -> float:
        """Firing rate over all recorded positions of all layers."""
        total = sum(self.positions.values())
        return sum(self.spikes.values()) / total if total else 0.0

    def __enter__(self) -> "FiringRateMonitor":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
