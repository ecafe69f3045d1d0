"""YAML recipes: ``_base_`` inheritance, dotted overrides, key validation.

A recipe is a YAML mapping. ``_base_: other.yaml`` (or a list of files, merged in
order) names recipes it starts from, resolved relative to the recipe's own folder;
its own keys are then merged in depth-first (mappings merge, everything else
replaces; a mapping with ``_delete_: true`` replaces the inherited one whole). ``--set optim.lr=2e-4`` style overrides go through :func:`apply_overrides`;
values are parsed as YAML (``1e-3``, ``true``, ``[0.9, 0.999]``, ``null``).

Every key is checked against :data:`DEFAULTS` (the schema and default values). A
misspelt key raises :class:`ConfigError` naming the key, the file it came from and
the nearest valid key. Sections listed in :data:`FREE_FORM` (constructor arguments,
generator options) take any key; they are checked where they are used.

    cfg = load_config("configs/derain/esdnet_cpu.yaml", ["optim.lr=2e-4"])
    cfg.optim.lr, cfg["data"]["patch_size"]
"""
from __future__ import annotations

import copy
import difflib
import os
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import yaml

CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


def yaml_load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)


class ConfigError(ValueError):
    """A recipe or override that cannot be used; the message names the key and the fix."""


class Config(dict):
    """A dict whose keys also read as attributes (``cfg.optim.lr``); nested dicts too."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for k, v in list(self.items()):
            if isinstance(v, Mapping) and not isinstance(v, Config):
                dict.__setitem__(self, k, Config(v))

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"config has no key {key!r}") from None

    def __setattr__(self, key, value):
        self[key] = value

    def __setitem__(self, key, value):
        if isinstance(value, Mapping) and not isinstance(value, Config):
            value = Config(value)
        super().__setitem__(key, value)

    def __deepcopy__(self, memo):
        return Config(copy.deepcopy(dict(self), memo))

    def to_dict(self) -> Dict[str, Any]:
        return {k: v.to_dict() if isinstance(v, Config) else copy.deepcopy(v) for k, v in self.items()}

    def get_path(self, dotted: str, default=None):
        node: Any = self
        for part in dotted.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node


# The schema: every valid key with its default. Comments are the reference for
# docs/ENGINE.md. ``None`` means "unset / off / chosen at run time".
DEFAULTS: Dict[str, Any] = {
    "task": None,               # task plugin name: dehaze | derain | stereo_jscc | <plugin>
    "exp": None,                # experiment name; output goes to <output_root>/<task>/<exp>
    "output_root": "runs",      # folder that holds <task>/<exp>
    "seed": 1234,
    "device": "auto",           # auto | cpu | cuda | cuda:N
    "deterministic": False,     # torch.use_deterministic_algorithms (slower on GPU)
    "model": {
        "name": None,           # a registered model (restoration.list_models())
        "args": {},             # constructor keyword arguments (checked against its signature)
        "size_multiple": None,  # pad inputs to a multiple of this; None: model attribute or 1
    },
    "data": {
        "root": None,           # dataset folder; None: the task's built-in generated set
        "builtin": {},          # options for the built-in generator (restoration.data.synthetic)
        "train_split": "train",
        "test_split": "test",
        "valid_split": None,    # split validated on during training (picks 'best'); None: test_split
        "patch_size": 64,       # training crop size
        "batch_size": 8,        # global batch size (split across DDP processes)
        "num_workers": 0,
        "edge_decay": 0.0,      # paired training crops: bias towards the image border (DehazeSNN recipes)
        "only_h_flip": False,   # paired training augmentation: no rotations, horizontal flips only
        "repeat": 1,            # iterate the training set this many times per epoch (small sets)
        "valid_mode": "test",   # test: full images | valid: centre crops of valid_patch_size
        "valid_patch_size": None,  # None: patch_size
        "max_valid_images": None,  # evaluate at most this many images during training
        "args": {},             # extra keyword arguments for the task's dataset class
    },
    "optim": {
        "name": "adamw",        # adamw | adam | sgd
        "lr": 1e-3,
        "weight_decay": 0.0,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "momentum": 0.9,        # sgd only
        "amsgrad": False,
        "no_decay_1d": False,   # biases and norm weights (dim < 2) get no weight decay (DehazeSNN recipes)
        "neuron_lr": None,      # lr of spiking-neuron parameters (OLIF tau/Vth, PLIF w); None: lr
        "neuron_weight_decay": 0.0,
    },
    "sched": {
        "name": "cosine",       # cosine | constant
        "warmup_epochs": 0,     # may be fractional
        "warmup_lr": 0.0,       # lr at the first warm-up step (absolute)
        "min_lr": 0.0,          # lr at the end of the cosine (absolute; neuron group scaled alike)
        "per_step": True,       # update every optimiser step (DehazeSNN) or every epoch (ESDNet)
    },
    "loss": {
        "terms": [{"name": "l1", "weight": 1.0}],  # weighted sum; see restoration.losses.LOSSES
    },
    "train": {
        "epochs": 10,
        "accumulation_steps": 1,
        "clip_grad": None,      # max gradient norm; None: off
        "amp": True,            # mixed precision (CUDA only; ignored on CPU)
        "ema_decay": None,      # e.g. 0.999: keep an exponential moving average, evaluate with it
        "eval_freq": 1,         # validate every N epochs (and at the last epoch)
        "eval_last_fraction": 1.0,  # DehazeSNN: also validate every epoch after this fraction of epochs
        "keep_last_epochs": 0,  # keep <model>_epoch_XXX.pth for the last N epochs
        "log_interval": 20,     # steps between log lines when stderr is not a terminal
        "max_steps_per_epoch": None,
        "sample_images": 2,     # validation samples written to TensorBoard
        "fine_tune": {          # --fine-tune: DehazeSNN's recipe from a base checkpoint
            "lr_scale": 0.1,
            "warmup_scale": 0.5,
            "epochs_scale": 0.2,
        },
    },
    "eval": {
        "metric": "psnr",       # the score that picks <model>_best.pth (higher is better)
        "y_channel": None,      # None: the task's protocol; True: PSNR/SSIM on the Y of YCbCr
        "crop_border": None,    # None: the task's protocol; pixels removed from each border
        "tile": None,           # tile size for tiled inference; None: whole images
        "tile_overlap": 32,
        "ms_ssim": True,
        "ciede2000": True,
        "save_images": True,
        "final": "last",        # weights behind the table printed at the end: last | best
    },
    "task_args": {},            # options for the task plugin (see its docstring)
}

# Numeric keys with a range: (lowest allowed, highest allowed, what the value means).
# A value outside it would fail deep inside torch; say so up front instead.
RANGES = {
    "data.patch_size": (1, None, "the training crop size in pixels"),
    "data.valid_patch_size": (1, None, "the validation crop size in pixels"),
    "data.batch_size": (1, None, "images per optimiser step"),
    "data.num_workers": (0, None, "data loader processes"),
    "data.repeat": (1, None, "passes over the training set per epoch"),
    "data.max_valid_images": (1, None, "validation images"),
    "optim.lr": (0, None, "the learning rate"),
    "optim.weight_decay": (0, None, "the weight decay"),
    "optim.neuron_lr": (0, None, "the neurons' learning rate"),
    "sched.warmup_epochs": (0, None, "warm-up epochs"),
    "train.epochs": (1, None, "the number of epochs"),
    "train.accumulation_steps": (1, None, "batches per optimiser step"),
    "train.clip_grad": (0, None, "the gradient-norm limit"),
    "train.ema_decay": (0, 1, "the EMA decay"),
    "train.eval_freq": (1, None, "epochs between validations"),
    "train.keep_last_epochs": (0, None, "kept epoch checkpoints"),
    "train.log_interval": (1, None, "steps between log lines"),
    "train.max_steps_per_epoch": (1, None, "steps per epoch"),
    "eval.tile": (8, None, "the tile size in pixels"),
    "eval.tile_overlap": (0, None, "the tile overlap in pixels"),
}


def check_ranges(cfg: Mapping) -> None:
    """Raise :class:`ConfigError` for a number outside its range (see ``RANGES``)."""
    for path, (lo, hi, what) in RANGES.items():
        node: Any = cfg
        for part in path.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is None or isinstance(node, bool) or not isinstance(node, (int, float)):
            continue
        if (lo is not None and node < lo) or (hi is not None and node > hi) or node != node:
            if path in ("optim.lr", "optim.neuron_lr") and node == 0:
                continue
            bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
            raise ConfigError(f"{path}={node} is out of range: {what} must be {bound}; "
                              f"e.g. --set {path}={DEFAULTS_FLAT.get(path) or max(lo, 1)}")


# Sections that accept any key (checked where used: model constructor, generator...).
FREE_FORM = {"model.args", "data.builtin", "data.args", "task_args"}


def _flat(schema: Mapping, prefix: str = "") -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in schema.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _suggest(key: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


DEFAULTS_FLAT = _flat(DEFAULTS)


def _all_paths(schema: Mapping, prefix: str = "") -> List[str]:
    out = []
    for k, v in schema.items():
        p = f"{prefix}{k}"
        out.append(p)
        if isinstance(v, Mapping) and p not in FREE_FORM:
            out.extend(_all_paths(v, p + "."))
    return out


def validate(cfg: Mapping, schema: Mapping = DEFAULTS, prefix: str = "", source: str = "") -> None:
    """Raise :class:`ConfigError` for a key that the schema does not know, or a section
    given a non-mapping value."""
    where = f" (in {source})" if source else ""
    for k, v in cfg.items():
        path = f"{prefix}{k}"
        if k == DELETE_KEY:
            continue
        if k not in schema:
            valid = [f"{prefix}{s}" for s in schema]
            # compare full dotted names so that 'optim.lrr' suggests 'optim.lr'
            hint = _suggest(path, valid) or _suggest(path, _all_paths(DEFAULTS))
            raise ConfigError(f"unknown config key {path!r}{where}.{hint} "
                              f"Valid keys here: {', '.join(sorted(valid))}")
        if path in FREE_FORM:
            if v is not None and not isinstance(v, Mapping):
                raise ConfigError(f"config key {path!r}{where} must be a mapping, got {v!r}")
            continue
        if isinstance(schema[k], Mapping):
            if not isinstance(v, Mapping):
                raise ConfigError(f"config key {path!r}{where} is a section; set one of its keys "
                                  f"({', '.join(schema[k])}), e.g. {path}.{next(iter(schema[k]))}=...")
            validate(v, schema[k], path + ".", source)
        else:
            _check_type(path, schema[k], v, where)


def _check_type(path: str, default: Any, value: Any, where: str) -> None:
    if default is None or value is None:
        return
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, (int, float)):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    else:
        ok = True
    if not ok:
        raise ConfigError(f"config key {path!r}{where} expects a {type(default).__name__} "
                          f"(default {default!r}), got {value!r}")


DELETE_KEY = "_delete_"


def _strip_delete(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {k: _strip_delete(x) for k, x in v.items() if k != DELETE_KEY}
    return copy.deepcopy(v)


def merge(base: Mapping, over: Mapping) -> Dict[str, Any]:
    """Deep merge: mappings merge key by key, other values in ``over`` replace. A mapping
    in ``over`` with ``_delete_: true`` replaces the base mapping instead of merging."""
    out = copy.deepcopy(dict(base))
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            # _delete_ acts once, on what it replaces; kept while nothing is below it yet
            out[k] = _strip_delete(v) if v.get(DELETE_KEY) else merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def resolve_config_path(path: os.PathLike | str) -> Path:
    """A recipe path as given, or relative to the repository's ``configs/`` folder."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.is_absolute() and (CONFIG_ROOT / p).is_file():
        return CONFIG_ROOT / p
    raise ConfigError(f"config file {str(path)!r} not found (looked in the current folder and in "
                      f"{CONFIG_ROOT}); pass an existing .yaml file, e.g. "
                      f"configs/derain/esdnet_cpu.yaml")


