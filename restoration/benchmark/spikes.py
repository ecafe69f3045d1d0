"""Spatial firing-rate maps of a spiking model (``tools/visualize_spikes.py``)."""
from __future__ import annotations

from typing import Any, Dict

import torch
import torch.nn as nn


# -- spatial firing-rate maps (tools/visualize_spikes.py) ---------------------------------

@torch.no_grad()
def spike_maps(model: nn.Module, *inputs, item: int = 0) -> "Dict[str, Dict[str, Any]]":
    """Firing-rate map (H x W, in [0, 1]) of every spiking-neuron layer for one forward:
    the fraction of channels and time steps that fired at each position of batch item
    ``item``, by the monitor's rule (``restoration.spiking.monitor.fired``: SpikingJelly
    neurons fire where the output is non-zero, OLIF where it exceeds ``Vth``). A layer called
    several times (per view, per step) gets the mean of its calls.

    Returns ``{name: {'map': tensor, 'kind': str, 'calls': int}}`` in forward order; the
    model's state is reset afterwards.
    """
    from ..spiking import OLIF, is_spiking_neuron
    from ..spiking.monitor import fired as spiked

    maps: Dict[str, Dict[str, Any]] = {}
    handles = []

    def hook(name):
        def record(module, args, out):
            fired = spiked(module, out).float()  # the monitor's rule
            if isinstance(module, OLIF):  # N,C,H,W
                kind = f"OLIF along {'H' if module.dim == 2 else 'W'}"
                m = fired[item].mean(0)
            else:
                kind = type(module).__name__
                m = fired[:, item].mean((0, 1)) if fired.dim() == 5 else fired[item].mean(0)
            e = maps.setdefault(name, {"map": torch.zeros_like(m), "kind": kind, "calls": 0})
            if e["map"].shape == m.shape:
                e["map"] += m
                e["calls"] += 1
        return record

    for name, m in model.named_modules():
        if is_spiking_neuron(m):
            handles.append(m.register_forward_hook(hook(name or type(m).__name__)))
    if not handles:
        raise ValueError(f"{type(model).__name__} has no spiking neuron: firing-rate maps need a spiking model "
                         f"(not an ANN twin)")
    was = model.training
    model.eval()
    try:
        model(*inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
        from ..spiking import reset_state

        reset_state(model)
    for e in maps.values():
        e["map"] = (e["map"] / max(1, e["calls"])).cpu()
    return maps


def region_rates(rate_map: torch.Tensor, mask: torch.Tensor) -> "tuple":
    """Mean firing rate inside and outside ``mask`` (H x W bool at image size), the mask
    brought to the map's resolution by area averaging (a cell is inside when at least
    half of its pixels are)."""
    import torch.nn.functional as F

    h, w = rate_map.shape[-2:]
    m = F.adaptive_avg_pool2d(mask.float()[None, None], (h, w))[0, 0] >= 0.5
    inside = float(rate_map[m].mean()) if m.any() else float("nan")
    outside = float(rate_map[~m].mean()) if (~m).any() else float("nan")
    return inside, outside
