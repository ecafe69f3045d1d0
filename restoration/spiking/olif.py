"""Orthogonal LIF (OLIF) of DehazeSNN / SNN-MLP.

Along one spatial axis of an ``N,C,H,W`` tensor (``dim=2``: H, ``dim=3``: W) the axis is
cut into consecutive groups of ``lif`` pixels that act as time steps. For each group,
with o_0 = 0::

    u_j = tau * o_j + x_j
    s_j = u_j > vth
    y_j = u_j if s_j else vth
    o_{j+1} = 0 if s_j else u_j

A trailing remainder shorter than ``lif`` passes through unchanged (y = x, gradient 1).

Gradients follow the reference CUDA kernel: the spike s_j is a constant (no surrogate),
so with g_j = dL/dy_j and the adjoint a_j = dL/du_j::

    a_j = g_j              if s_j
    a_j = tau * a_{j+1}    otherwise (a_lif = 0)
    dL/dx_j   = a_j
    dL/dvth   = sum over non-spiking j of g_j
    dL/dtau   = sum_j a_j * o_j

Implementations: :class:`_OLIFTorch`, vectorised over pixels with a loop over the
``lif`` steps only (any device, any float dtype: the portable reference path); the
one-pass C++ kernels of ``cpu_kernels.py`` (float32/float64 on the CPU, chosen by
``backend='auto'`` there; forward bit-identical to the torch path); and the CuPy kernels
of ``cupy_kernels.py`` on CUDA. ``host_kernels.py`` compiles the CuPy kernel source for
the CPU so that tests check the kernel logic without a GPU; it is not dispatched to.
``tests/test_olif.py`` holds a per-element reference loop and compares all of them.
"""
from __future__ import annotations

from typing import Union

import torch
import torch.nn as nn

from .backend import BACKENDS, cupy_available, resolve_backend

Number = Union[float, torch.Tensor]


def _as_param(v: Number, like: torch.Tensor) -> torch.Tensor:
    if isinstance(v, torch.Tensor):
        if v.numel() != 1:
            raise ValueError(f"OLIF tau and vth must be one-element tensors, got shape {tuple(v.shape)}")
        return v.reshape(1)
    return torch.tensor([float(v)], dtype=like.dtype, device=like.device)


