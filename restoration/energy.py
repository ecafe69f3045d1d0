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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Tuple

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
        rows.append(LayerOps(names.get(module, type(module).__name__), type(module).__name__, int(macs),
                             spikes, rate))

    for m in model.modules():
        if isinstance(m, _LAYERS):
            handles.append(m.register_forward_hook(hook))
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
            try:
                from spikingjelly.activation_based import functional

                functional.reset_net(model)
            except ImportError:
                pass
        else:
            reset(model)
    counted = sum(r.macs for r in rows)
    # FlopCounterMode counts conv/linear too (2 FLOPs per MAC); what remains is matmul-like
    # work outside those layers. Clamp at 0: its conv formula can differ by bias terms.
    other = max(0, total_flops // 2 - counted)
    return OpCount(rows, int(other))


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
