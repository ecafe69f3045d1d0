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

or, with nothing installed, through files named in the environment variable
``RESTORATION_PLUGINS`` (paths separated by ``os.pathsep``), each imported once before
the first lookup of any registry::

    RESTORATION_PLUGINS=~/my_denoise.py python tools/train.py --task denoise ...
"""
from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import pkgutil
import sys
import warnings
from importlib import metadata
from typing import Any, Callable, Dict, Iterable, List, Optional


PLUGINS_ENV = "RESTORATION_PLUGINS"
_plugin_files_loaded: Dict[str, str] = {}  # path -> "" when imported, else the error


def load_plugin_files() -> Dict[str, str]:
    """Import every file of ``$RESTORATION_PLUGINS`` not imported yet (its objects register
    themselves); returns {path: error} of those that failed."""
    for raw in filter(None, os.environ.get(PLUGINS_ENV, "").split(os.pathsep)):
        path = os.path.abspath(os.path.expanduser(raw))
        if path in _plugin_files_loaded:
            continue
        _plugin_files_loaded[path] = ""
        name = "restoration_plugin_" + "".join(c if c.isalnum() else "_" for c in path)
        try:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"no such file (from ${PLUGINS_ENV})")
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # so that its classes pickle (worker processes)
            spec.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001 - reported, not swallowed
            _plugin_files_loaded[path] = f"{type(e).__name__}: {e}"
            sys.modules.pop(name, None)
            warnings.warn(f"plugin file {path} could not be imported: {_plugin_files_loaded[path]}", stacklevel=3)
    return {p: e for p, e in _plugin_files_loaded.items() if e}


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

    def _load(self) -> None:
        """The built-in modules and entry points once; plugin files whenever the variable
        names new ones (it may be set after the first lookup)."""
        self._load_builtin()
        for path, err in load_plugin_files().items():
            self._failed[f"{path} (${PLUGINS_ENV})"] = err

    def _import(self, what: str, load: Callable) -> None:
        try:
            load()
        except Exception as e:  # noqa: BLE001 - reported, not swallowed
            self._failed[what] = f"{type(e).__name__}: {e}"
            warnings.warn(f"{self.kind} registry: could not import {what}: {self._failed[what]}", stacklevel=3)

    def get(self, name: str) -> Any:
        self._load()
        if name not in self._items:
            known = sorted(self._items)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            broken = "".join(f"\n  {m} failed to import: {err}" for m, err in self._failed.items())
            raise UnknownNameError(f"unknown {self.kind} {name!r}.{hint} Registered {self.kind}s: "
                           f"{', '.join(known) or '(none)'}{broken}")
        return self._items[name]

    def names(self) -> List[str]:
        self._load()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load()
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


def build_model_from_config(cfg) -> Any:
    """``cfg.model.name`` with ``cfg.model.args``; a wrong argument names the valid ones."""
    import inspect
    import re

    from .errors import UserError

    name = cfg.model.name
    if not name:
        raise ValueError("no model given: set model.name in the recipe or pass --model")
    factory = MODELS.get(name)
    args = dict(cfg.model.args or {})
    try:
        sig = inspect.signature(factory)
        if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            import difflib

            for k in args:
                if k not in sig.parameters:
                    close = difflib.get_close_matches(k, list(sig.parameters), n=1)
                    hint = f" Did you mean {close[0]!r}?" if close else ""
                    raise ValueError(f"model {name!r} has no argument model.args.{k}.{hint} Its arguments: "
                                     f"{', '.join(sig.parameters) or 'none'}")
    except (TypeError, ValueError) as e:
        if "has no argument" in str(e):
            raise
    try:
        return build_model(name, **args)
    except TypeError as e:
        # a factory with **kwargs passes unknown keys on; the innermost constructor rejects them
        m = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        if not m or m.group(1) not in args:
            raise
        raise UserError(f"model {name!r} does not take model.args.{m.group(1)}; remove it from the recipe or "
                        f"the --set (see restoration/models/ for the arguments of {name!r})") from None


def list_models() -> List[str]:
    return MODELS.names()


def build_task(name: str, **overrides) -> Any:
    """Build a registered task plugin by name."""
    return TASKS.get(name)(**overrides)


def list_tasks() -> List[str]:
    return TASKS.names()
