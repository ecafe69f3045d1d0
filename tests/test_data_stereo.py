"""Stereo reader: KITTI, left/right folders, InStereo2K, DHF-JSCC path lists; transforms."""
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restoration.data import BadDataWarning, DataError, MissingDataError, StereoDataset
from restoration.registry import DATASETS


def write(path: Path, value: int, size=(6, 5)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)
    return path


def values(ds):
    return {ds[i]["name"]: (int(round(float(ds[i]["left"][0, 0, 0]) * 255)),
                            int(round(float(ds[i]["right"][0, 0, 0]) * 255))) for i in range(len(ds))}


def test_registered():
    assert DATASETS.get("stereo") is StereoDataset


def test_kitti_training_alias(tmp_path):
    d = tmp_path / "data_scene_flow" / "training"
    for i, n in enumerate(["000000_10.png", "000000_11.png", "000001_10.png"]):
        write(d / "image_2" / n, i)
        write(d / "image_3" / n, 100 + i)
    ds = StereoDataset(tmp_path / "data_scene_flow", "train", mode="test")
    assert ds.layout == "kitti" and "auto-detected" in repr(ds)
    assert values(ds) == {"000000_10.png": (0, 100), "000000_11.png": (1, 101), "000001_10.png": (2, 102)}
    item = ds[0]
    assert set(item) == {"left", "right", "name"} and item["left"].shape == (3, 6, 5)


def test_left_right_folders(tmp_path):
    write(tmp_path / "test" / "left" / "a.png", 1)
    write(tmp_path / "test" / "right" / "a.png", 2)
    ds = StereoDataset(tmp_path, "test", mode="test")
    assert ds.layout == "leftright" and values(ds) == {"a.png": (1, 2)}


def test_instereo2k_scene_folders(tmp_path):
    for i in (1, 2, 10):
        write(tmp_path / "train" / f"{i:06d}" / "left.png", i)
        write(tmp_path / "train" / f"{i:06d}" / "right.png", 50 + i)
    ds = StereoDataset(tmp_path, "train", mode="test")
    assert ds.layout == "instereo2k"
    assert values(ds) == {"000001/left.png": (1, 51), "000002/left.png": (2, 52), "000010/left.png": (10, 60)}


def test_dhf_jscc_alternating_path_list(tmp_path):
    # DHF-JSCC: dataset/data_paths/KITTI_stereo_train.txt, paths relative to dataset_path
    root = tmp_path / "kitti"
    write(root / "training" / "image_2" / "000000_10.png", 1)
    write(root / "training" / "image_3" / "000000_10.png", 2)
    write(root / "training" / "image_2" / "000001_10.png", 3)
    write(root / "training" / "image_3" / "000001_10.png", 4)
    lst = tmp_path / "KITTI_stereo_train.txt"
    lst.write_text("training/image_2/000000_10.png\ntraining/image_3/000000_10.png\n"
                   "training/image_2/000001_10.png\ntraining/image_3/000001_10.png\n")
    ds = StereoDataset(root, "train", layout="pathlist", list_file=lst, mode="test")
    assert values(ds) == {"training/image_2/000000_10.png": (1, 2), "training/image_2/000001_10.png": (3, 4)}
    # list found as <root>/*_<split>.txt, and two paths per line also accepted
    (root / "my_val.txt").write_text("training/image_2/000001_10.png training/image_3/000001_10.png\n")
    ds = StereoDataset(root, "val", mode="test")
    assert ds.layout == "pathlist" and values(ds) == {"training/image_2/000001_10.png": (3, 4)}


def test_path_list_errors(tmp_path):
    write(tmp_path / "l.png", 1)
    (tmp_path / "odd.txt").write_text("l.png\nl.png\nl.png\n")
    with pytest.raises(DataError, match=r"odd number.*line 3 has no right partner"):
        StereoDataset(tmp_path / "odd.txt", None)
    (tmp_path / "mix.txt").write_text("l.png l.png\nl.png\n")
    with pytest.raises(DataError, match=r"not a mix"):
        StereoDataset(tmp_path / "mix.txt", None)
    (tmp_path / "miss.txt").write_text("l.png\nr.png\n")
    with pytest.raises(DataError, match=r"line 1: right file .*r\.png does not exist"):
        StereoDataset(tmp_path / "miss.txt", None)
    with pytest.raises(MissingDataError, match=r"no path-list file for split 'test'"):
        StereoDataset(tmp_path, "test", layout="pathlist")


