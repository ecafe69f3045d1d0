"""How the C++ CPU kernels are built: announced, cached, and a clean fallback without a compiler."""
import warnings

import pytest
import torch

from restoration.spiking import LIF, cpu_kernels, host_kernels, olif, olif_torch, resolve_backend


def test_build_is_announced_once_then_cached(tmp_path, capsys):
    if host_kernels.find_compiler() is None:
        pytest.skip("no C++ compiler")
    src = 'extern "C" int answer() { return 42; }\n'
    lib = host_kernels.compile_library("probe", src, ["-O1"], tmp_path, announce="building the probe")
    err = capsys.readouterr().err
    assert "building the probe" in err and "built in" in err
    assert lib.exists() and [p.name for p in tmp_path.iterdir()] == [lib.name]  # no temporary left behind
    again = host_kernels.compile_library("probe", src, ["-O1"], tmp_path, announce="building the probe")
    assert again == lib and capsys.readouterr().err == ""  # cached: silent
    other = host_kernels.compile_library("probe", src, ["-O2"], tmp_path)
    assert other != lib  # the flags are part of the cache key


@pytest.fixture
def no_compiler(monkeypatch, tmp_path):
    """A machine without a C++ compiler and with an empty kernel cache."""
    monkeypatch.setenv("SNN_RESTORATION_CACHE", str(tmp_path))
    monkeypatch.delenv("SNN_RESTORATION_NO_HOST_KERNELS", raising=False)
    monkeypatch.setattr(host_kernels, "find_compiler", lambda: None)
    cpu_kernels._library.cache_clear()
    yield
    cpu_kernels._library.cache_clear()  # the next user loads the real build again


def test_without_a_compiler_everything_falls_back_with_one_warning(no_compiler):
    x = torch.randn(2, 3, 8, 9)
    x_seq = torch.rand(4, 2, 3, 5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_backend("auto", x) == "torch"
        y1 = olif(x, 0.25, 0.25, 4, 3)
        y2 = olif(x, 0.25, 0.25, 4, 2)
        s = LIF()(x_seq)
    ours = [w for w in caught if "fast CPU spiking kernels are unavailable" in str(w.message)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert "no C++ compiler found" in str(ours[0].message)
    assert torch.equal(y1, olif_torch(x, 0.25, 0.25, 4, 3)) and torch.equal(y2, olif_torch(x, 0.25, 0.25, 4, 2))
    assert s.shape == x_seq.shape
    with pytest.raises(RuntimeError, match="backend 'cpp' was requested but the C\\+\\+ kernels could not be built"):
        olif(x, 0.25, 0.25, 4, 2, backend="cpp")


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("SNN_RESTORATION_NO_HOST_KERNELS", "1")
    cpu_kernels._library.cache_clear()
    try:
        assert resolve_backend("auto", torch.zeros(1)) == "torch"
    finally:
        monkeypatch.delenv("SNN_RESTORATION_NO_HOST_KERNELS")
        cpu_kernels._library.cache_clear()
