"""The layout's promises (docs/ENGINE.md, ../shared/ARCHITECTURE.md): the layering runs one
way, and each shared job has one owner that behaves as documented."""
import ast
from pathlib import Path

import pytest
import torch

import restoration
from restoration.checkpoint import atomic_save, load_model, weights_from
from restoration.errors import UserError
from restoration.models._layers import pad_to_multiple

PKG = Path(restoration.__file__).resolve().parent

# Floors, bottom first: a module may import from its own floor or one below, never above.
FLOORS = [
    {"errors", "atomic", "config", "registry", "metrics", "spiking", "runtime", "checkpoint", "energy", "seedstats"},
    {"models", "data", "losses", "pretrained"},
    {"engine"},
    {"benchmark"},
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path):
    """Every restoration module ``path`` imports, at any depth (lazy imports count too)."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = (package[:len(package) - node.level + 1] if node.level else [])
            target = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:  # `from . import x` names a submodule when x is one
                sub = f"{target}.{alias.name}"
                yield sub if _is_module(sub) else target
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split("."))
    return (PKG.parent / rel).with_suffix(".py").is_file() or (PKG.parent / rel / "__init__.py").is_file()


def _floor(module: str):
    top = module.split(".")[1] if module.count(".") else None
    return next((i for i, f in enumerate(FLOORS) if top in f), None)


def _graph():
    graph = {}
    for path in PKG.rglob("*.py"):
        if "tasks" in path.relative_to(PKG).parts[:1]:
            continue  # the task plugins sit on top of everything (they live in tasks/)
        graph[_module_name(path)] = {m for m in _imports(path) if m.startswith("restoration.")}
    return graph


def test_every_module_has_a_floor():
    tops = {m.split(".")[1] for m in _graph() if m.count(".")}
    assert tops - set().union(*FLOORS) == set(), "a new top-level module: give it a floor in FLOORS"


def test_layering_runs_one_way():
    wrong = []
    for src, targets in _graph().items():
        for tgt in targets:
            fs, ft = _floor(src), _floor(tgt)
            if fs is not None and ft is not None and ft > fs:
                wrong.append(f"{src} -> {tgt}")
    assert wrong == [], "imports from a floor above: " + ", ".join(sorted(wrong))


def test_no_two_modules_import_each_other():
    graph = _graph()
    loops = sorted({tuple(sorted((a, b))) for a, ts in graph.items() for b in ts
                    if b != a and a in graph.get(b, ()) and not (a.startswith(b + ".") or b.startswith(a + "."))})
    assert loops == [], f"import loops: {loops}"


def _code_strings(path: Path):
    """String constants of a module's code: docstrings and help texts (which may name a task
    as an example) are left out, comparisons and table keys stay."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body
            and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.lineno, node.value


def test_no_library_module_names_a_task():
    """Task knowledge lives in the plugins: no module of the library (the models aside, which
    are architectures) holds a task's name as a value, as in ``task == "stereo_jscc"``."""
    tasks = set(restoration.list_tasks())
    found = [f"{path.relative_to(PKG)}:{line} {value!r}" for path in PKG.rglob("*.py")
             if path.relative_to(PKG).parts[0] not in ("models", "tasks")
             for line, value in _code_strings(path) if value in tasks]
    assert found == [], "library code naming a task: " + ", ".join(found)


# -- pad_to_multiple: the one padding rule ---------------------------------------------

def test_pad_to_multiple():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6)
    assert pad_to_multiple(x, 4) .shape == (2, 3, 8, 8)
    y = pad_to_multiple(x, 4)
    assert torch.equal(y[..., :5, :6], x)
    assert torch.equal(y[..., 5, :6], x[..., 3, :])  # reflect: row 5 mirrors row 3
    assert pad_to_multiple(x, 1) is x and pad_to_multiple(x, None) is x
    assert pad_to_multiple(x[:, :, :2, :2], 8).shape == (2, 3, 8, 8)  # too small to reflect: replicate
    pair = torch.rand(1, 2, 3, 7, 9)  # leading dims (stereo views) are kept
    z = pad_to_multiple(pair, 8, mode="replicate")
    assert z.shape == (1, 2, 3, 8, 16) and torch.equal(z[..., 7, :9], pair[..., 6, :])


# -- load_model: the one way back from a checkpoint to a model -------------------------

def _checkpoint(tmp_path, name="esdnet_tiny", ema=False):
    torch.manual_seed(0)
    model = restoration.build_model(name)
    ck = {"model": model.state_dict(), "config": {"model": {"name": name, "args": {}}}}
    if ema:
        ck["ema"] = {k: v + 1 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    return model, atomic_save(ck, tmp_path / f"{name}.pth"), ck


def test_load_model_rebuilds_the_saved_model(tmp_path):
    model, path, _ = _checkpoint(tmp_path)
    got = load_model(path)
    assert type(got) is type(model) and not got.training
    for (k, a), b in zip(model.state_dict().items(), got.state_dict().values()):
        assert torch.equal(a, b), k


def test_load_model_prefers_ema_weights(tmp_path):
    model, path, ck = _checkpoint(tmp_path, ema=True)
    got = load_model(path)
    key = next(k for k, v in ck["model"].items() if v.is_floating_point())
    assert torch.equal(got.state_dict()[key], ck["ema"][key]) and torch.equal(weights_from(ck)[key], ck["ema"][key])


def test_load_model_errors_name_the_file_and_model(tmp_path):
    _, path, ck = _checkpoint(tmp_path)
    from restoration.config import Config

    with pytest.raises(UserError, match=r"esdnet_tiny.pth does not fit model 'dehazesnn_s'"):
        load_model(path, config=Config({"model": {"name": "dehazesnn_s", "args": {}}}))
    with pytest.raises(UserError, match=r"from.pth does not fit"):  # an already read dict names its source
        load_model(ck, config=Config({"model": {"name": "dehazesnn_s", "args": {}}}), source=tmp_path / "from.pth")
    bare = atomic_save({"model": ck["model"]}, tmp_path / "bare.pth")
    with pytest.raises(UserError, match="does not say which model"):
        load_model(bare)
    assert type(load_model(bare, model_name="esdnet_tiny")).__name__ == "ESDNet"


def test_set_threads(monkeypatch):
    from restoration.runtime import default_threads, set_threads

    old = torch.get_num_threads()
    try:
        assert set_threads(1) == 1
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        assert set_threads() == default_threads() >= 1
    finally:
        torch.set_num_threads(old)
