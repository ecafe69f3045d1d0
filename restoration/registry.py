"""Name -> object registries for models, tasks and datasets.

Built-in entries register themselves when their module is imported. The registry
imports those modules lazily, on the first lookup:

* models: every module in ``restoration/models/``;
* tasks: every module in the top-level ``tasks/`` folder, installed as ``restoration.tasks`` (a new task is one new
  file there, no edit anywhere else);
* datasets: every module in ``restoration/data/``.

Third-party packages plug in through the entry-point groups ``restoration.models``,
``restoration.tasks`` and ``restoration.datasets``: each entry point names a module
that is imported (and registers its objects on import), e.g. in a plugin's setup.cfg::

    [options.entry_points]
    restoration.tasks =
        denoise = my_plugin.denoise
"""
from __future__ import annotations

import difflib
import importlib
import pkgutil
import warnings
from importlib import metadata
from typing import Any, Callable, Dict, Iterable, List, Optional


class UnknownNameError(KeyError):
    """An unknown registry name; the message lists what is registered."""

    def __str__(self) -> str:  # KeyError would show the repr, newlines escaped
        return str(self.args[0])


class Registry:
    """A mapping from lower-snake-case names to objects (classes or factories)."""

    def __init__(self, kind: str, packages: Iterable[str] = (), entry_point_group: Optional[str] = None):
        self.kind = kind
        self._packages = tuple(packages)
        self._entry_point_group = entry_point_group
        self._items: Dict[str, Any] = {}
        self._loaded = False
        self._failed: Dict[str, str] = {}  # module -> error, for the "unknown name" message

    # -- registration ---------------------------------------------------------------
    def register(self, name: Optional[str] = None, obj: Any = None, *, force: bool = False):
        """Register ``obj`` under ``name``; usable as ``@REG.register()`` or ``@REG.register('x')``."""
        if obj is not None:
            self._add(name or obj.__name__, obj, force)
            return obj

        def deco(o):
            self._add(name or o.__name__, o, force)
            return o

        return deco

    def _add(self, name: str, obj: Any, force: bool) -> None:
        if name != name.lower() or " " in name:
            raise ValueError(f"{self.kind} name {name!r} must be lower snake case")
        if name in self._items and self._items[name] is not obj and not force:
            raise KeyError(f"{self.kind} {name!r} is already registered (by {self._items[name]!r}); "
                           f"pass force=True to replace it")
        self._items[name] = obj

    # -- lookup ---------------------------------------------------------------------
    def _load_builtin(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # set first: modules imported below call register()
        # One broken module (a plugin, a file being edited) must not hide every other
        # entry: its error is kept, warned about, and repeated if its names are asked for.
        for pkg_name in self._packages:
            pkg = importlib.import_module(pkg_name)
            for info in pkgutil.iter_modules(pkg.__path__):
                if not info.name.startswith("_"):
                    self._import(f"{pkg_name}.{info.name}", lambda m=f"{pkg_name}.{info.name}": importlib.import_module(m))
        if self._entry_point_group:
            for ep in metadata.entry_points(group=self._entry_point_group):
                self._import(f"{ep.value} (entry point {ep.name!r})", ep.load)

    def _import(self, what: str, load: Callable) -> None:
        try:
            load()
        except Exception as e:  # noqa: BLE001 - reported, not swallowed
            self._failed[what] = f"{type(e).__name__}: {e}"
            warnings.warn(f"{self.kind} registry: could not import {what}: {self._failed[what]}", stacklevel=3)

    def get(self, name: str) -> Any:
        self._load_builtin()
        if name not in self._items:
            known = sorted(self._items)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            broken = "".join(f"\n  {m} failed to import: {err}" for m, err in self._failed.items())
            raise UnknownNameError(f"unknown {self.kind} {name!r}.{hint} Registered {self.kind}s: "
                           f"{', '.join(known) or '(none)'}{broken}")
        return self._items[name]

    def names(self) -> List[str]:
        self._load_builtin()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load_builtin()
        return name in self._items

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._items)} entries)"


MODELS = Registry("model", packages=["restoration.models"], entry_point_group="restoration.models")
TASKS = Registry("task", packages=["restoration.tasks"], entry_point_group="restoration.tasks")
DATASETS = Registry("dataset", packages=["restoration.data"], entry_point_group="restoration.datasets")


def build_model(name: str, **overrides) -> "Any":
    """Build a registered model by name; keyword overrides go to its constructor."""
    factory: Callable = MODELS.get(name)
    return factory(**overrides)


def list_models() -> List[str]:
    return MODELS.names()


def build_task(name: str, **overrides) -> Any:
    """Build a registered task plugin by name."""
    return TASKS.get(name)(**overrides)


def list_tasks() -> List[str]:
    return TASKS.names()
