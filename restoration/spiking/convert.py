"""The "ANN twin" of a spiking model: the same network with every spiking neuron
(SpikingJelly LIF/PLIF nodes and OLIF) replaced by a continuous activation and every
other weight kept. Comparing a model with its twin isolates what spiking costs or gains."""
from __future__ import annotations

import copy
from typing import Callable, Union

import torch.nn as nn

from .neurons import is_spiking_neuron

Activation = Union[Callable[[], nn.Module], nn.Module]


def _make(activation: Activation) -> nn.Module:
    if isinstance(activation, nn.Module):
        return copy.deepcopy(activation)
    act = activation()
    if not isinstance(act, nn.Module):
        raise TypeError(f"to_ann activation must be an nn.Module class or factory, got {activation!r}")
    return act


def _replace(module: nn.Module, activation: Activation) -> int:
    count = 0
    for name, child in module.named_children():
        if is_spiking_neuron(child):
            setattr(module, name, _make(activation))
            count += 1
        else:
            count += _replace(child, activation)
    return count


def to_ann(model: nn.Module, activation: Activation = nn.ReLU, copy_model: bool = True) -> nn.Module:
    """Return the ANN twin of ``model``.

    ``activation``: an ``nn.Module`` class or factory (called once per neuron) or an
    instance (deep-copied per neuron). With ``copy_model=True`` (default) the original
    model is untouched and the twin's weights are copies; with ``False`` the model is
    converted in place, so the two share nothing but the object.
    """
    twin = copy.deepcopy(model) if copy_model else model
    if is_spiking_neuron(twin):
        return _make(activation)
    n = _replace(twin, activation)
    if n == 0:
        raise ValueError(f"to_ann found no spiking neuron in {type(model).__name__}: it is already an ANN")
    twin.is_ann_twin = True
    return twin
