"""Recipes: _base_ inheritance, dotted overrides, validation with the nearest valid key."""
from pathlib import Path

import pytest

from restoration.config import (CONFIG_ROOT, DEFAULTS, ConfigError, apply_overrides, dump_config, load_config,
                                parse_override)


def write(p: Path, text: str) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_defaults_then_recipe_then_overrides(tmp_path):
    f = write(tmp_path / "r.yaml", "task: derain\noptim: {lr: 0.5}\n")
    cfg = load_config(f, ["optim.lr=2e-4", "optim.betas=[0.8, 0.9]", "train.clip_grad=null"])
    assert cfg.optim.lr == pytest.approx(2e-4)
    assert cfg.optim.betas == [0.8, 0.9]
    assert cfg.train.clip_grad is None
    assert cfg.task == "derain"
    assert cfg.data.patch_size == DEFAULTS["data"]["patch_size"]  # untouched default
    assert cfg["optim"]["lr"] == cfg.optim.lr  # attribute and item access agree


def test_base_chain_merges_deeply_and_relative_to_the_file(tmp_path):
    write(tmp_path / "a" / "base.yaml", "task: dehaze\noptim: {lr: 1.0, weight_decay: 0.5}\ndata: {patch_size: 32}\n")
    write(tmp_path / "a" / "mid.yaml", "_base_: base.yaml\noptim: {lr: 2.0}\n")
    child = write(tmp_path / "b" / "child.yaml", "_base_: ../a/mid.yaml\ndata: {batch_size: 3}\n")
    cfg = load_config(child)
    assert cfg.optim.lr == 2.0 and cfg.optim.weight_decay == 0.5  # merged, not replaced
    assert cfg.data.patch_size == 32 and cfg.data.batch_size == 3


def test_list_of_bases_merge_in_order_and_delete_replaces(tmp_path):
    write(tmp_path / "one.yaml", "model: {name: m1, args: {a: 1, b: 2}}\n")
    write(tmp_path / "two.yaml", "model: {name: m2, args: {_delete_: true, c: 3}}\n")
    f = write(tmp_path / "r.yaml", "_base_: [one.yaml, two.yaml]\n")
    cfg = load_config(f)
    assert cfg.model.name == "m2"
    assert dict(cfg.model.args) == {"c": 3}


def test_typo_in_file_names_key_file_and_nearest(tmp_path):
    f = write(tmp_path / "r.yaml", "optim: {lrr: 0.1}\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    msg = str(e.value)
    assert "'optim.lrr'" in msg and "'optim.lr'" in msg and str(f.name) in msg


def test_typo_in_override_names_nearest_valid_key():
    with pytest.raises(ConfigError, match=r"'optim\.lrr'.*Did you mean 'optim\.lr'"):
        load_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match=r"'optm'.*Did you mean 'optim'"):
        load_config(None, ["optm.lr=1"])
    with pytest.raises(ConfigError, match=r"'train\.epoch'.*Did you mean 'train\.epochs'"):
        load_config(None, ["train.epoch=3"])


def test_type_and_section_errors():
    with pytest.raises(ConfigError, match="train.epochs"):
        load_config(None, ["train.epochs=many"])
    with pytest.raises(ConfigError, match="section"):
        load_config(None, ["optim=3"])
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("optim.lr")


def test_free_form_sections_accept_any_key():
    cfg = load_config(None, ["model.args.anything=3", "data.builtin.n_train=5"])
    assert cfg.model.args.anything == 3 and cfg.data.builtin.n_train == 5


def test_base_cycle_and_missing_base_are_clear(tmp_path):
    write(tmp_path / "x.yaml", "_base_: y.yaml\n")
    write(tmp_path / "y.yaml", "_base_: x.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "x.yaml")
    write(tmp_path / "z.yaml", "_base_: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml"):
        load_config(tmp_path / "z.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "absent.yaml")


def test_dump_round_trip(tmp_path):
    cfg = load_config(None, ["optim.lr=0.25", "model.args.k=[1, 2]"])
    dump_config(cfg, tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again.to_dict() == cfg.to_dict()
    assert not list(tmp_path.glob("*.tmp"))


def test_overrides_do_not_mutate_input():
    base = {"optim": {"lr": 1.0}}
    out = apply_overrides(base, ["optim.lr=2"])
    assert base["optim"]["lr"] == 1.0 and out["optim"]["lr"] == 2


def recipes():
    return sorted(p for p in CONFIG_ROOT.glob("*/*.yaml") if not p.name.startswith("_"))


@pytest.mark.parametrize("path", recipes(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_recipe_loads_and_names_a_registered_model_and_task(path):
    from restoration.registry import MODELS, TASKS

    cfg = load_config(path)
    assert cfg.task == path.parent.name
    assert cfg.task in TASKS.names()
    assert cfg.model.name in MODELS.names(), f"{path}: unknown model {cfg.model.name}"


def test_every_recipe_has_a_cpu_sibling_and_each_task_default_is_cpu_sized():
    from restoration.registry import TASKS

    # *_pretrained.yaml recipes (of the shipped weights) are CPU-sized themselves
    full = [p for p in recipes() if not p.stem.endswith(("_cpu", "_pretrained"))]
    missing = [p.name for p in full if not p.with_name(p.stem + "_cpu.yaml").is_file()]
    assert not missing, f"recipes without a *_cpu.yaml sibling: {missing}"
    for name in ("dehaze", "derain", "stereo_jscc"):
        default = TASKS.get(name).default_config
        assert default.endswith("_cpu.yaml")
        cfg = load_config(CONFIG_ROOT / default)
        assert cfg.data.root is None  # built-in data


def test_task_plugins_install_under_restoration_not_as_top_level_tasks(tmp_path):
    # the tasks/ folder is installed as restoration.tasks (setup.cfg package_dir), so a
    # generic top-level `tasks` never lands in site-packages; run outside the repo,
    # where the checkout's own folder is not on sys.path
    import subprocess
    import sys

    code = ("import importlib.util, restoration.registry as r; "
            "assert importlib.util.find_spec('tasks') is None; "
            "import restoration.tasks; print(','.join(r.list_tasks()))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert {"dehaze", "derain", "stereo_jscc"} <= set(out.stdout.strip().split(","))
