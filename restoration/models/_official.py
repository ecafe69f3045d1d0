"""Loading checkpoints saved by the authors' own code into our models.

The releases store weights in several ways: a bare state dict; a dict holding it under
``'state_dict'`` (DehazeSNN, next to optimizer and scheduler states), ``'model'``
(AECR-Net, next to lists of PSNR/SSIM values), ``'params'`` / ``'params_ema'`` (BasicSR
style), ``'net'`` or ``'model_state_dict'`` (DHF-JSCC's ``main22.py``, next to the
optimizer state); keys prefixed with ``module.`` when the model was wrapped in
``DataParallel``. :func:`read_state_dict` finds the weights in any of these;
:func:`load_official` builds a registered model and loads them with ``strict=True``,
failing with one message that names the file and the keys that do not fit.
"""
from __future__ import annotations

import os
import pickle
from typing import Dict, List, Mapping, Optional

import torch
import torch.nn as nn

# Where the weights may sit inside a checkpoint dict, tried in this order.
WRAPPER_KEYS = ("state_dict", "model", "params_ema", "params", "net", "network", "model_state_dict")
# Prefixes added by wrappers: DataParallel / DistributedDataParallel, torch.compile.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")
# Names of the authors' releases that are not registered model names.
RELEASE_NAMES = {"dhf_jscc": "dhf_jscc_authors"}  # SunnyYoshimitsu/DHF-JSCC Image_coding(M=256, N2=25)


def _numpy_safe_globals() -> List[type]:
    """numpy scalar types, which training scripts often save next to the weights
    (a list of PSNR values) and which ``weights_only`` loading refuses by default."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return []
    core = getattr(np, "_core", None) or np.core
    found = [core.multiarray.scalar, np.dtype]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found += [v for v in vars(dtypes).values() if isinstance(v, type) and issubclass(v, np.dtype)]
    return found


def _is_state_dict(obj) -> bool:
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()))


def _unwrap(obj, depth: int = 0) -> Optional[Dict[str, torch.Tensor]]:
    if isinstance(obj, nn.Module):
        return obj.state_dict()
    if _is_state_dict(obj):
        return dict(obj)
    if isinstance(obj, Mapping) and depth < 2:
        for key in WRAPPER_KEYS:
            if key in obj:
                found = _unwrap(obj[key], depth + 1)
                if found is not None:
                    return found
    return None


def strip_prefixes(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Remove a wrapper prefix (``module.``, ``_orig_mod.``) shared by every key."""
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if state_dict and all(k.startswith(prefix) for k in state_dict):
                state_dict = {k[len(prefix):]: v for k, v in state_dict.items()}
                changed = True
    return state_dict


def read_state_dict(path, map_location="cpu", weights_only: bool = True) -> Dict[str, torch.Tensor]:
    """The weights stored in the checkpoint file ``path``, unwrapped and without
    ``module.`` prefixes.

    ``weights_only=True`` (default) unpickles tensors, containers and numpy scalars only,
    so a file cannot run code; pass ``False`` only for files you trust.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint file {path!r} does not exist; pass the path of a saved "
                                f".pth/.pt file")
    try:
        if weights_only:
            with torch.serialization.safe_globals(_numpy_safe_globals()):
                obj = torch.load(path, map_location=map_location, weights_only=True)
        else:
            obj = torch.load(path, map_location=map_location, weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ModuleNotFoundError) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = (" If the file comes from a source you trust, load it with weights_only=False."
                if weights_only else "")
        raise ValueError(f"could not read checkpoint {path!r}: {first_line}.{hint}") from e
    state_dict = _unwrap(obj)
    if state_dict is None:
        what = (f"a dict with keys {sorted(map(str, obj))[:12]}" if isinstance(obj, Mapping)
                else f"a {type(obj).__name__}")
        raise ValueError(f"checkpoint {path!r} holds {what} and no state dict: expected a bare state "
                         f"dict (name -> tensor) or one stored under one of the keys {list(WRAPPER_KEYS)}")
    return strip_prefixes(state_dict)


def _listing(keys: List[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... (+{len(keys) - limit} more)" if len(keys) > limit else "")


def state_dict_mismatch(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> Optional[str]:
    """``None`` when ``state_dict`` fits ``model`` exactly (names and shapes), else a
    description of the missing, unexpected and wrongly shaped keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
             for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if not (missing or unexpected or wrong):
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys: {_listing(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys: {_listing(unexpected)}")
    if wrong:
        parts.append(f"{len(wrong)} keys with another shape: {_listing(wrong, 4)}")
    return "; ".join(parts)


def _same_family(name: str, state_dict: Mapping[str, torch.Tensor]) -> Optional[str]:
    """Another registered model of the same family (dehazesnn_s vs _m) that the weights fit."""
    from ..registry import MODELS, build_model

    family, twin = name.split("_")[0], name.endswith("_ann")
    for other in MODELS.names():
        # same family, and an ANN twin only for a twin (their keys differ by the neurons)
        if other == name or other.split("_")[0] != family or other.endswith("_ann") != twin:
            continue
        try:
            if state_dict_mismatch(build_model(other), state_dict) is None:
                return other
        except Exception:  # noqa: BLE001 - a guess for the message only
            continue
    return None


def load_official(name: str, path, map_location="cpu", weights_only: bool = True, **overrides) -> nn.Module:
    """Build the registered model ``name`` (with ``overrides``) and load the weights of the
    checkpoint file ``path`` with ``strict=True``.

    Reads the authors' formats (see the module docstring). ``name`` is a registered model
    or a release name of :data:`RELEASE_NAMES` (``'dhf_jscc'``: the authors' DHF-JSCC).
    The model is returned in eval mode (authors' weights are for inference first); call
    ``.train()`` to fine-tune.
    """
    from ..registry import build_model

    name = RELEASE_NAMES.get(name, name)
    state_dict = read_state_dict(path, map_location=map_location, weights_only=weights_only)
    model = build_model(name, **overrides)
    problem = state_dict_mismatch(model, state_dict)
    if problem is not None:
        fits = _same_family(name, state_dict) if not overrides else None
        if fits:
            hint = f" The weights fit {fits!r}: use load_official({fits!r}, ...)."
        else:
            hint = f" Check that the file holds {name!r} weights"
            hint += (f" and that the overrides {overrides} match the configuration it was trained with."
                     if overrides else ".")
        raise ValueError(f"checkpoint {os.fspath(path)!r} does not fit model {name!r}: {problem}.{hint}")
    model.load_state_dict(state_dict, strict=True)
    return model.eval()
