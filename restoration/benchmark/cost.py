"""Cost of a model as its task runs it: parameters, MACs, SOPs from the measured input firing
rates, and energy with and without memory traffic (:func:`measure_ops`, :func:`cost_at_size`)."""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence

import torch
import torch.nn as nn

from ..energy import E_AC_PJ, E_MAC_PJ, MEMORY_LEVELS, count_ops, memory_traffic


ENERGY_FORMULA = (f"E = {E_MAC_PJ} pJ x MACs on real-valued inputs + {E_AC_PJ} pJ x SOPs on spike inputs; "
                  f"SOPs = MACs (all time steps) x the layer's input firing rate measured on the held-out images")
MEMORY_FORMULA = ("memory-aware E = the energy above + bits read and written (weights once per layer call, "
                  "inputs at 1 bit where spike-fed and 32 otherwise, 32-bit outputs, 32-bit membrane potentials "
                  "read and written per neuron per step) x the access energy of one memory level: " +
                  "; ".join(f"{k}: {v.read_pj_64b:g} pJ per 64 bits ({v.source})" for k, v in MEMORY_LEVELS.items()) +
                  "; see restoration/energy.py")


# -- the model as the task calls it ------------------------------------------------

class TaskModel(nn.Module):
    """``task.forward(fn, batch)`` as a module taking a batch dict, so that
    :func:`restoration.energy.count_ops` sees exactly what evaluation runs (padding,
    stereo pairs) for any task plugin. ``fn`` defaults to the model itself."""

    def __init__(self, model: nn.Module, task, device, fn: Optional[Callable] = None):
        super().__init__()
        self.model = model
        self.task, self.device, self.fn = task, torch.device(device), fn

    def forward(self, batch):
        return self.task.forward(self.fn or self.model, batch, self.device)[0]


def is_spiking(model: nn.Module) -> bool:
    from ..spiking import is_spiking_neuron

    return any(is_spiking_neuron(m) for m in model.modules())


# -- operation counts and energy -----------------------------------------------------

def aggregate_layers(count) -> Dict[str, Dict[str, Any]]:
    """Per layer name (calls over time steps summed): MACs, whether its input was spikes
    (0/1 only) in every call, and the MAC-weighted input firing rate."""
    out: Dict[str, Dict[str, Any]] = {}
    for r in count.layers:
        a = out.setdefault(r.name, {"macs": 0, "spike_input": True, "rate_macs": 0.0})
        a["macs"] += r.macs
        a["spike_input"] = a["spike_input"] and r.spike_input  # spikes in every call
        a["rate_macs"] += r.input_rate * r.macs
    for a in out.values():
        a["rate"] = a["rate_macs"] / a["macs"] if a["macs"] else 0.0
    return out


@torch.no_grad()
def measure_ops(model: nn.Module, task, batches: Iterable[Mapping[str, Any]], device,
                fn: Optional[Callable] = None) -> Dict[str, Any]:
    """Input firing rate of every conv/linear layer over ``batches`` (held-out images)
    and the neurons' firing rates (:class:`restoration.spiking.FiringRateMonitor`).

    A layer counts as spike-fed when the model has spiking neurons and the layer's input
    was 0/1 in every call on every image.

    Returns ``{'layers': {name: {'macs', 'spike_input', 'rate'}}, 'neuron_rates': {..},
    'mean_rate': float or None}``; rates are MAC-weighted over all images.
    """
    from ..spiking import FiringRateMonitor

    wrapped = TaskModel(model, task, device, fn)
    acc: Dict[str, Dict[str, Any]] = {}
    spiking = is_spiking(model)
    monitor = FiringRateMonitor(model).start() if spiking else None
    try:
        for batch in batches:
            for name, a in aggregate_layers(count_ops(wrapped, batch)).items():
                s = acc.setdefault(name, {"macs": 0, "spike_input": spiking, "rate_macs": 0.0})
                s["macs"] += a["macs"]
                # an ANN layer that happens to see only 0/1 (a dead ReLU) still runs MACs
                s["spike_input"] = s["spike_input"] and a["spike_input"]
                s["rate_macs"] += a["rate_macs"]
    finally:
        if monitor is not None:
            monitor.stop()
    layers = {n: {"macs": a["macs"], "spike_input": a["spike_input"],
                  "rate": a["rate_macs"] / a["macs"] if a["macs"] else 0.0} for n, a in acc.items()}
    return {"layers": layers,
            "neuron_rates": dict(monitor.rates()) if monitor else {},
            "mean_rate": monitor.mean_rate() if monitor else None}


@torch.no_grad()
def cost_at_size(model: nn.Module, task, device, size: int, measured: Mapping[str, Any]) -> Dict[str, float]:
    """MACs of one item at ``size`` x ``size`` and its SOPs and energy with the per-layer
    input firing rates ``measured`` on held-out images (:func:`measure_ops`).

    A layer whose input was spikes on the held-out images costs ``E_AC x MACs x rate``;
    every other layer, and matrix products outside conv/linear layers, ``E_MAC x MACs``.
    """
    count = count_ops(TaskModel(model, task, device), task.example_batch(1, size))
    rates = measured["layers"]
    macs = count.macs
    dense = float(count.other_macs)
    sops = 0.0
    for name, a in aggregate_layers(count).items():
        m = rates.get(name)
        if m is not None and m["spike_input"]:
            sops += a["macs"] * m["rate"]
        else:
            dense += a["macs"]
    energy_pj = E_MAC_PJ * dense + E_AC_PJ * sops
    out = {"macs": float(macs), "dense_macs": dense, "sops": sops, "energy_mj": energy_pj * 1e-9,
           "spike_mac_share": (macs - dense) / macs if macs else 0.0}
    # memory-aware: the same spike-fed layers (measured), their inputs at 1 bit
    traffic = memory_traffic(count, {n: bool(m["spike_input"]) for n, m in rates.items()})
    for key, level in MEMORY_LEVELS.items():
        out[f"energy_{key}_mj"] = (energy_pj + traffic.energy_pj(level)) * 1e-9
    out["memory_mbit"] = (traffic.reads + traffic.writes) / 1e6
    return out


def energy_ratio_line(rows: Sequence[Mapping[str, Any]]) -> Optional[str]:
    """'SNN/ANN-twin energy: ...' under the operation count and each memory level, for one
    task's rows holding an SNN and an ANN twin; None otherwise."""
    snn = next((r for r in rows if r.get("role") == "SNN"), None)
    twin = next((r for r in rows if r.get("role") == "ANN twin"), None)
    if snn is None or twin is None:
        return None
    parts = []
    for key, label in [("energy_mj", "operation count")] + [(f"energy_{k}_mj", f"memory-aware, {k.upper()}")
                                                             for k in MEMORY_LEVELS]:
        a, b = snn.get(key), twin.get(key)
        if a is not None and b:
            parts.append(f"{label} {a / b:.2f}")
    return f"SNN/ANN-twin energy ratio (`{snn['model']}` / `{twin['model']}`): " + ", ".join(parts) + "." \
        if parts else None