def test_missing_partner_folder_and_empty(tmp_path):
    write(tmp_path / "train" / "image_2" / "1.png", 1)
    write(tmp_path / "train" / "image_2" / "2.png", 1)
    with pytest.raises(MissingDataError, match=r"missing folder .*train/image_3"):
        StereoDataset(tmp_path, "train")
    write(tmp_path / "train" / "image_3" / "1.png", 1)
    with pytest.raises(DataError, match=r"left image .*image_2/2\.png has no right partner"):
        StereoDataset(tmp_path, "train")
    with pytest.raises(MissingDataError, match=r"missing folder .*testing|missing folder .*test"):
        StereoDataset(tmp_path, "test", layout="kitti")
    with pytest.raises(MissingDataError, match=r"missing folder .*valid.*contains: train/"):
        StereoDataset(tmp_path, "valid")
    (tmp_path / "e" / "left").mkdir(parents=True)
    (tmp_path / "e" / "right").mkdir(parents=True)
    with pytest.raises(DataError, match=r"empty split"):
        StereoDataset(tmp_path / "e", None, layout="leftright")


def test_skip_bad_and_size_mismatch(tmp_path):
    write(tmp_path / "left" / "1.png", 1)
    write(tmp_path / "right" / "1.png", 2)
    write(tmp_path / "left" / "2.png", 1, size=(6, 5))
    write(tmp_path / "right" / "2.png", 2, size=(7, 5))
    write(tmp_path / "left" / "3.png", 1)
    with pytest.raises(DataError, match=r"3\.png has no right partner"):
        StereoDataset(tmp_path, None)
    with pytest.warns(BadDataWarning, match=r"(?s)3\.png has no right partner.*size mismatch"):
        ds = StereoDataset(tmp_path, None, skip_bad=True, mode="test")
    assert [p.name for p in ds.pairs] == ["1.png"]
    (tmp_path / "left" / "3.png").unlink()
    ds = StereoDataset(tmp_path, None, mode="test")
    with pytest.raises(DataError, match=r"size mismatch: left .*2\.png is 5x6, right .*2\.png is 5x7"):
        ds[1]


def _noise_views(tmp_path, h=20, w=30):
    a = np.random.RandomState(0).randint(0, 256, (h, w, 3), dtype=np.uint8)
    (tmp_path / "left").mkdir()
    (tmp_path / "right").mkdir()
    Image.fromarray(a).save(tmp_path / "left" / "0.png")
    Image.fromarray(255 - a).save(tmp_path / "right" / "0.png")
    return a


def test_same_crop_on_both_views_and_flip_swaps(tmp_path):
    a = _noise_views(tmp_path)
    ds = StereoDataset(tmp_path, None, patch_size=(8, 12))
    random.seed(0)
    swapped = 0
    for _ in range(30):
        it = ds[0]
        assert it["left"].shape == (3, 8, 12)
        torch.testing.assert_close(it["right"], 1 - it["left"], atol=1e-6, rtol=0) if _is_left(a, it["left"]) \
            else torch.testing.assert_close(it["left"], 1 - it["right"], atol=1e-6, rtol=0)
        swapped += not _is_left(a, it["left"])
    assert 0 < swapped < 30  # flipped pairs come back with the views swapped


def _is_left(a, view):
    """True if ``view`` is an unflipped crop of the left image ``a``."""
    p = (view.numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    h, w = p.shape[:2]
    return any((a[i:i + h, j:j + w] == p).all() for i in range(a.shape[0] - h + 1) for j in range(a.shape[1] - w + 1))


def test_flip_keeps_disparity_sign(tmp_path):
    # a scene point at column x in the left view is at x - 3 in the right view: right(x) == left(x + 3)
    rng = np.random.RandomState(2)
    scene = rng.randint(0, 256, (8, 40, 3), dtype=np.uint8)
    (tmp_path / "left").mkdir()
    (tmp_path / "right").mkdir()
    Image.fromarray(scene[:, 0:32]).save(tmp_path / "left" / "0.png")
    Image.fromarray(scene[:, 3:35]).save(tmp_path / "right" / "0.png")
    ds = StereoDataset(tmp_path, None, mode="train")
    random.seed(0)
    outs = [ds[0] for _ in range(10)]
    assert len({float(o["left"].sum()) for o in outs}) == 2  # both flipped and unflipped drawn
    for it in outs:  # flipping mirrors the scene; swapping the views keeps right(x) == left(x + 3)
        torch.testing.assert_close(it["right"][:, :, :-3], it["left"][:, :, 3:])


def test_center_crop_resize_and_modes(tmp_path):
    _noise_views(tmp_path, h=40, w=60)
    t = StereoDataset(tmp_path, None, mode="test", center_crop=30, resize=16)[0]
    assert t["left"].shape == (3, 16, 16) and t["right"].shape == (3, 16, 16)
    v = StereoDataset(tmp_path, None, mode="valid", patch_size=10)[0]
    assert v["left"].shape == (3, 10, 10)
    full = StereoDataset(tmp_path, None, mode="test", patch_size=10)[0]
    assert full["left"].shape == (3, 40, 60)
