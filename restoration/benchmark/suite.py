"""What the benchmark compares, per task, as the task plugins declare it (``benchmark_suite``):
the models and their recipes (:data:`SUITES`, :data:`EXTRA_SPECS`), the stated size, the
budgets every model of a task shares (:data:`BUDGETS`), and the recipe of one benchmarked
model under a budget (:func:`build_bench_config`). Names no task: it asks the registry."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

from ..engine.task import ModelSpec
from ..config import CONFIG_ROOT, Config, load_config


class _TaskTable(Mapping):
    """``{task: value}`` read from the registered task plugins' ``benchmark_suite``: the
    knowledge stays in each plugin, the benchmark only asks. ``value(suite)`` gives the
    entry; ``has(suite)`` (default: every suite) which tasks appear. Entries set on the
    table (tests do) shadow the plugin's until deleted."""

    def __init__(self, value: Callable[[Any], Any], has: Callable[[Any], bool] = lambda suite: True):
        self._value, self._has, self._set = value, has, {}

    @staticmethod
    def _suites() -> Dict[str, Any]:
        from ..registry import TASKS

        out = {}
        for name in TASKS.names():
            suite = getattr(TASKS.get(name), "benchmark_suite", None)
            if suite is not None:
                out[name] = suite
        return out

    def _items(self) -> Dict[str, Any]:
        items = {t: self._value(s) for t, s in self._suites().items() if self._has(s)}
        items.update(self._set)
        return items

    def __getitem__(self, task):
        return self._items()[task]

    def __iter__(self):
        return iter(self._items())

    def __len__(self):
        return len(self._items())

    def __setitem__(self, task, value):
        self._set[task] = value

    def __delitem__(self, task):
        del self._set[task]


# Per task, from its plugin (tasks/<name>.py, ``benchmark_suite``): the suite (spiking
# model, ANN twin, ANN baseline), further models --models may name, and the size at which
# cost and speed are stated (a stereo item is a pair of two such views).
SUITES: Mapping[str, List[ModelSpec]] = _TaskTable(lambda s: list(s.models))
EXTRA_SPECS: Mapping[str, List[ModelSpec]] = _TaskTable(lambda s: list(s.extra_models), lambda s: bool(s.extra_models))


def task_specs(task: str, models: Optional[Sequence[str]] = None) -> List[ModelSpec]:
    """The models benchmarked for ``task``: its suite, or those of ``models`` (in that
    order) that the task knows (its suite and :data:`EXTRA_SPECS`)."""
    if not models:
        return list(SUITES[task])
    known = {s.name: s for s in SUITES[task] + EXTRA_SPECS.get(task, [])}
    return [known[m] for m in models if m in known]


STATED_SIZE: Mapping[str, int] = _TaskTable(lambda s: int(s.stated_size))


def _budget_table(budget: str) -> Mapping[str, Any]:
    return _TaskTable(lambda s: s.budgets[budget], lambda s: budget in s.budgets)


MICRO_SHARE = {"patch_size": 32, "batch_size": 2, "epochs": 1, "steps": 2,
               "builtin": {"n_train": 4, "n_test": 2, "train_size": 48, "test_size": [32, 48]}}

_BASE_BUDGETS: Dict[str, Dict[str, Any]] = {
    "quick": {
        "label": "QUICK budget: a smoke-level comparison (150-200 optimiser steps per model, far from converged)",
        "speed": {"warmup": 2, "repeats": 5, "throughput_batch": 4},
        "max_test_images": None,
    },
    "full": {
        "label": "FULL budget: each task's shipped CPU recipe (configs/<task>/*_cpu.yaml), same for all its models",
        "speed": {"warmup": 3, "repeats": 10, "throughput_batch": 8},
        "max_test_images": None,
    },
    "micro": {
        "label": "MICRO budget: a few iterations on tiny images (a test of the tool, not a result)",
        "speed": {"warmup": 1, "repeats": 2, "throughput_batch": 2},
        "max_test_images": 2,
        "stated_size": 32,
    },
}
# A budget a plugin declares that is not above (e.g. stereo_jscc's "authors") takes its label
# and timing settings from the plugin's share: keys "label" and "speed", beside crop and batch.
_PLUGIN_BUDGET_SPEED = {"warmup": 1, "repeats": 3, "throughput_batch": 2}


class _Budgets(Mapping):
    """``{budget: {'label', 'tasks', 'speed', 'max_test_images'[, 'stated_size']}}``: the
    benchmark's own budgets, then those only task plugins declare. Each entry is built once,
    so that what tests set on one stays."""

    def __init__(self):
        self._made: Dict[str, Dict[str, Any]] = {}

    def _names(self) -> List[str]:
        declared = [b for suite in _TaskTable._suites().values() for b in suite.budgets]
        return list(_BASE_BUDGETS) + [b for b in dict.fromkeys(declared) if b not in _BASE_BUDGETS]

    def __getitem__(self, name: str) -> Dict[str, Any]:
        if name not in self._made:
            if name not in self._names():
                raise KeyError(name)
            if name == "micro":
                tasks = _TaskTable(lambda s: MICRO_SHARE)
            else:
                tasks = _budget_table(name)
            entry = dict(_BASE_BUDGETS.get(name) or {}, tasks=tasks)
            if name not in _BASE_BUDGETS:  # declared by plugins: the first share that says
                shares = [s for s in tasks.values() if isinstance(s, Mapping)]
                entry["label"] = next((s["label"] for s in shares if s.get("label")), f"{name} budget")
                entry["speed"] = next((dict(s["speed"]) for s in shares if s.get("speed")), _PLUGIN_BUDGET_SPEED)
                entry["max_test_images"] = None
            self._made[name] = entry
        return self._made[name]

    def __iter__(self):
        return iter(self._names())

    def __len__(self):
        return len(self._names())


