"""Paired-image reader: every pairing rule, every bad input, skip_bad, loading, transforms."""
import random
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restoration.data import (BadDataWarning, DataError, MissingDataError, PairedImageDataset,
                              load_image)
from restoration.data.transforms import center_crop, crop_origin, flip_rotate, random_crop
from restoration.registry import DATASETS


# -- fixture helpers ------------------------------------------------------------------
def write(path: Path, value: int, size=(6, 5)) -> Path:
    """A uniform RGB image whose value identifies it (size is (h, w))."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((*size, 3), value, np.uint8)
    Image.fromarray(arr).save(path)
    return path


def value_of(t: torch.Tensor) -> int:
    return int(round(float(t[0, 0, 0]) * 255))


def items(ds):
    return {ds[i]["name"]: (value_of(ds[i]["input"]), value_of(ds[i]["target"])) for i in range(len(ds))}


def png16(path: Path, a: np.ndarray) -> None:
    """Write a 16-bit PNG (Pillow cannot write 16-bit RGB)."""
    h, w, c = a.shape
    raw = b"".join(b"\x00" + a[y].astype(">u2").tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 3: 2}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_registered():
    assert DATASETS.get("paired") is PairedImageDataset


# -- pairing rules ----------------------------------------------------------------------
def test_dehazesnn_identical_names_natural_order(tmp_path):
    for i in (1, 2, 10):
        write(tmp_path / "train" / "hazy" / f"{i}.png", i)
        write(tmp_path / "train" / "GT" / f"{i}.png", 100 + i)
    ds = PairedImageDataset(tmp_path, "train", layout="dehazesnn", mode="test")
    assert [p.name for p in ds.pairs] == ["1.png", "2.png", "10.png"]  # natsort, not 1, 10, 2
    assert items(ds) == {"1.png": (1, 101), "2.png": (2, 102), "10.png": (10, 110)}
    item = ds[0]
    assert item["input"].shape == (3, 6, 5) and item["input"].dtype == torch.float32


def test_reside_many_to_one_mixed_extensions(tmp_path):
    write(tmp_path / "test" / "GT" / "1400.png", 200)
    write(tmp_path / "test" / "GT" / "1401.jpg", 50)
    write(tmp_path / "test" / "hazy" / "1400_1.png", 1)
    write(tmp_path / "test" / "hazy" / "1400_2.jpg", 2)
    write(tmp_path / "test" / "hazy" / "1401_0.9_0.2.png", 3)  # OTS style: id_A_beta
    ds = PairedImageDataset(tmp_path, "test", layout="reside", mode="test")
    got = {p.name: p.second.name for p in ds.pairs}
    assert got == {"1400_1.png": "1400.png", "1400_2.jpg": "1400.png", "1401_0.9_0.2.png": "1401.jpg"}
    assert items(ds)["1400_2.jpg"][1] == 200


def test_esdnet_identical_names(tmp_path):
    write(tmp_path / "train" / "input" / "a.png", 1)
    write(tmp_path / "train" / "target" / "a.png", 2)
    ds = PairedImageDataset(tmp_path, "train", layout="esdnet", mode="test")
    assert items(ds) == {"a.png": (1, 2)}


def test_rain100_naming_in_folders(tmp_path):
    sd = tmp_path / "train"
    write(sd / "input" / "rain-12.png", 12)
    write(sd / "input" / "rain-12x2.png", 13)
    write(sd / "input" / "norain-3x2.png", 3)  # JORDER names its rainy files so
    write(sd / "target" / "norain-12.png", 112)
    write(sd / "target" / "norain-3.png", 103)
    ds = PairedImageDataset(tmp_path, "train", layout="rain100", mode="test")
    assert {p.name: p.second.name for p in ds.pairs} == {
        "norain-3x2.png": "norain-3.png", "rain-12.png": "norain-12.png", "rain-12x2.png": "norain-12.png"}
    assert items(ds)["rain-12x2.png"] == (13, 112)


def test_rain100_rain_norain_folders_and_single_folder(tmp_path):
    write(tmp_path / "a" / "test" / "rainy" / "rain-001.png", 1)
    write(tmp_path / "a" / "test" / "norain" / "norain-001.png", 2)
    ds = PairedImageDataset(tmp_path / "a", "test", mode="test")
    assert ds.layout == "rain100" and items(ds) == {"rain-001.png": (1, 2)}
    # PReNet's RainTrainL keeps both kinds of file in one folder
    write(tmp_path / "b" / "train" / "rain-1.png", 5)
    write(tmp_path / "b" / "train" / "norain-1.png", 6)
    ds = PairedImageDataset(tmp_path / "b", "train", mode="test")
    assert ds.layout == "rain100" and items(ds) == {"rain-1.png": (5, 6)}


def test_pairlist_relative_paths_comments_and_quotes(tmp_path):
    write(tmp_path / "x" / "in 1.png", 1)
    write(tmp_path / "y" / "gt1.png", 2)
    write(tmp_path / "x" / "in2.png", 3)
    write(tmp_path / "y" / "gt2.png", 4)
    lst = tmp_path / "train.txt"
    lst.write_text('# input target\n"x/in 1.png" y/gt1.png\n\nx/in2.png   y/gt2.png\n')
    for ds in (PairedImageDataset(lst, None, layout="pairlist", mode="test"),   # list file as root
               PairedImageDataset(tmp_path, "train", layout="pairlist", mode="test"),  # <root>/<split>.txt
               PairedImageDataset(tmp_path, "x", pair_list="train.txt", mode="test")):
        assert items(ds) == {"x/in 1.png": (1, 2), "x/in2.png": (3, 4)}


def test_pairlist_bad_line_names_line(tmp_path):
    lst = tmp_path / "l.txt"
    lst.write_text("a.png b.png c.png\n")
    with pytest.raises(DataError, match=r"line 1: expected two paths"):
        PairedImageDataset(lst, None, layout="pairlist")


def test_split_folder_given_directly(tmp_path):
    write(tmp_path / "hazy" / "1.png", 1)
    write(tmp_path / "GT" / "1.png", 2)
    ds = PairedImageDataset(tmp_path, "test", mode="test")  # no test/ folder: root itself is the split
    assert items(ds) == {"1.png": (1, 2)}


@pytest.mark.parametrize("layout,files", [
    ("dehazesnn", {"hazy/1.png": 1, "GT/1.png": 2}),
    ("reside", {"hazy/1_1.png": 1, "GT/1.png": 2}),
    ("esdnet", {"input/1.png": 1, "target/1.png": 2}),
    ("rain100", {"input/rain-1.png": 1, "target/norain-1.png": 2}),
])
def test_auto_detects_and_says_so(tmp_path, layout, files):
    for rel, v in files.items():
        write(tmp_path / "train" / rel, v)
    ds = PairedImageDataset(tmp_path, "train", mode="test")
    assert ds.layout == layout
    assert f"layout {layout} (auto-detected)" in repr(ds)
    assert list(items(ds).values()) == [(1, 2)]


def test_auto_detects_pairlist(tmp_path):
    write(tmp_path / "a.png", 1)
    write(tmp_path / "b.png", 2)
    (tmp_path / "test.txt").write_text("a.png b.png\n")
    ds = PairedImageDataset(tmp_path, "test", mode="test")
    assert ds.layout == "pairlist" and items(ds) == {"a.png": (1, 2)}


# -- bad input ----------------------------------------------------------------------------
def test_hazy_without_clear_partner(tmp_path):
    write(tmp_path / "train" / "hazy" / "1.png", 1)
    write(tmp_path / "train" / "hazy" / "2.png", 1)
    write(tmp_path / "train" / "GT" / "1.png", 2)
    with pytest.raises(DataError, match=r"hazy/2\.png has no clear partner.*GT/2\.png"):
        PairedImageDataset(tmp_path, "train", layout="dehazesnn")
    with pytest.raises(DataError, match=r"hazy/2\.png has no clear partner.*GT/2\.\*"):
        PairedImageDataset(tmp_path, "train")  # auto -> reside rule, same verdict
    with pytest.raises(DataError, match=r"skip_bad=True"):
        PairedImageDataset(tmp_path, "train")


def test_clear_without_hazy_partner_in_one_to_one_layout(tmp_path):
    write(tmp_path / "train" / "hazy" / "1.png", 1)
    write(tmp_path / "train" / "GT" / "1.png", 2)
    write(tmp_path / "train" / "GT" / "7.png", 2)
    with pytest.raises(DataError, match=r"GT/7\.png has no hazy partner"):
        PairedImageDataset(tmp_path, "train", layout="dehazesnn")


def test_rainy_without_clean_partner(tmp_path):
    write(tmp_path / "train" / "input" / "rain-5.png", 1)
    write(tmp_path / "train" / "target" / "norain-6.png", 1)
    with pytest.raises(DataError, match=r"rain-5\.png has no clean partner.*norain-5"):
        PairedImageDataset(tmp_path, "train", layout="rain100")


def test_pairlist_missing_file(tmp_path):
    write(tmp_path / "a.png", 1)
    (tmp_path / "l.txt").write_text("a.png nothere.png\n")
    with pytest.raises(DataError, match=r"line 1: target file .*nothere\.png does not exist"):
        PairedImageDataset(tmp_path / "l.txt", None)


@pytest.mark.parametrize("layout,present,missing", [
    ("dehazesnn", "hazy", "GT"), ("dehazesnn", "GT", "hazy"), ("reside", "hazy", "GT"),
    ("esdnet", "input", "target"), ("esdnet", "target", "input"), ("rain100", "input", "target"),
    ("auto", "hazy", "GT"), ("auto", "input", "target"),
])
def test_missing_folder(tmp_path, layout, present, missing):
    write(tmp_path / "train" / present / "1.png", 1)
    with pytest.raises(MissingDataError, match=rf"missing folder .*train/{missing}"):
        PairedImageDataset(tmp_path, "train", layout=layout)


def test_missing_split_and_root(tmp_path):
    write(tmp_path / "train" / "hazy" / "1.png", 1)
    write(tmp_path / "train" / "GT" / "1.png", 1)
    with pytest.raises(MissingDataError, match=r"missing folder .*valid.*contains: train/"):
        PairedImageDataset(tmp_path, "valid", layout="dehazesnn")
    with pytest.raises(MissingDataError, match=r"missing folder .*valid"):
        PairedImageDataset(tmp_path, "valid")
    with pytest.raises(MissingDataError, match=r"does not exist"):
        PairedImageDataset(tmp_path / "nope", "train")


def test_empty_split(tmp_path):
    (tmp_path / "train" / "hazy").mkdir(parents=True)
    (tmp_path / "train" / "GT").mkdir(parents=True)
    (tmp_path / "train" / "hazy" / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=r"empty split: .*hazy contains no images"):
        PairedImageDataset(tmp_path, "train", layout="dehazesnn")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(DataError, match=r"empty split"):
        PairedImageDataset(tmp_path / "empty.txt", None)


def _bad_tree(tmp_path):
    """good.png ok; junk.png not an image; cut.png truncated; big.png size mismatch."""
    sd = tmp_path / "train"
    for n in ("good", "junk", "cut", "big"):
        write(sd / "GT" / f"{n}.png", 9, size=(32, 32))
    write(sd / "hazy" / "good.png", 1, size=(32, 32))
    (sd / "hazy" / "junk.png").write_text("this is not a png")
    noisy = np.random.RandomState(0).randint(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(sd / "hazy" / "cut.png")
    data = (sd / "hazy" / "cut.png").read_bytes()
    (sd / "hazy" / "cut.png").write_bytes(data[: len(data) // 2])
    write(sd / "hazy" / "big.png", 1, size=(32, 40))
    return sd


def test_bad_files_raise_at_load_naming_the_files(tmp_path):
    sd = _bad_tree(tmp_path)
    ds = PairedImageDataset(tmp_path, "train", mode="test")  # names are fine: no error yet
    by_name = {p.name: i for i, p in enumerate(ds.pairs)}
    with pytest.raises(DataError, match=r"cannot read image .*hazy/junk\.png"):
        ds[by_name["junk.png"]]
    with pytest.raises(DataError, match=r"cannot read image .*hazy/cut\.png.*truncated"):
        ds[by_name["cut.png"]]
    with pytest.raises(DataError, match=r"size mismatch: input .*hazy/big\.png is 40x32, target .*GT/big\.png is 32x32"):
        ds[by_name["big.png"]]
    assert value_of(ds[by_name["good.png"]]["input"]) == 1
    assert sd.exists()


def test_bad_file_error_crosses_dataloader_worker(tmp_path):
    _bad_tree(tmp_path)
    ds = PairedImageDataset(tmp_path, "train", mode="test")
    ds.pairs = [p for p in ds.pairs if p.name == "junk.png"]
    loader = torch.utils.data.DataLoader(ds, batch_size=1, num_workers=1)
    with pytest.raises(DataError, match=r"cannot read image .*hazy/junk\.png"):
        next(iter(loader))


def test_verify_finds_everything_up_front(tmp_path):
    _bad_tree(tmp_path)
    with pytest.raises(DataError) as e:
        PairedImageDataset(tmp_path, "train", verify=True)
    msg = str(e.value)
    assert "3 problem(s)" in msg and "junk.png" in msg and "cut.png" in msg and "big.png" in msg
    assert "good.png" not in msg


def test_verify_header_finds_size_mismatch_in_init(tmp_path):
    sd = _bad_tree(tmp_path)
    for n in ("junk", "cut"):  # header checks see sizes; keep only the size problem
        (sd / "hazy" / f"{n}.png").unlink()
        (sd / "GT" / f"{n}.png").unlink()
    with pytest.raises(DataError, match=r"(?s)1 problem.*size mismatch: input .*big\.png is 40x32"):
        PairedImageDataset(tmp_path, "train", verify="header")


def test_skip_bad_lists_once_and_skips(tmp_path):
    _bad_tree(tmp_path)
    write(tmp_path / "train" / "hazy" / "orphan.png", 1, size=(32, 32))
    with pytest.warns(BadDataWarning) as rec:
        ds = PairedImageDataset(tmp_path, "train", skip_bad=True, patch_size=16)
    assert [p.name for p in ds.pairs] == ["good.png"]
    assert len(ds.skipped) == 4 and "skipped 4 bad" in repr(ds)
    assert len(rec) == 1  # one warning with the whole list
    text = str(rec[0].message)
    for n in ("orphan.png", "junk.png", "cut.png", "big.png"):
        assert n in text
    assert ds[0]["input"].shape == (3, 16, 16)


def test_skip_bad_with_nothing_left_still_raises(tmp_path):
    write(tmp_path / "train" / "hazy" / "1.png", 1)
    write(tmp_path / "train" / "GT" / "2.png", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BadDataWarning)
        with pytest.raises(DataError, match=r"no usable input/target pairs"):
            PairedImageDataset(tmp_path, "train", layout="reside", skip_bad=True)


def test_bad_arguments(tmp_path):
    write(tmp_path / "train" / "hazy" / "1.png", 1)
    write(tmp_path / "train" / "GT" / "1.png", 1)
    with pytest.raises(DataError, match=r"unknown mode 'training'"):
        PairedImageDataset(tmp_path, "train", mode="training")
    with pytest.raises(DataError, match=r"unknown paired layout 'its'"):
        PairedImageDataset(tmp_path, "train", layout="its")
    ds = PairedImageDataset(tmp_path, "train", patch_size=64)
    with pytest.raises(DataError, match=r"5x6 .*smaller than the training patch 64x64"):
        ds[0]


# -- loading formats --------------------------------------------------------------------
def test_image_modes_load_as_float_rgb(tmp_path):
    rng = np.random.RandomState(1)
    rgb = rng.randint(0, 256, (5, 7, 3), dtype=np.uint8)
    gray = rng.randint(0, 256, (5, 7), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "l.png")
    Image.fromarray(np.dstack([rgb, np.full((5, 7), 3, np.uint8)])).save(tmp_path / "rgba.png")
    Image.fromarray(rgb).quantize(8).save(tmp_path / "p.png")
    Image.fromarray(gray.astype(np.uint16) * 257 + 1).save(tmp_path / "g16.png")
    rgb16 = rng.randint(0, 65536, (5, 7, 3)).astype(np.uint16)
    png16(tmp_path / "rgb16.png", rgb16)
    for name in ("l", "rgba", "p", "g16", "rgb16"):
        x = load_image(tmp_path / f"{name}.png")
        assert x.shape == (5, 7, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1, name
    np.testing.assert_allclose(load_image(tmp_path / "l.png"), np.repeat(gray[..., None], 3, 2) / 255, atol=1e-6)
    np.testing.assert_allclose(load_image(tmp_path / "rgba.png"), rgb / 255, atol=1e-6)  # alpha dropped
    pal = Image.open(tmp_path / "p.png").convert("RGB")
    np.testing.assert_allclose(load_image(tmp_path / "p.png"), np.asarray(pal) / 255, atol=1e-6)
    g16 = load_image(tmp_path / "g16.png")[..., 0]
    np.testing.assert_allclose(g16, (gray.astype(np.float64) * 257 + 1) / 65535, atol=1e-6)  # full 16 bits
    np.testing.assert_allclose(load_image(tmp_path / "rgb16.png"), rgb16 / 65535, atol=1 / 255 + 1e-6)


def test_missing_image_file(tmp_path):
    with pytest.raises(MissingDataError, match=r"nothere\.png does not exist"):
        load_image(tmp_path / "nothere.png")


# -- transforms -------------------------------------------------------------------------
def _noise_pair(tmp_path, h=20, w=24):
    rng = np.random.RandomState(0)
    a = rng.randint(0, 256, (h, w, 3), dtype=np.uint8)
    (tmp_path / "train" / "hazy").mkdir(parents=True)
    (tmp_path / "train" / "GT").mkdir(parents=True)
    Image.fromarray(a).save(tmp_path / "train" / "hazy" / "0.png")
    Image.fromarray(255 - a).save(tmp_path / "train" / "GT" / "0.png")
    return a


def test_train_mode_same_crop_flip_rotation_on_both(tmp_path):
    a = _noise_pair(tmp_path)
    ds = PairedImageDataset(tmp_path, "train", patch_size=8)
    random.seed(0)
    seen_rot = False
    for _ in range(30):
        it = ds[0]
        x, y = it["input"], it["target"]
        assert x.shape == (3, 8, 8)
        torch.testing.assert_close(y, 1 - x, atol=1e-6, rtol=0)  # target still aligned with input
        patch = (x.numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
        plain = _find_in(a, patch) or _find_in(a, patch[:, ::-1])
        seen_rot |= not plain
    assert seen_rot  # rot90 happens by default


def _find_in(big, patch):
    h, w = patch.shape[:2]
    return any((big[i:i + h, j:j + w] == patch).all() for i in range(big.shape[0] - h + 1)
               for j in range(big.shape[1] - w + 1))


def test_only_h_flip_never_rotates(tmp_path):
    a = _noise_pair(tmp_path)
    ds = PairedImageDataset(tmp_path, "train", patch_size=8, only_h_flip=True)
    random.seed(1)
    flips = 0
    for _ in range(20):
        patch = (ds[0]["input"].numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
        direct = _find_in(a, patch)
        assert direct or _find_in(a, patch[:, ::-1])
        flips += not direct
    assert 0 < flips < 20


def test_valid_centre_crop_and_test_full_size(tmp_path):
    a = _noise_pair(tmp_path)
    v = PairedImageDataset(tmp_path, "train", mode="valid", patch_size=(8, 10))[0]["input"]
    np.testing.assert_allclose(v.numpy().transpose(1, 2, 0), a[6:14, 7:17] / 255, atol=1e-6)
    t = PairedImageDataset(tmp_path, "train", mode="test", patch_size=8)[0]["input"]
    assert t.shape == (3, 20, 24)


def test_edge_decay_biases_crops_to_borders():
    r = random.Random(0)
    uniform = {crop_origin(100, 10, 0.0, r) for _ in range(2000)}
    assert len(uniform) > 80 and min(uniform) == 0 and max(uniform) == 90
    snapped = {crop_origin(100, 10, 10.0, r) for _ in range(200)}  # p = 10/100*10 = 1
    assert snapped == {0, 90}
    half = [crop_origin(100, 10, 5.0, r) for _ in range(4000)]  # p = 0.5 (+ uniform hits at ends)
    at_edges = np.mean([o in (0, 90) for o in half])
    assert 0.45 < at_edges < 0.6


def test_joint_transforms_keep_arrays_aligned():
    r = random.Random(3)
    a = np.arange(6 * 8 * 3, dtype=np.float32).reshape(6, 8, 3)
    for _ in range(10):
        x, y = flip_rotate(random_crop([a, a + 1], 4, rng=r), rng=r)
        np.testing.assert_array_equal(y, x + 1)
    with pytest.raises(DataError, match="different sizes"):
        center_crop([a, a[:5]], 4)
