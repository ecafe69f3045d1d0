"""The fast CPU path of the spiking core: one-pass C++ kernels for OLIF and the multi-step LIF/PLIF.

The C++ source is ``cpu_kernels.cpp`` next to this file; it is compiled on first use with
the system C++ compiler (``host_kernels.compile_library``: cached per source, flags and
CPU in ``~/.cache/snn-restoration/kernels``, written atomically, announced on stderr while
it builds) and loaded through ctypes. ``tools/setup_env.sh`` builds it ahead of time
(``python -m restoration.spiking.cpu_kernels``).

* :class:`OLIFFunction`: the forward reads x and writes y; the backward reads x and the
  incoming gradient, recomputes u per group and writes dx (nothing else is saved).
  The forward equals ``olif._OLIFTorch`` bit for bit; the gradients follow the same rules
  (summation order differs: per-lane partial sums, added in float64).
* :class:`MultiStepLIFFunction`: SpikingJelly's multi-step LIF/PLIF with hard or soft
  reset, ``decay_input`` on or off, ``detach_reset``, ATan or Sigmoid surrogate. The
  charge is written with SpikingJelly's own operations in its own order, so spikes and
  the final membrane potential are bit-identical to its torch backend; gradients are
  equal up to rounding.

float32 and float64 only (other dtypes stay on the torch path). Where no compiler is
found or the build fails, :func:`available` is False, one warning says so, and the
callers (``backend.resolve_backend``) fall back to the torch paths.
``SNN_RESTORATION_NO_HOST_KERNELS=1`` disables it (and the test build of ``host_kernels``).
"""
from __future__ import annotations

import ctypes
import functools
import os
import warnings
from pathlib import Path
from typing import Optional

import torch

from . import host_kernels

SOURCE_PATH = Path(__file__).with_name("cpu_kernels.cpp")
# -ffp-contract=off: no fused multiply-add, so that each value is rounded as torch rounds it.
FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-pthread", "-std=c++14"]
DTYPES = {torch.float32: "float", torch.float64: "double"}


def build(out_dir: Optional[Path] = None) -> Path:
    """Compile the kernels unless cached; return the library path (raises on failure)."""
    return host_kernels.compile_library(
        "snn_cpu_kernels", SOURCE_PATH.read_text(), FLAGS, out_dir,
        announce="building the CPU spiking kernels (OLIF, multi-step LIF) once with the C++ "
                 "compiler; this takes about a minute on 2 cores")


def _declare(lib: ctypes.CDLL) -> ctypes.CDLL:
    P, L, I, D = ctypes.c_void_p, ctypes.c_longlong, ctypes.c_int, ctypes.c_double
    for t in DTYPES.values():
        getattr(lib, f"snn_olif_forward_{t}").argtypes = [P, P, L, L, L, I, I, D, D, I]
        getattr(lib, f"snn_olif_backward_{t}").argtypes = [P, P, P, P, P, L, L, L, I, I, D, D, I]
        getattr(lib, f"snn_lif_forward_{t}").argtypes = [P, P, P, P, L, L, I, I, I, D, D, D, D, D, I]
        getattr(lib, f"snn_lif_backward_{t}").argtypes = [P, P, P, P, P, P, P, L, L, I, I, I, D, D, D, D, D,
                                                          I, D, I, D, D, I]
        for name in ("lif_forward", "lif_backward"):
            getattr(lib, f"snn_{name}_{t}").restype = I
    return lib


@functools.lru_cache(maxsize=None)
def _library() -> Optional[ctypes.CDLL]:
    if os.environ.get("SNN_RESTORATION_NO_HOST_KERNELS"):
        return None
    try:
        return _declare(ctypes.CDLL(str(build())))
    except Exception as e:  # noqa: BLE001 - reported once; callers use the torch path
        warnings.warn(f"the fast CPU spiking kernels are unavailable ({e}); OLIF and LIF use the slower "
                      "torch path. Install g++ (or set CXX) to build them.", RuntimeWarning, stacklevel=4)
        return None


def available() -> bool:
    """True when the kernels are built (building them now if needed) and loaded."""
    return _library() is not None


def _ptr(t: Optional[torch.Tensor]):
    return None if t is None else ctypes.c_void_p(t.data_ptr())


# ---- OLIF --------------------------------------------------------------------------------

def _olif_layout(shape, dim: int):
    n, c, h, w = shape
    return (n * c, h, w) if dim == 2 else (n * c * h, w, 1)


