"""Operation counts and the energy estimate used in the SNN literature.

For one forward pass on a given input:

* MACs of every conv, transposed conv and linear layer, from its output shape
  (``out_elements * in_channels / groups * kernel_size``), counted over the whole
  batch, including the time steps a multi-step model runs;
* matrix products outside those layers (attention, einsum, bmm), from PyTorch's
  ``FlopCounterMode`` (FLOPs / 2), counted as dense MACs;
* for a layer whose input is spikes (every value 0 or 1, in a model that has spiking
  neurons), synaptic operations
  SOPs = MACs x input firing rate: only the inputs that fired trigger an accumulate.
  Because MACs already include the T time steps, this equals MACs-per-step x rate x T.

Energy (45 nm, Horowitz 2014, as in the SNN restoration papers):

    E = 4.6 pJ x MACs(layers fed by real values) + 0.9 pJ x SOPs(layers fed by spikes)

``count_ops(model, x)`` returns a :class:`OpCount` with per-layer rows.

Memory-aware estimate (beside the operation count, after the method of Lemaire et al.,
2022, and Dampfhoffer et al., IEEE TETCI 2023): :func:`memory_traffic` counts the bits
read and written per forward pass and :func:`memory_energy_pj` prices them at one memory
level (:data:`MEMORY_LEVELS`)::

    per conv/linear call:  read its weights (+ bias) once, read its input once,
                           write its output once
    per spiking neuron:    read + write its membrane potential once per element per step

Bit widths (:class:`BitWidths`): spike inputs (the layers the operation count calls
spike-fed) 1 bit per element, real-valued tensors (weights, activations, membrane
potentials, every layer output, OLIF's real-valued output) 32 bits unless configured.
Activation functions and neurons are taken as fused into the adjacent layers (a neuron's
input is the preceding layer's output, its spikes the next layer's input), so the ANN's
ReLU and the SNN's neuron add no tensor traffic of their own; the SNN pays its membrane
state. Weights are fetched once per layer call: a multi-step layer (all T steps in one
call, SpikingJelly's 'm' mode) fetches them once, a layer called per step T times.
Not counted: matrix products outside conv/linear layers, normalisation, additions.

    E_memory-aware = E_ops (above) + (read bits x E_read + written bits x E_write) / 64
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

E_MAC_PJ = 4.6
E_AC_PJ = 0.9

_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
           nn.Linear)


@dataclass
class LayerOps:
    name: str
    kind: str
    macs: int
    spike_input: bool
    input_rate: float  # fraction of non-zero inputs
    weights: int = 0   # parameter elements (weight + bias) fetched by this call
    in_elems: int = 0  # input elements read
    out_elems: int = 0  # output elements written

    @property
    def sops(self) -> float:
        return self.macs * self.input_rate if self.spike_input else 0.0

    @property
    def energy_pj(self) -> float:
        return E_AC_PJ * self.sops if self.spike_input else E_MAC_PJ * self.macs


@dataclass
class OpCount:
    layers: List[LayerOps] = field(default_factory=list)
    other_macs: int = 0  # matmul-like work outside conv/linear layers (dense)
    # (neuron name, membrane-potential updates over all steps) per neuron call
    neurons: List[Tuple[str, int]] = field(default_factory=list)

    @property
    def macs(self) -> int:
        """All multiply-accumulates a dense (ANN) execution would do."""
        return sum(l.macs for l in self.layers) + self.other_macs

    @property
    def dense_macs(self) -> int:
        """MACs actually done with real-valued inputs."""
        return sum(l.macs for l in self.layers if not l.spike_input) + self.other_macs

    @property
    def sops(self) -> float:
        return sum(l.sops for l in self.layers)

    @property
    def energy_pj(self) -> float:
        return sum(l.energy_pj for l in self.layers) + E_MAC_PJ * self.other_macs

    @property
    def energy_mj(self) -> float:
        return self.energy_pj * 1e-9

    def summary(self) -> Dict[str, float]:
        return {"MACs": self.macs, "dense_MACs": self.dense_macs, "SOPs": self.sops,
                "energy_mJ": self.energy_mj}


def layer_macs(module: nn.Module, inp: torch.Tensor, out: torch.Tensor) -> int:
    """MACs of one call of a conv / transposed conv / linear layer."""
    if isinstance(module, nn.Linear):
        return out.numel() * module.in_features
    k = 1
    for s in module.kernel_size:
        k *= s
    if isinstance(module, (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
        # every input element is scattered through the kernel to out_channels/groups maps
        return inp.numel() * (module.out_channels // module.groups) * k
    return out.numel() * (module.in_channels // module.groups) * k


def _is_spikes(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all()) if x.is_floating_point() else False


@torch.no_grad()
def count_ops(model: nn.Module, *inputs, reset=None, **kwargs) -> OpCount:
    """Count MACs/SOPs of ``model(*inputs, **kwargs)``.

    ``reset`` is called after the forward (e.g. ``functional.reset_net``) for models
    that carry state; SpikingJelly's reset is applied when None and spikingjelly imports.
    """
    rows: List[LayerOps] = []
    names = {m: n for n, m in model.named_modules()}
    handles = []
    from .spiking import is_spiking_neuron

    # An ANN layer whose input happens to be all 0/1 (a dead ReLU, a binary mask) is not
    # fed by spikes: only a model with spiking neurons has spike-fed layers.
    has_spikes = any(is_spiking_neuron(m) for m in model.modules())

    def hook(module, args, out):
        x = args[0]
        macs = layer_macs(module, x, out)
        spikes = has_spikes and _is_spikes(x)
        rate = float((x != 0).float().mean()) if x.numel() else 0.0
        weights = sum(p.numel() for p in (module.weight, module.bias) if p is not None)
        rows.append(LayerOps(names.get(module, type(module).__name__), type(module).__name__, int(macs),
                             spikes, rate, int(weights), x.numel(), out.numel()))

    def neuron_hook(module, args, out):
        states.append((names.get(module, type(module).__name__), neuron_state_updates(module, out)))

    states: List[Tuple[str, int]] = []
    for m in model.modules():
        if isinstance(m, _LAYERS):
            handles.append(m.register_forward_hook(hook))
        elif is_spiking_neuron(m):
            handles.append(m.register_forward_hook(neuron_hook))
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(*inputs, **kwargs)
        total_flops = counter.get_total_flops()
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
        if reset is None:
            from .spiking import reset_state

            reset_state(model)
        else:
            reset(model)
    counted = sum(r.macs for r in rows)
    # FlopCounterMode counts conv/linear too (2 FLOPs per MAC); what remains is matmul-like
    # work outside those layers. Clamp at 0: its conv formula can differ by bias terms.
    other = max(0, total_flops // 2 - counted)
    return OpCount(rows, int(other), states)


def neuron_state_updates(module: nn.Module, out: torch.Tensor) -> int:
    """Membrane-potential updates in one call of a spiking neuron: one per output element
    (a multi-step call's output holds all T steps; OLIF's steps are pixels along its
    axis). OLIF with ``lif=-1`` is the identity and keeps no state."""
    if getattr(module, "lif", None) == -1:
        return 0
    return out.numel() if torch.is_tensor(out) else 0


# -- memory-aware estimate -------------------------------------------------------------

@dataclass(frozen=True)
class MemoryLevel:
    """Energy of one 64-bit access of a memory level, in pJ, and where it comes from."""
    name: str
    read_pj_64b: float
    write_pj_64b: float
    source: str


# Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm (the table the operation
# count's 4.6 / 0.9 pJ also come from). It quotes reads; writes are taken equal.
MEMORY_LEVELS: Dict[str, MemoryLevel] = {
    "sram": MemoryLevel("8 KB on-chip SRAM", 10.0, 10.0,
                        "Horowitz ISSCC 2014, 45 nm: 64-bit read of an 8 KB SRAM ~10 pJ (write taken equal)"),
    "dram": MemoryLevel("off-chip DRAM", 1300.0, 1300.0,
                        "Horowitz ISSCC 2014, 45 nm: 1.3-2.6 nJ per 64-bit DRAM access (the low end; write equal)"),
}


@dataclass(frozen=True)
class BitWidths:
    """Bits per element: real-valued tensors (weights, activations, membrane potentials)
    at their storage width, spikes at 1."""
    weights: int = 32
    activations: int = 32
    membrane: int = 32
    spikes: int = 1


@dataclass
class MemoryTraffic:
    """Bits read and written in one forward pass (see the module docstring)."""
    weight_reads: float = 0.0
    input_reads: float = 0.0
    output_writes: float = 0.0
    state_reads: float = 0.0
    state_writes: float = 0.0

    @property
    def reads(self) -> float:
        return self.weight_reads + self.input_reads + self.state_reads

    @property
    def writes(self) -> float:
        return self.output_writes + self.state_writes

    def energy_pj(self, level: MemoryLevel) -> float:
        return (self.reads * level.read_pj_64b + self.writes * level.write_pj_64b) / 64.0


def memory_traffic(count: OpCount, spike_input: Optional[Mapping[str, bool]] = None,
                   bits: BitWidths = BitWidths()) -> MemoryTraffic:
    """Bits moved by the forward pass that ``count`` recorded.

    A layer's input counts as spikes (``bits.spikes`` per element) where the operation
    count says so (:attr:`LayerOps.spike_input`), or, when ``spike_input`` is given (per
    layer name, e.g. measured on held-out images), where that says so; everything else
    at its real width.
    """
    t = MemoryTraffic()
    for r in count.layers:
        spikes = bool(spike_input.get(r.name, False)) if spike_input is not None else r.spike_input
        t.weight_reads += r.weights * bits.weights
        t.input_reads += r.in_elems * (bits.spikes if spikes else bits.activations)
        t.output_writes += r.out_elems * bits.activations
    for _, n in count.neurons:
        t.state_reads += n * bits.membrane
        t.state_writes += n * bits.membrane
    return t


def memory_energy_pj(traffic: MemoryTraffic, level: MemoryLevel) -> float:
    """Energy of the memory accesses alone at ``level``; add the operation energy for the
    memory-aware total."""
    return traffic.energy_pj(level)


def merge_rows(count: OpCount) -> List[Tuple[str, int, float, float]]:
    """(layer name, MACs, input rate, SOPs) per layer, calls of the same layer summed."""
    acc: Dict[str, List[float]] = {}
    for r in count.layers:
        a = acc.setdefault(r.name, [0, 0.0, 0.0, 0])
        a[0] += r.macs
        a[1] += r.input_rate * r.macs
        a[2] += r.sops
        a[3] += 1
    return [(n, int(a[0]), a[1] / a[0] if a[0] else 0.0, a[2]) for n, a in acc.items()]