def read_yaml(path: os.PathLike | str, _seen: Optional[Sequence[Path]] = None) -> Dict[str, Any]:
    """A recipe with its ``_base_`` chain merged in (no validation, no defaults)."""
    path = resolve_config_path(path).resolve()
    seen = list(_seen or [])
    if path in seen:
        chain = " -> ".join(str(p) for p in seen + [path])
        raise ConfigError(f"config _base_ cycle: {chain}; remove one of these _base_ entries")
    try:
        data = yaml_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file {path} must hold a mapping of keys, got {type(data).__name__}")
    bases = data.pop("_base_", None) or []
    if isinstance(bases, str):
        bases = [bases]
    merged: Dict[str, Any] = {}
    for b in bases:
        bp = Path(b)
        if not bp.is_absolute():
            bp = path.parent / bp
        if not bp.is_file():
            raise ConfigError(f"_base_ {b!r} of {path} not found (looked for {bp}); paths are "
                              f"relative to the file that names them")
        merged = merge(merged, read_yaml(bp, seen + [path]))
    try:
        validate(data, source=str(path))
    except ConfigError:
        raise
    return merge(merged, data)


def parse_override(item: str) -> tuple:
    """``'optim.lr=2e-4'`` -> ``('optim.lr', 0.0002)`` (value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value, e.g. optim.lr=2e-4")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError(f"override {item!r} has an empty key; write e.g. optim.lr=2e-4")
    try:
        value = yaml_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(cfg: Mapping, overrides: Iterable[str] | Mapping[str, Any]) -> Dict[str, Any]:
    """Apply dotted ``key=value`` overrides; an unknown key raises :class:`ConfigError`."""
    items = overrides.items() if isinstance(overrides, Mapping) else (parse_override(o) for o in overrides)
    out = copy.deepcopy(dict(cfg))
    for key, value in items:
        nested: Any = value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        try:
            validate(nested, source=f"override {key}={value!r}")
        except ConfigError as e:
            raise ConfigError(str(e)) from None
        out = merge(out, nested)
    return out


def load_config(path: Optional[os.PathLike | str] = None,
                overrides: Iterable[str] | Mapping[str, Any] = (),
                base: Optional[Mapping] = None) -> Config:
    """Defaults <- ``base`` <- recipe at ``path`` (with its ``_base_`` chain) <- overrides."""
    cfg = merge(DEFAULTS, base or {})
    if path is not None:
        cfg = merge(cfg, read_yaml(path))
    cfg = _strip_delete(apply_overrides(cfg, overrides))
    validate(cfg)
    check_ranges(cfg)
    return Config(cfg)


def dump_config(cfg: Mapping, path: os.PathLike | str) -> None:
    """Write ``cfg`` as YAML atomically (temporary name, then rename)."""
    data = cfg.to_dict() if isinstance(cfg, Config) else dict(cfg)
    from .atomic import write_text

    write_text(path, yaml.safe_dump(data, sort_keys=False))