class OLIFFunction(torch.autograd.Function):
    """OLIF on CPU through ``snn_olif_*``; ``x`` float32/float64, N,C,H,W; see olif.py for the rules."""

    @staticmethod
    def forward(ctx, x, tau, vth, lif: int, dim: int):
        x = x.contiguous()
        tau_f, vth_f = float(tau), float(vth)
        y = torch.empty_like(x)
        outer, axis_len, inner = _olif_layout(x.shape, dim)
        threads = torch.get_num_threads()
        if x.numel():
            getattr(_library(), f"snn_olif_forward_{DTYPES[x.dtype]}")(
                _ptr(x), _ptr(y), outer, axis_len, inner, lif, dim, tau_f, vth_f, threads)
        if any(ctx.needs_input_grad[:3]):
            ctx.save_for_backward(x, tau, vth)
        ctx.lif, ctx.dim, ctx.tau_f, ctx.vth_f = lif, dim, tau_f, vth_f
        return y

    @staticmethod
    def backward(ctx, grad_y):
        x, tau, vth = ctx.saved_tensors
        g = grad_y.to(x.dtype).contiguous()
        dx = torch.empty_like(x)
        threads = torch.get_num_threads()
        part_tau = torch.zeros(threads, dtype=torch.float64)
        part_vth = torch.zeros(threads, dtype=torch.float64)
        outer, axis_len, inner = _olif_layout(x.shape, ctx.dim)
        if x.numel():
            getattr(_library(), f"snn_olif_backward_{DTYPES[x.dtype]}")(
                _ptr(x), _ptr(g), _ptr(dx), _ptr(part_tau), _ptr(part_vth), outer, axis_len, inner, ctx.lif,
                ctx.dim, ctx.tau_f, ctx.vth_f, threads)
        d_tau = part_tau.sum().to(tau.dtype).reshape(tau.shape)
        d_vth = part_vth.sum().to(vth.dtype).reshape(vth.shape)
        return dx, d_tau, d_vth, None, None


def olif_cpp(x: torch.Tensor, tau: torch.Tensor, vth: torch.Tensor, lif: int, dim: int) -> torch.Tensor:
    """OLIF through the C++ kernels (``x`` a float32/float64 CPU tensor; check :func:`available`)."""
    if x.device.type != "cpu" or x.dtype not in DTYPES:
        raise RuntimeError(f"the C++ OLIF path needs a float32/float64 CPU tensor, got {x.dtype} on {x.device}")
    return OLIFFunction.apply(x, tau, vth, lif, dim)


# ---- multi-step LIF / PLIF ---------------------------------------------------------------

def surrogate_code(fn) -> Optional[int]:
    """0 (ATan) or 1 (Sigmoid) for SpikingJelly's spiking surrogates of those classes, else None."""
    from spikingjelly.activation_based import surrogate

    if type(fn) is surrogate.ATan and fn.spiking:
        return 0
    if type(fn) is surrogate.Sigmoid and fn.spiking:
        return 1
    return None


class MultiStepLIFFunction(torch.autograd.Function):
    """Multi-step LIF/PLIF over ``x_seq`` (T, M...): returns (spikes, v_final).

    ``v_init`` is a tensor of one step's shape or None (then ``v_init_s`` everywhere);
    ``k`` the PLIF factor ``w.sigmoid()`` (a tensor, differentiable) or None for LIF
    (then ``tau`` divides). ``kind`` selects SpikingJelly's charge formula (see the .cpp).
    """

    @staticmethod
    def forward(ctx, x_seq, v_init, k, v_init_s: float, tau: float, kind: int, hard: bool, v_reset: float,
                v_th: float, decay_input: bool, surrogate: int, alpha: float, detach_reset: bool):
        x = x_seq.contiguous()
        steps = x.shape[0]
        lanes = x[0].numel() if steps else 0
        dtype = DTYPES[x.dtype]
        if k is None:  # LIF: divide by tau; kind 2's factor as SpikingJelly computes it (in double)
            c, c2, mul = float(tau), 1.0 - 1.0 / float(tau), 0
            dhdv, dhdx = 1.0 - 1.0 / float(tau), (1.0 / float(tau) if decay_input else 1.0)
        else:  # PLIF: multiply by k; 1 - k computed by torch in k's dtype, as SpikingJelly does
            c, c2, mul = float(k), float(1.0 - k.detach()), 1
            dhdv, dhdx = c2, (c if decay_input else 1.0)
        v0 = v_init.contiguous() if v_init is not None else None
        spikes = torch.empty_like(x)
        v_final = torch.empty_like(x[0])  # supports() keeps T = 0 on the torch path
        if steps and lanes:
            rc = getattr(_library(), f"snn_lif_forward_{dtype}")(
                _ptr(x), _ptr(v0), _ptr(spikes), _ptr(v_final), steps, lanes, kind, mul, int(hard), c, c2,
                float(v_reset), float(v_th), float(v_init_s), torch.get_num_threads())
            if rc:
                raise RuntimeError(f"snn_lif_forward: bad charge kind {kind}")
        ctx.save_for_backward(x, v0, k)
        ctx.args = (steps, lanes, kind, mul, int(hard), c, c2, float(v_reset), float(v_th), float(v_init_s),
                    surrogate, float(alpha), int(detach_reset), dhdx, dhdv)
        ctx.has_v0, ctx.has_k = v0 is not None, k is not None
        ctx.set_materialize_grads(False)
        return spikes, v_final

    @staticmethod
    def backward(ctx, grad_spikes, grad_v_final):
        x, v0, k = ctx.saved_tensors
        (steps, lanes, kind, mul, hard, c, c2, v_reset, v_th, v_init_s, surrogate, alpha, detach, dhdx,
         dhdv) = ctx.args
        if grad_spikes is None and grad_v_final is None:
            return (None,) * 13
        gs = torch.zeros_like(x) if grad_spikes is None else grad_spikes.to(x.dtype).contiguous()
        gv = None if grad_v_final is None else grad_v_final.to(x.dtype).contiguous()
        dx = torch.empty_like(x)
        want_v0 = ctx.has_v0 and ctx.needs_input_grad[1]
        dv0 = torch.empty_like(x[0]) if want_v0 else None
        threads = torch.get_num_threads()
        want_k = ctx.has_k and ctx.needs_input_grad[2]
        part_k = torch.zeros(threads, dtype=torch.float64) if want_k else None
        if steps and lanes:
            rc = getattr(_library(), f"snn_lif_backward_{DTYPES[x.dtype]}")(
                _ptr(x), _ptr(v0), _ptr(gs), _ptr(gv), _ptr(dx), _ptr(dv0), _ptr(part_k), steps, lanes, kind,
                mul, hard, c, c2, v_reset, v_th, v_init_s, surrogate, alpha, detach, dhdx, dhdv, threads)
            if rc:
                raise RuntimeError(f"snn_lif_backward: bad charge kind {kind}")
        elif want_v0:
            dv0 = torch.zeros_like(x[0]) if gv is None else gv.clone()
        dk = part_k.sum().to(k.dtype).reshape(k.shape) if want_k else None
        return (dx, dv0, dk) + (None,) * 10


