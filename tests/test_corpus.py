"""The real-photo corpus (restoration/data/corpus.py), the severity grid of the generator and
the held-out split built from it. Small: a tiny manifest of three small photographs made
here, never the installed corpus's large files."""
import hashlib
import json
import logging
import re

import numpy as np
import pytest
from PIL import Image

from restoration.data import DataError, PairedImageDataset, make_dataset
from restoration.data import corpus as C
from restoration.data import degradations, sources
from restoration.data import synthetic as S

TINY = dict(train_size=32, test_size=(32, 48), motorcycle=0)


# -- the shipped manifest ----------------------------------------------------------------------
def test_shipped_manifest_pins_photographs_from_allowed_packages():
    m = C.read_corpus_manifest(C.MANIFEST_PATH)
    photos = m["photos"]
    names = [p["name"] for p in photos]
    assert len(names) == len(set(names)) >= 20
    for p in photos:
        assert re.fullmatch(r"[0-9a-f]{64}", p["sha256"]), p["name"]
        assert p["path"].startswith("/usr/share/") and p["role"] in C.ROLES
        assert p["package"] != "mate-backgrounds"  # reserved for evaluation from outside the project
    held = [p for p in photos if p["role"] == "heldout"]
    assert 6 <= len(held) < len(photos) // 2
    assert len({p["path"] for p in photos}) == len(photos)  # no photograph in both roles
    assert "mate-backgrounds" not in json.dumps(m["packages"])


def test_installed_corpus_matches_or_says_how_to_install(monkeypatch):
    monkeypatch.delenv(C.ENV_CORPUS, raising=False)
    st = C.corpus_status()
    if st.complete:  # installed (tools/setup_env.sh as root): every file has the pinned sha256
        assert len(st.present) == len(C.read_corpus_manifest()["photos"]) and st.message() == ""
    else:
        msg = st.message()
        assert "\n" not in msg and "apt-get install" in msg and "scikit-image" in msg
        for pkg in {e["package"] for e in st.missing}:
            assert pkg in msg


# -- a tiny corpus of our own ------------------------------------------------------------------
def _photo(path, seed, h=120, w=160):
    rng = np.random.default_rng(seed)
    base = np.asarray(Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((w, h), Image.BICUBIC))
    Image.fromarray(base).save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def tiny_corpus(tmp_path, monkeypatch):
    """Three small photographs (two train, one held out) behind a manifest of their own."""
    entries = []
    for i, role in enumerate(["train", "train", "heldout"]):
        path = tmp_path / f"photo{i}.png"
        entries.append(dict(name=f"photo{i}", package=f"pkg-{role}", path=str(path), sha256=_photo(path, i),
                            role=role))
    manifest = tmp_path / "corpus.json"
    manifest.write_text(json.dumps({"packages": ["pkg-train", "pkg-heldout"], "photos": entries}))
    monkeypatch.setenv(C.ENV_CORPUS, str(manifest))
    yield tmp_path, entries
    C._load_photo.cache_clear()


def test_tiny_corpus_feeds_train_and_heldout_splits(tiny_corpus, tmp_path):
    _, entries = tiny_corpus
    assert C.corpus_status().complete
    assert [p.name for p in sources.photo_pool("heldout")] == ["photo2"]
    train_names = [p.name for p in sources.photo_pool("train")]
    assert train_names[:2] == ["photo0", "photo1"] and "photo2" not in train_names
    assert "astronaut" in train_names  # scikit-image's photographs join the corpus
    out = make_dataset("derain", tmp_path / "set", 2, 6, seed=0, progress=False, **TINY)
    info = json.loads((out / "dataset.json").read_text())
    assert info["sources"]["test"] == ["photo2"]
    names = sorted(p.name for p in (out / "test" / "input").iterdir())
    assert names == ["heavy_00002.png", "heavy_00005.png", "light_00000.png", "light_00003.png",
                     "medium_00001.png", "medium_00004.png"]
    # image 0: the whole photograph reduced to a long side of 48 (160x120 -> 48x36 -> 48x32)
    clean = np.asarray(Image.open(out / "test" / "target" / "light_00000.png"))
    assert clean.shape == (32, 48, 3)
    # image 3: a native-resolution crop, i.e. pixels copied from the photograph unscaled
    crop = np.asarray(Image.open(out / "test" / "target" / "light_00003.png"))
    full = np.asarray(Image.open(entries[2]["path"]))
    hits = [(y, x) for y in range(full.shape[0] - crop.shape[0] + 1) for x in range(full.shape[1] - crop.shape[1] + 1)
            if np.array_equal(full[y:y + crop.shape[0], x:x + crop.shape[1]], crop)]
    assert hits


