"""OLIF: the fast paths against a per-element loop written straight from the definition."""
import pytest
import torch

from restoration.spiking import OLIF, olif, olif_torch
from restoration.spiking.neurons import cupy_available


def olif_loop(x, tau, vth, lif, dim):
    """Per-element reference: forward by the definition, gradients by the kernel's rules.

    Returns y and (dx, dtau, dvth) for the loss sum(y * g) with g passed as ``x.grad_out``.
    """
    g_out = x.grad_out
    N, C, H, W = x.shape
    L = H if dim == 2 else W
    full = (L // lif) * lif
    y = torch.zeros_like(x)
    dx = torch.zeros_like(x)
    dtau, dvth = 0.0, 0.0
    for n in range(N):
        for c in range(C):
            for line in range(W if dim == 2 else H):
                def at(k):
                    return (n, c, k, line) if dim == 2 else (n, c, line, k)
                for k in range(full, L):  # remainder: identity
                    y[at(k)] = x[at(k)]
                    dx[at(k)] = g_out[at(k)]
                for start in range(0, full, lif):
                    o, us, os_, ss = 0.0, [], [], []
                    for j in range(lif):
                        xj = float(x[at(start + j)])
                        u = tau * o + xj
                        s = u > vth
                        y[at(start + j)] = u if s else vth
                        us.append(u), os_.append(o), ss.append(s)
                        o = 0.0 if s else u
                    # backward: du_j/dtau by forward recursion, dx by the adjoint chain
                    d_u_dtau = 0.0
                    for j in range(lif):
                        if j > 0:
                            d_u_dtau = os_[j] + tau * (0.0 if ss[j - 1] else d_u_dtau)
                        g = float(g_out[at(start + j)])
                        if ss[j]:
                            dtau += g * d_u_dtau
                        else:
                            dvth += g
                    a = 0.0
                    for j in reversed(range(lif)):
                        g = float(g_out[at(start + j)])
                        a = g if ss[j] else tau * a
                        dx[at(start + j)] = a
    return y, dx, dtau, dvth


SHAPES = [(2, 3, 8, 8), (1, 2, 9, 11), (2, 1, 5, 13), (1, 1, 3, 2)]


@pytest.mark.parametrize("lif", [1, 2, 4, 7])
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("shape", SHAPES)
def test_torch_path_matches_loop(lif, dim, shape):
    gen = torch.Generator().manual_seed(hash((lif, dim, shape)) % 2**31)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 0.5
    g_out = torch.randn(shape, generator=gen, dtype=torch.float64)
    tau_v, vth_v = 0.7, 0.1
    x.grad_out = g_out
    y_ref, dx_ref, dtau_ref, dvth_ref = olif_loop(x, tau_v, vth_v, lif, dim)

    xx = x.clone().requires_grad_(True)
    tau = torch.tensor([tau_v], dtype=torch.float64, requires_grad=True)
    vth = torch.tensor([vth_v], dtype=torch.float64, requires_grad=True)
    y = olif_torch(xx, tau, vth, lif, dim)
    (y * g_out).sum().backward()
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(xx.grad, dx_ref)
    torch.testing.assert_close(tau.grad.item(), dtau_ref, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(vth.grad.item(), dvth_ref, rtol=1e-9, atol=1e-9)


def _away_from_threshold(shape, vth, lif, dim, seed=0):
    """Inputs for which no membrane potential lies within 0.05 of vth (for gradcheck)."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(200):
        x = torch.randn(shape, generator=gen, dtype=torch.float64)
        y = olif_torch(x, 0.4, vth, lif, dim)
        # y is u where spiking and vth elsewhere; recompute u to check the margin
        u = _membrane(x, 0.4, lif, dim, vth)
        if ((u - vth).abs() > 0.05).all():
            return x
        del y
    raise RuntimeError("could not draw inputs away from the threshold")


def _membrane(x, tau, lif, dim, vth):
    L = x.shape[dim]
    u_all = x.clone()
    full = (L // lif) * lif
    for start in range(0, full, lif):
        o = torch.zeros_like(x.select(dim, 0))
        for j in range(lif):
            u = tau * o + x.select(dim, start + j)
            u_all.select(dim, start + j).copy_(u)
            o = torch.where(u > vth, torch.zeros_like(u), u)
    # the remainder has no threshold test: move it out of the way
    if full < L:
        u_all.narrow(dim, full, L - full).fill_(vth + 1)
    return u_all


@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("lif", [1, 3, 4])
def test_gradcheck(dim, lif, fn=None):
    """float64 gradcheck of the torch path (``fn``: another path, e.g. the C++ one)."""
    fn = fn or (lambda a, b, c: olif_torch(a, b, c, lif, dim))
    x = _away_from_threshold((1, 2, 7, 6), 0.3, lif, dim, seed=lif * 10 + dim).requires_grad_(True)
    tau = torch.tensor([0.4], dtype=torch.float64, requires_grad=True)
    vth = torch.tensor([0.3], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (x, tau, vth), eps=1e-6, atol=1e-6)


def test_half_precision_close_to_float():
    x = torch.randn(2, 4, 16, 12)
    for dtype in (torch.bfloat16, torch.float16):
        y32 = olif_torch(x, 0.25, 0.25, 4, 3)
        y16 = olif_torch(x.to(dtype), 0.25, 0.25, 4, 3)
        assert y16.dtype == dtype
        # spikes may flip for values within rounding of the threshold: compare most positions
        close = (y16.float() - y32).abs() < 2e-2
        assert close.float().mean() > 0.99


def test_module_parameters_and_identity():
    m = OLIF(lif=4, dim=3, init_tau=0.3, init_vth=0.2)
    assert sorted(n for n, _ in m.named_parameters()) == ["Vth", "tau"]
    assert m.tau.item() == pytest.approx(0.3) and m.Vth.item() == pytest.approx(0.2)
    fixed = OLIF(fix_tau=True, fix_vth=True)
    assert list(fixed.parameters()) == [] and list(fixed.state_dict()) == []
    x = torch.randn(1, 2, 8, 8)
    assert torch.equal(OLIF(lif=-1)(x), x)
    x.requires_grad_(True)
    m(x).sum().backward()
    assert m.tau.grad is not None and m.Vth.grad is not None and x.grad.shape == x.shape


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="N,C,H,W"):
        olif(torch.zeros(2, 3, 4), 0.2, 0.2, 4, 2)
    with pytest.raises(ValueError, match="dim must be 2"):
        olif(torch.zeros(1, 1, 4, 4), 0.2, 0.2, 4, 1)
    with pytest.raises(ValueError, match="one-element"):
        olif(torch.zeros(1, 1, 4, 4), torch.ones(2), 0.2, 4, 2)
    with pytest.raises(RuntimeError, match="CUDA tensor"):
        olif(torch.zeros(1, 1, 4, 4), 0.2, 0.2, 4, 2, backend="cupy")


cuda = pytest.mark.skipif(not (torch.cuda.is_available() and cupy_available()),
                          reason="needs CUDA and cupy")


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("lif", [1, 2, 4, 7])
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("shape", [(2, 3, 33, 17), (1, 5, 8, 64), (3, 2, 13, 6)])
def test_cupy_matches_torch(lif, dim, shape):
    gen = torch.Generator().manual_seed(lif * 100 + dim)
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 0.5).cuda()
    g_out = torch.randn(shape, generator=gen, dtype=torch.float64).cuda()
    outs = {}
    for backend in ("torch", "cupy"):
        xx = x.clone().requires_grad_(True)
        tau = torch.tensor([0.6], dtype=torch.float64, device="cuda", requires_grad=True)
        vth = torch.tensor([0.2], dtype=torch.float64, device="cuda", requires_grad=True)
        y = olif(xx, tau, vth, lif, dim, backend=backend)
        (y * g_out).sum().backward()
        outs[backend] = (y, xx.grad, tau.grad, vth.grad)
    for a, b in zip(outs["torch"], outs["cupy"]):
        torch.testing.assert_close(a, b)


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_cupy_dtypes_close_to_torch(dtype):
    x = torch.randn(2, 8, 31, 29, device="cuda")
    for dim in (2, 3):
        ref = olif(x, 0.25, 0.25, 4, dim, backend="torch")
        got = olif(x.to(dtype), 0.25, 0.25, 4, dim, backend="cupy")
        assert got.dtype == dtype
        close = (got.float() - ref).abs() < (1e-6 if dtype == torch.float32 else 2e-2)
        assert close.float().mean() > (0.99999 if dtype == torch.float32 else 0.99)


# --- The CuPy kernel source, checked without a GPU ------------------------------------
# The kernels are plain C++ with a grid-stride loop. host_kernels compiles the very same
# source for the CPU (OpenMP threads in place of CUDA blocks): comparing it with the
# torch path checks the kernel logic on any machine with a C++ compiler.

import shutil  # noqa: E402
import subprocess  # noqa: E402

from restoration.spiking import cupy_kernels, host_kernels  # noqa: E402


@pytest.fixture(scope="module")
def host_build(tmp_path_factory):
    if not (shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")):
        pytest.skip("no host C++ compiler")
    # build into a fresh directory, so the test compiles the current source
    return host_kernels.build(tmp_path_factory.mktemp("olif_host"))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("lif", [1, 2, 4, 7])
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("shape", [(2, 3, 9, 11), (1, 2, 16, 5), (1, 1, 3, 3)])
def test_kernel_source_matches_torch_on_host(host_build, monkeypatch, threads, lif, dim, shape):
    import ctypes

    monkeypatch.setattr(host_kernels, "_library", lambda: ctypes.CDLL(str(host_build)))
    gen = torch.Generator().manual_seed(lif * 7 + dim)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    g = torch.randn(shape, generator=gen, dtype=torch.float64)
    grads = {}
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for name, fn in (("torch", olif_torch), ("host", host_kernels.olif_host)):
            xx = x.clone().requires_grad_(True)
            tau = torch.tensor([0.6], dtype=torch.float64, requires_grad=True)
            vth = torch.tensor([0.2], dtype=torch.float64, requires_grad=True)
            y = fn(xx, tau, vth, lif, dim)
            (y * g).sum().backward()
            grads[name] = (y, xx.grad, tau.grad, vth.grad)
    finally:
        torch.set_num_threads(old)
    for a, b in zip(grads["torch"], grads["host"]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def _nvcc_arches(nvcc):
    out = subprocess.run([nvcc, "--list-gpu-arch"], capture_output=True, text=True)
    return set(out.stdout.split()) if out.returncode == 0 else None


@pytest.mark.parametrize("arch", ["sm_70", "sm_80", "sm_90"])
def test_kernel_source_compiles_for_cuda(tmp_path, arch):
    """The CuPy kernels' CUDA text compiles to PTX, so a syntax or type error shows without a GPU."""
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not installed")
    arches = _nvcc_arches(nvcc)
    if arches is not None and arch.replace("sm_", "compute_") not in arches:
        pytest.skip(f"this nvcc cannot target {arch} (CUDA 13 dropped architectures below sm_75)")
    for ctype in ("float", "double"):
        src = tmp_path / f"olif_{ctype}.cu"
        src.write_text(cupy_kernels.kernel_source(ctype))
        out = subprocess.run([nvcc, f"-arch={arch}", "-ptx", "--std=c++14", "-o",
                              str(tmp_path / f"olif_{ctype}_{arch}.ptx"), str(src)],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert ".entry olif_forward_" in (tmp_path / f"olif_{ctype}_{arch}.ptx").read_text()


# --- The C++ CPU path (cpu_kernels.cpp), chosen by backend='auto' on the CPU ------------

from restoration.spiking import cpu_kernels  # noqa: E402

cpp = pytest.mark.skipif(not cpu_kernels.available(), reason="the C++ CPU kernels could not be built here")


def _run(fn, x, g, tau_v, vth_v, lif, dim):
    xx = x.clone().requires_grad_(True)
    tau = torch.tensor([tau_v], dtype=x.dtype, requires_grad=True)
    vth = torch.tensor([vth_v], dtype=x.dtype, requires_grad=True)
    y = fn(xx, tau, vth, lif, dim)
    (y * g).sum().backward()
    return y, xx.grad, tau.grad, vth.grad


def _assert_cpp_equals_torch(x, g, tau_v, vth_v, lif, dim):
    ref = _run(olif_torch, x, g, tau_v, vth_v, lif, dim)
    got = _run(lambda *a: olif(*a, backend="cpp"), x, g, tau_v, vth_v, lif, dim)
    assert torch.equal(ref[0], got[0])  # the forward is bit-identical
    # dx: equal up to the torch path's rounding of s*g + (1-s)*tau*a; the parameter gradients
    # are sums in a different order (per-lane partial sums added in float64)
    torch.testing.assert_close(got[1], ref[1])
    sums = dict(rtol=1e-4, atol=1e-4) if x.dtype == torch.float32 else dict(rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(got[2], ref[2], **sums)
    torch.testing.assert_close(got[3], ref[3], **sums)


@cpp
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("lif", [1, 2, 3, 4, 7, 8])
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("shape", [(2, 3, 9, 11), (1, 2, 16, 5), (1, 1, 3, 3), (1, 2, 37, 301)])
def test_cpp_matches_torch(dtype, lif, dim, shape):
    gen = torch.Generator().manual_seed(lif * 13 + dim)
    x = (torch.randn(shape, generator=gen, dtype=torch.float64) * 0.5).to(dtype)
    g = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
    _assert_cpp_equals_torch(x, g, 0.6, 0.2, lif, dim)


@cpp
@pytest.mark.parametrize("dim", [2, 3])
def test_cpp_threshold_boundary(dim):
    """Membrane potentials exactly at the threshold (dyadic values: every sum is exact) do not spike."""
    gen = torch.Generator().manual_seed(dim)
    values = torch.tensor([0.25, 0.125, 0.375, 0.0, -0.25])
    x = values[torch.randint(0, 5, (2, 3, 12, 10), generator=gen)]
    g = torch.randn(x.shape, generator=gen)
    for lif in (2, 4):
        _assert_cpp_equals_torch(x, g, 0.5, 0.25, lif, dim)
    # u = 0.25 = vth: silent (output vth, potential carried); u = 0.5 * 0.25 + 0.25 fires; reset; silent...
    y = olif(torch.full((1, 1, 4, 4), 0.25), 0.5, 0.25, 4, dim, backend="cpp")
    want = torch.tensor([0.25, 0.375, 0.25, 0.375])
    assert torch.equal(y[0, 0, :, 0] if dim == 2 else y[0, 0, 0], want)


@cpp
@pytest.mark.parametrize("threads", [1, 2])
def test_cpp_threads_agree(threads):
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(3, 8, 40, 36, generator=gen)
    g = torch.randn(x.shape, generator=gen)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for dim in (2, 3):
            _assert_cpp_equals_torch(x, g, 0.25, 0.25, 4, dim)
    finally:
        torch.set_num_threads(old)


@cpp
@pytest.mark.parametrize("dim", [2, 3])
@pytest.mark.parametrize("lif", [1, 3, 4])
def test_cpp_gradcheck(dim, lif):
    test_gradcheck(dim, lif, lambda a, b, c: olif(a, b, c, lif, dim, backend="cpp"))


@cpp
def test_auto_picks_cpp_on_cpu_for_float32_and_float64_only(monkeypatch):
    calls = []
    real = cpu_kernels.OLIFFunction.apply
    monkeypatch.setattr(cpu_kernels.OLIFFunction, "apply", lambda *a: calls.append(a[0].dtype) or real(*a))
    m = OLIF(lif=4, dim=3)
    for dtype in (torch.float32, torch.float64, torch.bfloat16):
        m.to(dtype)(torch.randn(1, 2, 8, 8, dtype=dtype))
    assert calls == [torch.float32, torch.float64]