def _grouped(t: torch.Tensor, axis: int, lif: int) -> torch.Tensor:
    """View of the full groups of ``t`` along ``axis`` as (..., G, lif, ...)."""
    full = (t.shape[axis] // lif) * lif
    return t.narrow(axis, 0, full).unflatten(axis, (full // lif, lif))


class _OLIFTorch(torch.autograd.Function):
    """Portable OLIF: loops over the ``lif`` steps, each step a few whole-tensor ops.

    Written with float arithmetic only: on CPU, ``torch.where``/``masked_fill`` with a
    bool mask run an order of magnitude slower than a multiply. The spike indicator is
    s = sign(max(u, vth) - vth), i.e. 1 exactly where u > vth, and y = max(u, vth)
    is the output (u where it spikes, vth elsewhere).
    """

    @staticmethod
    def forward(ctx, x, tau, vth, lif: int, dim: int):
        x = x.contiguous()
        tau_f, vth_f = float(tau), float(vth)
        y = torch.empty_like(x)
        n_full = (x.shape[dim] // lif) * lif
        rest = x.shape[dim] - n_full
        if rest:
            y.narrow(dim, n_full, rest).copy_(x.narrow(dim, n_full, rest))
        need_grad = any(ctx.needs_input_grad[:3])
        # u of every full-group position: the backward recomputes s and o from it.
        u_all = torch.empty_like(x) if need_grad else None
        if n_full:
            xs, ys = _grouped(x, dim, lif), _grouped(y, dim, lif)
            us = _grouped(u_all, dim, lif) if need_grad else None
            step = dim + 1  # the axis of the position inside a group
            carried = None  # o_j
            for j in range(lif):
                x_j, y_j = xs.select(step, j), ys.select(step, j)
                if carried is None:
                    u = x_j.clone()
                else:
                    u = carried.mul_(tau_f).add_(x_j)
                torch.clamp_min(u, vth_f, out=y_j)
                if us is not None:
                    us.select(step, j).copy_(u)
                if j + 1 < lif:
                    spike = torch.sub(y_j, vth_f).sign_()
                    carried = u.addcmul_(u, spike, value=-1.0)  # u * (1 - s)
        if need_grad:
            ctx.save_for_backward(u_all, tau, vth)
        ctx.lif, ctx.dim, ctx.n_full = lif, dim, n_full
        return y

    @staticmethod
    def backward(ctx, grad_y):
        u_all, tau, vth = ctx.saved_tensors
        lif, dim, n_full = ctx.lif, ctx.dim, ctx.n_full
        tau_f, vth_f = float(tau), float(vth)
        grad_y = grad_y.contiguous()
        grad_x = torch.empty_like(grad_y)
        rest = grad_y.shape[dim] - n_full
        if rest:
            grad_x.narrow(dim, n_full, rest).copy_(grad_y.narrow(dim, n_full, rest))
        # Sums of half values drift: reduce those in float32 (torch's CPU sum is a cascade
        # sum, accurate for float32), and add the per-step results up in float64.
        acc = torch.float32 if grad_y.dtype in (torch.float16, torch.bfloat16) else grad_y.dtype
        d_tau = torch.zeros((), dtype=torch.float64, device=grad_y.device)
        d_vth = torch.zeros((), dtype=torch.float64, device=grad_y.device)
        if n_full:
            gs, us, dxs = _grouped(grad_y, dim, lif), _grouped(u_all, dim, lif), _grouped(grad_x, dim, lif)
            step = dim + 1
            adj = None  # a_{j+1} = dL/du_{j+1}
            for j in reversed(range(lif)):
                g_j, u_j, dx_j = gs.select(step, j), us.select(step, j), dxs.select(step, j)
                spike = torch.sub(u_j, vth_f).clamp_min_(0).sign_()
                g_spiking = g_j * spike
                d_vth += g_j.sum(dtype=acc) - g_spiking.sum(dtype=acc)
                if adj is None:
                    dx_j.copy_(g_spiking)
                else:
                    # o_{j+1} = u_j * (1 - s_j) feeds u_{j+1}: dtau += a_{j+1} * o_{j+1}
                    a_u = adj * u_j
                    d_tau += a_u.sum(dtype=acc) - (a_u * spike).sum(dtype=acc)
                    # a_j = s*g + (1 - s)*tau*a_{j+1}
                    carried = adj.mul_(tau_f)
                    torch.add(carried, g_spiking - carried * spike, out=dx_j)
                adj = dx_j.clone() if j else None
        d_tau = d_tau.to(tau.dtype).reshape(tau.shape)
        d_vth = d_vth.to(vth.dtype).reshape(vth.shape)
        return grad_x, d_tau, d_vth, None, None


def olif_torch(x: torch.Tensor, tau: Number, vth: Number, lif: int = 4, dim: int = 2) -> torch.Tensor:
    """OLIF on the portable torch path (CPU or GPU)."""
    _check(x, lif, dim)
    return _OLIFTorch.apply(x, _as_param(tau, x), _as_param(vth, x), int(lif), int(dim))


def _check(x: torch.Tensor, lif: int, dim: int) -> None:
    if x.dim() != 4:
        raise ValueError(f"OLIF expects an N,C,H,W tensor, got shape {tuple(x.shape)}")
    if dim not in (2, 3):
        raise ValueError(f"OLIF dim must be 2 (along H) or 3 (along W), got {dim}")
    if int(lif) < 1:
        raise ValueError(f"OLIF lif (group length) must be >= 1, got {lif}")


def olif(x: torch.Tensor, tau: Number, vth: Number, lif: int = 4, dim: int = 2,
         backend: str = "auto") -> torch.Tensor:
    """Functional orthogonal LIF on an ``N,C,H,W`` tensor; see the module docstring.

    ``backend='auto'`` uses the CuPy kernels for CUDA tensors when cupy is usable, the
    C++ kernels (``cpu_kernels.py``) for float32/float64 CPU tensors when they could be
    built, and the torch path otherwise; ``'torch'``, ``'cupy'`` and ``'cpp'`` force one.
    """
    _check(x, lif, dim)
    if backend not in BACKENDS:
        raise ValueError(f"unknown OLIF backend {backend!r}; choose one of {BACKENDS}")
    tau, vth, lif, dim = _as_param(tau, x), _as_param(vth, x), int(lif), int(dim)
    if backend == "cupy" and not x.is_cuda:
        raise RuntimeError("OLIF backend 'cupy' needs a CUDA tensor; use backend='torch' on CPU")
    chosen = resolve_backend(backend, x)
    if chosen == "cupy":
        from .cupy_kernels import olif_cupy

        return olif_cupy(x, tau, vth, lif, dim)
    if chosen == "cpp":
        from .cpu_kernels import olif_cpp

        return olif_cpp(x, tau, vth, lif, dim)
    return _OLIFTorch.apply(x, tau, vth, lif, dim)


class OLIF(nn.Module):
    """Orthogonal LIF layer with learnable one-element ``tau`` and ``Vth``.

    Parameter names (``tau``, ``Vth``) follow the DehazeSNN release so that its
    checkpoints load with ``strict=True``. ``lif=-1`` makes the layer the identity, as
    there. ``fix_tau`` / ``fix_vth`` keep the value as a constant instead of a parameter.
    """

    def __init__(self, lif: int = 4, dim: int = 2, init_tau: float = 0.25, init_vth: float = 0.25,
                 fix_tau: bool = False, fix_vth: bool = False, backend: str = "auto"):
        super().__init__()
        if dim not in (2, 3):
            raise ValueError(f"OLIF dim must be 2 (along H) or 3 (along W), got {dim}")
        self.lif, self.dim = int(lif), int(dim)
        self.requested_backend = backend
        if fix_tau:
            self.register_buffer("tau", torch.tensor([float(init_tau)]), persistent=False)
        else:
            self.tau = nn.Parameter(torch.tensor([float(init_tau)]))
        if fix_vth:
            self.register_buffer("Vth", torch.tensor([float(init_vth)]), persistent=False)
        else:
            self.Vth = nn.Parameter(torch.tensor([float(init_vth)]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lif == -1:
            return x
        return olif(x, self.tau, self.Vth, self.lif, self.dim, backend=self.requested_backend)

    def extra_repr(self) -> str:
        return f"lif={self.lif}, dim={self.dim}, backend={self.requested_backend}"
