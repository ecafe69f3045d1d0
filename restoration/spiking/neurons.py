"""Multi-step LIF / parametric LIF neurons over SpikingJelly 0.0.0.0.14.

Input is ``T, N, ...`` (SpikingJelly ``step_mode='m'``). The backend is chosen in one
place, :func:`backend.resolve_backend` (re-exported here):

* ``'auto'`` (default): SpikingJelly's CuPy kernel when the input is on CUDA and cupy
  imports; on the CPU the one-pass C++ kernels (``cpu_kernels.py``: spikes identical to
  SpikingJelly's torch backend) when they cover the neuron (LIF/PLIF, ATan or Sigmoid
  surrogate, float32/float64, no ``store_v_seq``); otherwise the portable torch path;
* ``'torch'`` / ``'cupy'`` / ``'cpp'``: forced.

:func:`set_backend` applies a choice to every spiking neuron of a model, including plain
SpikingJelly nodes that a model may hold.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn as nn
from spikingjelly.activation_based import neuron, surrogate

from . import sj_compat
from .backend import BACKENDS, cpp_available, cupy_available, resolve_backend  # noqa: F401

sj_compat.apply()  # before any neuron runs: SpikingJelly's CuPy kernels and NumPy >= 1.24


SURROGATES = {
    "atan": surrogate.ATan,
    "sigmoid": surrogate.Sigmoid,
}


def make_surrogate(name_or_fn="atan", alpha: Optional[float] = None):
    """A SpikingJelly surrogate from a name ('atan', 'sigmoid') or pass an instance through."""
    if not isinstance(name_or_fn, str):
        return name_or_fn
    key = name_or_fn.lower()
    if key not in SURROGATES:
        raise ValueError(f"unknown surrogate {name_or_fn!r}; choose one of {sorted(SURROGATES)}")
    return SURROGATES[key]() if alpha is None else SURROGATES[key](alpha=alpha)


class _AutoBackendMixin:
    """Resolves ``requested_backend`` against the input before every multi-step forward."""

    requested_backend: str

    def multi_step_forward(self, x_seq: torch.Tensor):
        want = resolve_backend(self.requested_backend, x_seq)
        if want == "cpp":
            from . import cpu_kernels

            if cpu_kernels.supports(self, x_seq):
                return cpu_kernels.lif_multistep(self, x_seq)
            if self.requested_backend == "cpp":
                raise ValueError(f"backend 'cpp' does not cover this neuron ({self.extra_repr()}): it needs an "
                                 "ATan or Sigmoid surrogate, float tau/thresholds and store_v_seq=False; use "
                                 "backend='auto'")
            want = "torch"
        if want != self._backend:
            self.backend = want  # SpikingJelly's setter checks support for the step mode
        if want == "cupy" and x_seq.dtype not in (torch.float32, torch.float16):
            # SpikingJelly's CuPy kernels cover float and half only.
            self.backend = "torch"
        return super().multi_step_forward(x_seq)

    def extra_repr(self):
        return super().extra_repr() + f", requested_backend={self.requested_backend}"


class LIF(_AutoBackendMixin, neuron.LIFNode):
    """Multi-step leaky integrate-and-fire neuron (SpikingJelly ``LIFNode``).

    ``tau`` membrane time constant, ``v_threshold`` firing threshold, ``decay_input``
    whether the input is divided by tau, ``detach_reset`` whether the reset is detached
    from the graph, ``v_reset=None`` for soft reset.
    """

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0,
                 decay_input: bool = True, surrogate_function="atan", detach_reset: bool = False,
                 backend: str = "auto", step_mode: str = "m", store_v_seq: bool = False):
        resolve_backend(backend)  # validate the name now, not at the first forward
        super().__init__(tau=tau, decay_input=decay_input, v_threshold=v_threshold, v_reset=v_reset,
                         surrogate_function=make_surrogate(surrogate_function), detach_reset=detach_reset,
                         step_mode=step_mode, backend="torch", store_v_seq=store_v_seq)
        self.requested_backend = backend


class PLIF(_AutoBackendMixin, neuron.ParametricLIFNode):
    """Multi-step parametric LIF: the time constant is learnt (``init_tau`` initial value)."""

    def __init__(self, init_tau: float = 2.0, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0,
                 decay_input: bool = True, surrogate_function="atan", detach_reset: bool = False,
                 backend: str = "auto", step_mode: str = "m", store_v_seq: bool = False):
        resolve_backend(backend)
        super().__init__(init_tau=init_tau, decay_input=decay_input, v_threshold=v_threshold,
                         v_reset=v_reset, surrogate_function=make_surrogate(surrogate_function),
                         detach_reset=detach_reset, step_mode=step_mode, backend="torch",
                         store_v_seq=store_v_seq)
        self.requested_backend = backend


def is_spiking_neuron(m: nn.Module) -> bool:
    """True for SpikingJelly neurons (ours included) and the orthogonal LIF."""
    from .olif import OLIF

    return isinstance(m, (neuron.BaseNode, OLIF))


def reset_state(model: nn.Module) -> None:
    """Put every neuron of ``model`` back at rest (membrane potentials of SpikingJelly nodes,
    ours included); a DDP/DataParallel wrapper is looked through; cheap, and a no-op for a
    model without state. The one place the toolkit resets state between forwards."""
    from spikingjelly.activation_based import functional

    functional.reset_net(getattr(model, "module", model))


def set_backend(model: nn.Module, backend: str = "auto") -> nn.Module:
    """Choose the neuron backend for a whole model; returns the model.

    Our neurons and OLIF keep the request and resolve it per input; plain SpikingJelly
    nodes get it resolved now (they cannot follow the input's device).
    """
    resolve_backend(backend)  # validates the name
    from .olif import OLIF

    for m in model.modules():
        if isinstance(m, (_AutoBackendMixin, OLIF)):
            m.requested_backend = backend
        elif isinstance(m, neuron.BaseNode):
            # plain SpikingJelly nodes run its own backends only ('cpp' is ours)
            resolved = resolve_backend(backend, next(model.parameters(), None))
            m.backend = "torch" if resolved == "cpp" else resolved
    return model
