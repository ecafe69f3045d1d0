"""CuPy RawKernels for the orthogonal LIF (forward and backward) on CUDA.

One thread walks one group of ``lif`` pixels along the chosen axis, so the recurrence
stays in registers and every element is read and written once. The tensor is seen as
(outer, axis, inner): for ``dim=2`` outer = N*C, axis = H, inner = W; for ``dim=3``
outer = N*C*H, axis = W, inner = 1. Only full groups go to the kernel; the trailing
remainder (identity) is copied by torch.

The kernels compute in float for float32 and in double for float64; float16 and
bfloat16 inputs are computed in float32 and cast back (the recurrence is short, and
one code path is easier to trust than three). The backward writes one partial sum of
dL/dtau and dL/dvth per thread, summed by torch: deterministic, no atomics.

The kernel text is plain C++ with a grid-stride loop over the thread range
[t_begin, t_end), so the same source also compiles for the CPU (``host_kernels.py``,
where each OpenMP thread takes one contiguous chunk of the range), and
``tests/test_olif.py`` checks it against the torch path on machines without a GPU.
"""
from __future__ import annotations

import functools
from string import Template

import numpy as np
import torch

KERNEL_TEMPLATE = Template(r"""
extern "C" __global__ void olif_forward_${T}(
    const ${T}* __restrict__ x, const ${T}* __restrict__ tau_p, const ${T}* __restrict__ vth_p,
    ${T}* __restrict__ y, ${T}* __restrict__ u_out, unsigned char* __restrict__ spike_out,
    const long long t_begin, const long long t_end, const int lif, const long long groups,
    const long long axis_len, const long long inner, const int save_for_backward)
{
    const ${T} tau = tau_p[0];
    const ${T} vth = vth_p[0];
    for (long long t = t_begin + (long long)blockIdx.x * blockDim.x + threadIdx.x; t < t_end;
         t += (long long)blockDim.x * gridDim.x) {
        const long long i = t % inner;
        const long long g = (t / inner) % groups;
        const long long o = t / inner / groups;
        const long long base = (o * axis_len + g * lif) * inner + i;
        ${T} carried = 0;  // o_j: potential carried from the previous step of the group
        for (int j = 0; j < lif; ++j) {
            const long long k = base + (long long)j * inner;
            const ${T} u = tau * carried + x[k];
            const bool s = u > vth;
            y[k] = s ? u : vth;
            if (save_for_backward) {
                u_out[k] = u;
                spike_out[k] = s ? 1 : 0;
            }
            carried = s ? (${T})0 : u;
        }
    }
}

extern "C" __global__ void olif_backward_${T}(
    const ${T}* __restrict__ grad_y, const ${T}* __restrict__ u_in,
    const unsigned char* __restrict__ spike_in, const ${T}* __restrict__ tau_p,
    ${T}* __restrict__ grad_x, ${T}* __restrict__ part_tau, ${T}* __restrict__ part_vth,
    const long long t_begin, const long long t_end, const int lif, const long long groups,
    const long long axis_len, const long long inner)
{
    const ${T} tau = tau_p[0];
    for (long long t = t_begin + (long long)blockIdx.x * blockDim.x + threadIdx.x; t < t_end;
         t += (long long)blockDim.x * gridDim.x) {
        const long long i = t % inner;
        const long long g = (t / inner) % groups;
        const long long o = t / inner / groups;
        const long long base = (o * axis_len + g * lif) * inner + i;
        ${T} adj = 0;  // a_{j+1} = dL/du_{j+1}; zero past the end of the group
        ${T} d_tau = 0, d_vth = 0;
        for (int j = lif - 1; j >= 0; --j) {
            const long long k = base + (long long)j * inner;
            const ${T} g_j = grad_y[k];
            if (spike_in[k]) {
                adj = g_j;  // o_{j+1} = 0: no tau term
            } else {
                d_tau += adj * u_in[k];  // o_{j+1} = u_j feeds u_{j+1} through tau
                d_vth += g_j;
                adj = tau * adj;
            }
            grad_x[k] = adj;
        }
        part_tau[t] = d_tau;
        part_vth[t] = d_vth;
    }
}
""")

CUDA_THREADS = 256
_CTYPES = {torch.float32: "float", torch.float64: "double"}


def kernel_source(ctype: str) -> str:
    """The CUDA C++ source of both kernels for element type ``ctype`` ('float' or 'double')."""
    return KERNEL_TEMPLATE.substitute(T=ctype)


def layout(shape, lif: int, dim: int):
    """(n_threads, groups, axis_len, inner) of the kernel launch for an N,C,H,W shape."""
    n, c, h, w = shape
    if dim == 2:
        outer, axis_len, inner = n * c, h, w
    else:
        outer, axis_len, inner = n * c * h, w, 1
    groups = axis_len // lif
    return outer * groups * inner, groups, axis_len, inner