def test_changed_or_missing_photo_falls_back_with_one_message(tiny_corpus, tmp_path, caplog):
    root, entries = tiny_corpus
    key = S.builtin_name("derain", 2, 3, 0, S._resolve_options("derain", {}))
    Image.new("RGB", (8, 8)).save(entries[1]["path"])  # a different file: its sha256 no longer matches
    st = C.corpus_status()
    assert not st.complete and [e["name"] for e in st.missing] == ["photo1"]
    assert "pkg-train" in st.message() and "apt-get install pkg-train" in st.message()
    C._warn_once.cache_clear()
    with caplog.at_level(logging.WARNING, logger="restoration.data"):
        held = sources.photo_pool("heldout")
        sources.photo_pool("train")
    assert sorted(p.name for p in held) == sorted(sources.FALLBACK_HELDOUT)  # the documented fallback
    assert sum("real-photo corpus incomplete" in r.message for r in caplog.records) == 1
    # a built-in set made from other pixels gets another name: no stale cache is reused
    assert S.builtin_name("derain", 2, 3, 0, S._resolve_options("derain", {})) != key


def test_clean_dir_trains_on_the_users_photographs(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    for i in range(2):
        _photo(mine / f"holiday{i}.jpg", 10 + i)
    out = make_dataset("dehaze", tmp_path / "set", 3, 1, seed=0, progress=False, clean_dir=str(mine),
                       procedural=0.0, **TINY)
    assert json.loads((out / "dataset.json").read_text())["sources"]["train"] == ["holiday0.jpg", "holiday1.jpg"]
    with pytest.raises(DataError, match="clean-photo folder .* does not exist; pass --clean-dir"):
        make_dataset("dehaze", tmp_path / "x", 1, 1, clean_dir=str(tmp_path / "nope"), progress=False, **TINY)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images in clean-photo folder"):
        make_dataset("dehaze", tmp_path / "x", 1, 1, clean_dir=str(tmp_path / "empty"), progress=False, **TINY)


def test_crops_come_at_native_and_reduced_scale():
    rng = np.random.default_rng(0)
    full = rng.integers(0, 256, (900, 1400, 3), dtype=np.uint8)
    photo = C._prepare("p", full, 1)
    assert max(photo.reduced.shape[:2]) == C.REDUCED_SIDE and len(photo.tiles) == C.NATIVE_TILES
    native = sources._crop_photo(np.random.default_rng(1), photo, 40, 56, native=1.0)
    assert any(np.array_equal(t[y:y + 40, x:x + 56], native) for t in photo.tiles
               for y in range(t.shape[0] - 39) for x in range(0, t.shape[1] - 55))
    reduced = sources._crop_photo(np.random.default_rng(1), photo, 40, 56, native=0.0)
    assert reduced.shape == (40, 56, 3)


# -- the severity grid ---------------------------------------------------------------------------
def _psnr(a, b):
    return float(-10 * np.log10(np.mean((a.astype(np.float64) - b) ** 2) + 1e-12))


def test_rain_and_haze_get_worse_along_the_severity_grid():
    clean = [sources.clean_image(np.random.default_rng(i), 64, 64, procedural=0.0) for i in range(4)]
    levels = [sources.TRACE, 0.0, 0.5, 1.0]
    rain = [np.mean([_psnr(degradations.add_rain(np.random.default_rng(50 + i), c, s), c) for i, c in enumerate(clean)])
            for s in levels]
    assert all(a > b + 1.0 for a, b in zip(rain, rain[1:])), rain  # trace > light > medium > heavy
    assert rain[0] > 30 and rain[-1] < 20, rain  # nearly clean .. dense streaks with a veil
    betas = [degradations.haze_beta(np.random.default_rng(0), s) for s in (0.0, 0.5, 1.0)]
    assert betas[0] == pytest.approx(0.2) and betas[-1] == pytest.approx(3.0) and betas[0] < betas[1] < betas[2]
    assert degradations.haze_beta(np.random.default_rng(0), sources.TRACE) < 0.2
    bands = [sources.severity_value(np.random.default_rng(k), lev) for k in range(20) for lev in sources.SEVERITIES]
    for k, v in enumerate(bands):
        lo, hi = sources.SEVERITY_BANDS[sources.SEVERITIES[k % 3]]
        assert lo <= v <= hi
    train = [sources.severity_value(np.random.default_rng(k), None, clean_share=0.25) for k in range(400)]
    assert 0.15 < np.mean([v == sources.TRACE for v in train]) < 0.35  # a share of nearly clean inputs


def test_heldout_split_has_every_severity_at_rising_difficulty(tmp_path):
    out = make_dataset("derain", tmp_path / "set", 0, 9, seed=3, progress=False, **TINY)
    test = PairedImageDataset(out, "test", mode="test")
    by_level = {}
    for i in range(len(test)):
        item = test[i]
        level = item["name"].split("_")[0]
        by_level.setdefault(level, []).append(_psnr(item["input"].numpy(), item["target"].numpy()))
    assert sorted(by_level) == ["heavy", "light", "medium"] and all(len(v) == 3 for v in by_level.values())
    means = {k: np.mean(v) for k, v in by_level.items()}
    assert means["light"] > means["medium"] > means["heavy"], means