# What every model of a task shares, per budget: the labels, timing settings and caps are
# the benchmark's (or, for a budget only plugins declare, theirs); each task's share (crop,
# batch, epochs, steps) is its plugin's (``benchmark_suite.budgets``; ``None``: the task's
# first recipe's own). "quick" is a smoke-level comparison; "micro", the same for every
# task, exists for the tests.
BUDGETS: Mapping[str, Dict[str, Any]] = _Budgets()


def snr_sweep(task: str) -> Sequence[float]:
    """The channel SNRs (dB) at which ``task``'s models are evaluated again (none: empty)."""
    return tuple(_TaskTable._suites()[task].snr_sweep)


# -- configuration -------------------------------------------------------------------

SEED0 = 1234  # seed k of a --seeds run is SEED0 + k (weights, data order, crops)


def budget_overrides(spec: ModelSpec, task: str, budget: str, first_recipe: str, device: str = "auto",
                     data_root: Optional[str] = None, seed: int = SEED0) -> Dict[str, Any]:
    """Dotted config overrides that make every model of ``task`` train on the same data
    with the same budget. The recipe's warm-up keeps its fraction of the run; a budget's
    ``lr_scale`` multiplies the recipe's learning rates (main and neuron group)."""
    own = load_config(CONFIG_ROOT / spec.recipe)
    if task not in BUDGETS[budget]["tasks"]:
        raise ValueError(f"budget {budget!r} covers the tasks {', '.join(BUDGETS[budget]['tasks'])}, not {task!r}; "
                         f"choose another --budget (quick, full)")
    b = BUDGETS[budget]["tasks"][task]
    if b is None:  # the task's first recipe defines the budget
        ref = load_config(CONFIG_ROOT / first_recipe)
        b = {"patch_size": ref.data.patch_size, "batch_size": ref.data.batch_size, "epochs": ref.train.epochs,
             "steps": ref.train.max_steps_per_epoch, "builtin": dict(ref.data.builtin or {}),
             "repeat": ref.data.repeat}
    epochs = int(b["epochs"])
    warm = float(own.sched.warmup_epochs or 0) / max(1, int(own.train.epochs)) * epochs
    o: Dict[str, Any] = {
        "task": task, "model.name": spec.name, "seed": int(seed), "device": device,
        "data.root": data_root, "data.patch_size": b["patch_size"], "data.batch_size": b["batch_size"],
        "data.num_workers": 0, "data.repeat": int(b.get("repeat") or 1), "data.max_valid_images": 1,
        "data.valid_mode": "test",
        "train.epochs": epochs, "train.max_steps_per_epoch": b.get("steps"), "train.eval_freq": epochs,
        "train.eval_last_fraction": 1.0, "train.keep_last_epochs": 0, "train.sample_images": 0,
        "train.log_interval": max(10, int(b.get("steps") or 50) // 2), "sched.warmup_epochs": warm,
        "eval.final": "last", "eval.ciede2000": False, "eval.ms_ssim": True, "eval.save_images": False,
    }
    if "builtin" in b:
        o["data.builtin"] = {"_delete_": True, **dict(b["builtin"])}
    scale = float(b.get("lr_scale") or 1.0)
    if scale != 1.0:
        o["optim.lr"] = float(own.optim.lr) * scale
        if own.optim.neuron_lr is not None:
            o["optim.neuron_lr"] = float(own.optim.neuron_lr) * scale
    return o


def build_bench_config(spec: ModelSpec, task: str, budget: str, device: str = "auto",
                       data_root: Optional[str] = None, extra: Sequence[str] = (), seed: int = SEED0) -> Config:
    """The recipe of ``spec`` under the budget's overrides, then the user's ``--set``."""
    first = SUITES[task][0].recipe
    cfg = load_config(CONFIG_ROOT / spec.recipe, budget_overrides(spec, task, budget, first, device, data_root, seed))
    if extra:
        cfg = load_config(None, list(extra), base=cfg.to_dict())
    return cfg


def stated_item(task: str, size) -> str:
    """'one 256x256 image', or what the task's plugin says one item at the stated size is."""
    from ..registry import TASKS

    if task in TASKS:
        return TASKS.get(task)().stated_item(size)
    return f"one {size}x{size} image"


def task_for_model(name: str):
    """The task plugin that runs model ``name`` (the task whose recipes name it), built; a
    plain image-to-image task for a model no recipe names."""
    from ..engine.runner import home_task
    from ..engine.task import PairedImageTask
    from ..registry import build_task

    task = home_task(name)
    return build_task(task) if task else PairedImageTask()