@functools.lru_cache(maxsize=None)
def _kernels(ctype: str, device_index: int):
    import cupy

    with cupy.cuda.Device(device_index):
        module = cupy.RawModule(code=kernel_source(ctype), options=("--std=c++14",))
        return module.get_function(f"olif_forward_{ctype}"), module.get_function(f"olif_backward_{ctype}")


def _launch(kernel, n_threads: int, device_index: int, args):
    import cupy

    blocks = max(1, min((n_threads + CUDA_THREADS - 1) // CUDA_THREADS, 65535 * 8))
    stream = torch.cuda.current_stream(device_index).cuda_stream
    with cupy.cuda.Device(device_index), cupy.cuda.ExternalStream(stream):
        kernel((blocks,), (CUDA_THREADS,), args)


class KernelOLIF(torch.autograd.Function):
    """OLIF through the kernels of KERNEL_TEMPLATE; ``run`` launches them on a target.

    ``run(which, ctype, tensors, sizes, save)`` with ``which`` 'forward' or 'backward',
    ``tensors`` the kernel's pointer arguments in order and ``sizes`` (n_threads, lif,
    groups, axis_len, inner): :func:`run_cupy` on CUDA, ``host_kernels.run_host`` on CPU.
    """

    @staticmethod
    def forward(ctx, x, tau, vth, lif: int, dim: int, run):
        orig_dtype = x.dtype
        work_dtype = x.dtype if x.dtype in _CTYPES else torch.float32
        xw = x.detach().to(work_dtype).contiguous()
        tau_w, vth_w = tau.detach().to(work_dtype).contiguous(), vth.detach().to(work_dtype).contiguous()
        n_threads, groups, axis_len, inner = layout(xw.shape, lif, dim)
        full = groups * lif
        y = torch.empty_like(xw)
        if axis_len > full:
            y.narrow(dim, full, axis_len - full).copy_(xw.narrow(dim, full, axis_len - full))
        save = any(ctx.needs_input_grad[:3])
        u = torch.empty_like(xw) if save else xw  # dummies are never written when save is 0
        spikes = torch.empty(xw.shape, dtype=torch.uint8, device=xw.device) if save else y
        if n_threads:
            run("forward", _CTYPES[work_dtype], (xw, tau_w, vth_w, y, u, spikes),
                (n_threads, lif, groups, axis_len, inner), save)
        if save:
            ctx.save_for_backward(u, spikes, tau_w)
        ctx.lif, ctx.dim, ctx.run, ctx.orig_dtype = lif, dim, run, orig_dtype
        ctx.tau_dtype, ctx.vth_dtype = tau.dtype, vth.dtype
        return y.to(orig_dtype)

    @staticmethod
    def backward(ctx, grad_y):
        u, spikes, tau_w = ctx.saved_tensors
        lif, dim = ctx.lif, ctx.dim
        g = grad_y.to(u.dtype).contiguous()
        n_threads, groups, axis_len, inner = layout(u.shape, lif, dim)
        full = groups * lif
        grad_x = torch.empty_like(g)
        if axis_len > full:
            grad_x.narrow(dim, full, axis_len - full).copy_(g.narrow(dim, full, axis_len - full))
        part_tau = torch.zeros(max(n_threads, 1), dtype=u.dtype, device=u.device)
        part_vth = torch.zeros_like(part_tau)
        if n_threads:
            ctx.run("backward", _CTYPES[u.dtype], (g, u, spikes, tau_w, grad_x, part_tau, part_vth),
                    (n_threads, lif, groups, axis_len, inner), False)
        d_tau = part_tau.sum(dtype=torch.float64).reshape(1).to(ctx.tau_dtype)
        d_vth = part_vth.sum(dtype=torch.float64).reshape(1).to(ctx.vth_dtype)
        return grad_x.to(ctx.orig_dtype), d_tau, d_vth, None, None, None


def run_cupy(which: str, ctype: str, tensors, sizes, save: bool) -> None:
    n_threads, lif, groups, axis_len, inner = sizes
    device_index = tensors[0].device.index
    forward, backward = _kernels(ctype, device_index)
    args = [t.data_ptr() for t in tensors] + [np.int64(0), np.int64(n_threads), np.int32(lif), np.int64(groups),
                                              np.int64(axis_len), np.int64(inner)]
    if which == "forward":
        args.append(np.int32(1 if save else 0))
    _launch(forward if which == "forward" else backward, n_threads, device_index, tuple(args))


def olif_cupy(x: torch.Tensor, tau: torch.Tensor, vth: torch.Tensor, lif: int, dim: int) -> torch.Tensor:
    """OLIF on CUDA through the CuPy kernels (``x`` N,C,H,W on a CUDA device)."""
    if not x.is_cuda:
        raise RuntimeError("olif_cupy needs a CUDA tensor; use olif(..., backend='torch') on CPU")
    return KernelOLIF.apply(x, tau, vth, lif, dim, run_cupy)
