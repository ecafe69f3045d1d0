"""Synthetic data: haze model, rain, stereo rendering, determinism, round trips, cache, CLI."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from restoration.data import (DataError, PairedImageDataset, StereoDataset, add_haze, add_rain,
                              ensure_builtin_data, make_dataset, render_stereo)
from restoration.data import degradations, sources
from restoration.data import synthetic as S

REPO = Path(__file__).resolve().parents[1]
TINY = dict(train_size=32, test_size=(32, 48))  # keeps every generated set a fraction of a second


def files_bytes(root: Path) -> dict:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# -- haze model ---------------------------------------------------------------------------
def test_haze_model_properties():
    rng = np.random.default_rng(0)
    clean = rng.random((4, 50, 3)).astype(np.float32)
    depth = np.tile(np.linspace(0, 20, 50, dtype=np.float32), (4, 1))
    hazy = add_haze(clean, depth, beta=1.0, airlight=0.8)
    np.testing.assert_allclose(hazy[:, 0], clean[:, 0], atol=1e-6)  # d = 0: unchanged
    np.testing.assert_allclose(hazy[:, -1], 0.8, atol=1e-6)  # large depth: airlight
    t = degradations.transmission(depth, 1.0)
    assert np.all(np.diff(t, axis=1) < 0)  # t decreases with depth
    # the distance to the airlight shrinks exactly as t: |I - A| = t |J - A|
    np.testing.assert_allclose(np.abs(hazy - 0.8), t[..., None] * np.abs(clean - 0.8), atol=1e-5)
    # denser haze (larger beta) moves every pixel closer to A
    denser = add_haze(clean, depth, beta=2.0, airlight=0.8)
    assert np.all(np.abs(denser - 0.8) <= np.abs(hazy - 0.8) + 1e-6)


def test_haze_per_channel_airlight_and_beta_map():
    clean = np.zeros((2, 3, 3), np.float32)
    depth = np.full((2, 3), 1.0, np.float32)
    beta = np.array([[0.0, 1.0, 2.0]] * 2)
    hazy = add_haze(clean, depth, beta, airlight=[1.0, 0.5, 0.0])
    np.testing.assert_allclose(hazy[0, 0], 0.0, atol=1e-7)  # beta 0: no haze
    np.testing.assert_allclose(hazy[0, 2], (1 - np.exp(-2.0)) * np.array([1.0, 0.5, 0.0]), atol=1e-6)
    with pytest.raises(ValueError, match="depth H,W"):
        add_haze(clean, depth[:1], 1.0, 0.8)


def test_synthetic_depth_is_smooth_and_in_range():
    rng = np.random.default_rng(3)
    img = sources.clean_image(rng, 48, 64)
    d = degradations.synthetic_depth(rng, img)
    assert d.shape == (48, 64) and d.min() >= 0 and d.max() <= 1.3
    assert d.max() - d.min() > 0.4  # a real depth range, not a constant
    assert np.abs(np.diff(d, axis=0)).max() < 0.2 and np.abs(np.diff(d, axis=1)).max() < 0.2


# -- rain -------------------------------------------------------------------------------
def test_rain_only_brightens_and_heavy_is_heavier():
    light, heavy = [], []
    for i in range(6):
        rng = np.random.default_rng(i)
        clean = sources.clean_image(rng, 64, 64)
        lr = add_rain(np.random.default_rng(100 + i), clean, "light")
        assert lr.shape == clean.shape and np.all(lr >= clean - 1e-6)  # screen blend, no veil
        light.append(float((lr - clean).mean()))
        heavy.append(float((add_rain(np.random.default_rng(100 + i), clean, "heavy") - clean).mean()))
    assert min(light) > 0 and np.mean(heavy) > 2 * np.mean(light)
    with pytest.raises(DataError, match="unknown rain preset"):
        add_rain(np.random.default_rng(0), clean, "drizzle")


def test_streak_kernel_points_along_angle():
    k = degradations.streak_kernel(length=15, width=1.0, angle_deg=0)
    c = k.shape[0] // 2
    assert k[:, c].sum() > 10 * k[c, :].sum() / 3  # vertical streak: long along columns
    assert np.isclose(k.max(), 1.0)


# -- stereo ---------------------------------------------------------------------------------
def test_rendered_right_view_is_left_view_shifted_by_positive_disparity():
    for seed in range(3):
        left, right = render_stereo(np.random.default_rng(seed), 48, 64, max_disparity=0.15, max_objects=0)
        assert left.shape == right.shape == (48, 64, 3) and 0 <= left.min() and right.max() <= 1
        # right(x) ~ left(x + d) with d >= 0; look at the bottom rows, where disparity is largest
        rows = slice(36, 48)
        err = {s: float(np.abs(right[rows, : 64 - 12] - left[rows, s:s + 64 - 12]).mean()) for s in range(0, 11)}
        best = min(err, key=err.get)
        assert best >= 1 and err[best] < err[0]


# -- writing sets ------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["dehaze", "derain", "stereo_jscc"])
def test_same_seed_byte_identical_other_seed_differs(tmp_path, task):
    a = make_dataset(task, tmp_path / "a", 3, 1, seed=7, progress=False, **TINY)
    b = make_dataset(task, tmp_path / "b", 3, 1, seed=7, progress=False, **TINY)
    c = make_dataset(task, tmp_path / "c", 3, 1, seed=8, progress=False, **TINY)
    fa, fb, fc = files_bytes(a), files_bytes(b), files_bytes(c)
    assert fa == fb
    assert fa.keys() == fc.keys() and any(fa[k] != fc[k] for k in fa if k.endswith(".png"))


@pytest.mark.parametrize("task,options,layout,n_files", [
    ("dehaze", {}, "dehazesnn", 10),
    ("dehaze", {"naming": "reside", "hazy_per_clean": 2}, "reside", 15),
    ("derain", {}, "esdnet", 10),
    ("derain", {"naming": "rain200", "preset": "heavy"}, "rain100", 10),
])
def test_paired_sets_round_trip_through_reader(tmp_path, task, options, layout, n_files):
    out = make_dataset(task, tmp_path / "set", 4, 1, seed=0, progress=False, motorcycle=0, **TINY, **options)
    assert sum(1 for _ in out.rglob("*.png")) == n_files
    per_clean = options.get("hazy_per_clean", 1)
    train = PairedImageDataset(out, "train", patch_size=16, verify=True)
    assert train.layout == layout and len(train) == 4 * per_clean
    item = train[0]
    assert item["input"].shape == item["target"].shape == (3, 16, 16)
    full = PairedImageDataset(out, "train", mode="test")
    for i in range(len(full)):  # every training pair really is degraded
        assert float((full[i]["input"] - full[i]["target"]).abs().mean()) > 0.005
    test = PairedImageDataset(out, "test", mode="test", verify=True)
    assert len(test) == per_clean
    t = test[0]
    assert t["input"].shape[1] % 16 == 0 and t["input"].shape[2] % 16 == 0
    assert 32 <= t["input"].shape[1] <= 48 or t["input"].shape[2] <= 48


def test_dehaze_test_split_is_the_hazed_middlebury_scene(tmp_path):
    out = make_dataset("dehaze", tmp_path / "set", 1, 2, seed=0, progress=False, test_size=(64, 96),
                       test_source="motorcycle", beta=(0.6, 1.8))  # the earlier sampling, numbered names
    ds = PairedImageDataset(out, "test", mode="test")
    whole = ds[0]  # image 0: the whole scene with its long side = test_size max
    assert tuple(whole["target"].shape[1:]) == (64, 96)
    left = sources._motorcycle()[0]
    ref = sources._resize_u8(left, (65, 96)).astype(np.float32) / 255  # 500x741 -> 65x96, centre 64 rows
    got = whole["target"].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(got, ref[0:64], atol=1 / 255 + 1e-6)
    # haze from the true depth: the far background is hazier (closer to A) than the near bike
    _, _, depth = sources._motorcycle()
    small = sources._resize_f(depth, (65, 96))[0:64]
    hazy, clean = whole["input"].numpy().transpose(1, 2, 0), got
    far, near = small > np.percentile(small, 80), small < np.percentile(small, 20)
    change = np.abs(hazy - clean).mean(axis=2)
    assert change[far].mean() > change[near].mean()


def test_stereo_set_round_trips(tmp_path):
    out = make_dataset("stereo_jscc", tmp_path / "set", 3, 2, seed=0, progress=False, **TINY)
    train = StereoDataset(out, "train", patch_size=16, verify=True)
    assert train.layout == "leftright" and len(train) == 3
    assert train[0]["left"].shape == (3, 16, 16)
    test = StereoDataset(out, "test", mode="test", verify=True)
    assert len(test) == 2 and test[1]["left"].shape == test[1]["right"].shape


def test_make_dataset_refuses_foreign_folders_and_bad_options(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(DataError, match="already exists and is not empty"):
        make_dataset("dehaze", tmp_path / "mine", 1, 1, progress=False, **TINY)
    with pytest.raises(DataError, match="refusing to overwrite"):
        make_dataset("dehaze", tmp_path / "mine", 1, 1, progress=False, overwrite=True, **TINY)
    assert (tmp_path / "mine" / "thesis.tex").exists()
    out = make_dataset("dehaze", tmp_path / "ours", 1, 1, progress=False, **TINY)
    make_dataset("dehaze", out, 2, 1, progress=False, overwrite=True, **TINY)
    assert len(list((out / "train" / "GT").iterdir())) == 2
    with pytest.raises(DataError, match=r"unknown option\(s\) preset for task 'dehaze'"):
        make_dataset("dehaze", tmp_path / "x", 1, 1, preset="heavy")
    with pytest.raises(DataError, match="unknown task"):
        make_dataset("denoise", tmp_path / "x", 1, 1)
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no partial folders left


def test_ensure_builtin_data_generates_once_and_repairs(tmp_path, monkeypatch):
    monkeypatch.setenv(S.ENV_DATA_DIR, str(tmp_path / "cache"))
    calls = []
    real = S._generate

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(S, "_generate", counting)
    root = ensure_builtin_data("derain", n_train=2, n_test=1, progress=False, **TINY)
    assert root.parent == tmp_path / "cache" and root.name.startswith("derain-")
    assert ensure_builtin_data("derain", n_train=2, n_test=1, progress=False, **TINY) == root
    assert len(calls) == 1  # reused
    other = ensure_builtin_data("derain", n_train=3, n_test=1, progress=False, **TINY)
    assert other != root and len(calls) == 2  # different settings, different folder
    next((root / "train" / "input").iterdir()).unlink()  # damaged: regenerated
    assert ensure_builtin_data("derain", n_train=2, n_test=1, progress=False, **TINY) == root
    assert len(calls) == 3 and len(PairedImageDataset(root, "train")) == 2


def test_interrupted_generation_never_looks_complete(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(S, "save_png", boom)
    with pytest.raises(KeyboardInterrupt):
        ensure_builtin_data("dehaze", root=tmp_path, n_train=2, n_test=1, progress=False, **TINY)
    assert list(tmp_path.iterdir()) == []  # neither a final folder nor a partial one remains


# -- CLI ---------------------------------------------------------------------------------------
def test_cli_writes_set_and_help_explains_every_flag(tmp_path):
    res = subprocess.run([sys.executable, "tools/make_data.py", "--task", "derain", "--out", str(tmp_path / "r"),
                          "--n-train", "2", "--n-test", "1", "--seed", "3", "--train-size", "32",
                          "--test-size", "32,48", "--naming", "rain200", "--motorcycle", "0", "--no-progress"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "wrote 6 images" in res.stdout
    assert (tmp_path / "r" / "train" / "input" / "rain-1.png").is_file()
    assert (tmp_path / "r" / "train" / "target" / "norain-1.png").is_file()


def _load_cli(monkeypatch):
    import importlib.util

    monkeypatch.syspath_prepend(str(REPO / "tools"))  # as when run as python tools/make_data.py
    spec = importlib.util.spec_from_file_location("make_data_cli", REPO / "tools" / "make_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_cli_help_and_errors(tmp_path, capsys, monkeypatch):
    cli = _load_cli(monkeypatch)
    parser = cli.build_parser()
    for action in parser._actions:
        assert action.help, f"{action.option_strings} has no help"
    text = parser.format_help()
    for flag in ("--task", "--out", "--n-train", "--n-test", "--seed", "--preset", "--naming", "--beta"):
        assert flag in text
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert cli.main(["--task", "dehaze", "--out", str(tmp_path / "full"), "--n-train", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["--task", "dehaze", "--out", str(tmp_path / "d"), "--n-train", "1", "--preset", "light"]) == 2
    assert "unknown option(s) preset" in capsys.readouterr().err