def charge_kind(training: bool, decay_input: bool, v_reset: Optional[float], plif: bool) -> int:
    """Which of SpikingJelly's charge formulas its torch backend runs (see cpu_kernels.cpp).

    Training (and PLIF always) steps ``single_step_forward``: ``neuronal_charge`` picks the
    "reset0" formula when ``v_reset`` is None or 0. LIF in eval mode runs the jit-scripted
    multi-step functions, which write the hard-reset charge with ``v_reset`` even when it is 0.
    """
    reset0 = v_reset is None or v_reset == 0.0
    if not training and not plif and v_reset is not None:
        reset0 = False
    if decay_input:
        return 0 if reset0 else 1
    return 2 if reset0 else 3


def lif_multistep(node, x_seq: torch.Tensor) -> torch.Tensor:
    """Run a SpikingJelly LIFNode / ParametricLIFNode (step_mode 'm') on ``x_seq`` through the
    kernels, updating ``node.v`` as SpikingJelly does; call :func:`supports` first."""
    from spikingjelly.activation_based import neuron

    plif = isinstance(node, neuron.ParametricLIFNode)
    v = node.v
    v_init = v if isinstance(v, torch.Tensor) else None
    # PLIF: k stays in w's dtype, as SpikingJelly computes k and 1 - k before promoting
    k = node.w.sigmoid() if plif else None
    surr = node.surrogate_function
    spikes, v_final = MultiStepLIFFunction.apply(
        x_seq, v_init, k, float(v) if v_init is None else 0.0, float(getattr(node, "tau", 2.0)),
        charge_kind(node.training, node.decay_input, node.v_reset, plif), node.v_reset is not None,
        0.0 if node.v_reset is None else float(node.v_reset), float(node.v_threshold), bool(node.decay_input),
        surrogate_code(surr), float(surr.alpha), bool(node.detach_reset))
    node.v = v_final
    return spikes


def supports(node, x_seq: torch.Tensor) -> bool:
    """True when the kernels cover this neuron and input exactly (else use the torch path)."""
    from spikingjelly.activation_based import neuron

    if type(node.v_threshold) not in (float, int) or (node.v_reset is not None
                                                       and type(node.v_reset) not in (float, int)):
        return False
    if isinstance(node, neuron.ParametricLIFNode):
        if node.w.numel() != 1:
            return False
    elif not isinstance(node, neuron.LIFNode) or type(node.tau) not in (float, int):
        return False
    if getattr(node, "store_v_seq", False) or surrogate_code(node.surrogate_function) is None:
        return False
    if x_seq.device.type != "cpu" or x_seq.dtype not in DTYPES or x_seq.dim() < 2 or x_seq.shape[0] == 0:
        return False
    v = node.v
    if isinstance(v, torch.Tensor) and (v.shape != x_seq.shape[1:] or v.dtype != x_seq.dtype
                                        or v.device != x_seq.device):
        return False
    return True


if __name__ == "__main__":  # tools/setup_env.sh: build ahead of time
    import sys

    try:
        print(f"[snn-restoration] CPU spiking kernels ready: {build()}")
    except RuntimeError as e:
        print(f"[snn-restoration] CPU spiking kernels not built ({e}); the torch path will be used",
              file=sys.stderr)
    sys.exit(0)
