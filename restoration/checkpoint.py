"""Checkpoint files, below the engine: written atomically, read with one clear error, and
turned back into a model.

* :func:`atomic_save`: a temporary name then a rename, so a crash never leaves a
  half-written file;
* :func:`load_checkpoint`: a path to the saved dict (a missing or damaged file is a user
  error, named);
* :func:`model_state_from`: the model weights of ours, of the seeds' (``state_dict``) or a
  bare state dict; :func:`weights_from`: the EMA weights when a checkpoint has them;
* :func:`load_model`: the model a checkpoint holds, rebuilt from its saved recipe (or one
  given) with those weights: the one place that does it for test, infer, the benchmark,
  the pretrained weights and the tools.

Run folders (``M_current/best/last.pth``, locks) are the engine's: ``engine/checkpoint.py``.
"""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import torch

from .atomic import temp_path
from .errors import UserError


def atomic_save(obj: Any, path: os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_checkpoint(path: os.PathLike, map_location="cpu") -> Dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist; train first "
                                f"(tools/train.py) or pass --checkpoint with an existing .pth file")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - one clear message for a damaged file
        raise UserError(f"could not read checkpoint {str(path)!r} ({type(e).__name__}: {e}); "
                           f"the file is damaged or not a PyTorch checkpoint") from None


def model_state_from(ckpt: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """The model weights of our checkpoints, of the seeds' (``state_dict``), or a bare
    state dict; DataParallel/DDP ``module.`` prefixes removed."""
    for key in ("model", "state_dict", "model_state_dict", "params"):
        if key in ckpt and isinstance(ckpt[key], Mapping):
            sd = ckpt[key]
            break
    else:
        sd = ckpt
    if not all(torch.is_tensor(v) for v in sd.values()):
        raise ValueError("checkpoint holds no model weights (expected a 'model' or 'state_dict' entry)")
    if sd and all(k.startswith("module.") for k in sd):
        sd = OrderedDict((k[len("module."):], v) for k, v in sd.items())
    return dict(sd)


def weights_from(ckpt: Mapping[str, Any]) -> Dict[str, torch.Tensor]:
    """The weights to evaluate: the EMA copy when the checkpoint holds one, else the model's."""
    if isinstance(ckpt, Mapping) and ckpt.get("ema"):
        return dict(ckpt["ema"])
    return model_state_from(ckpt)


def load_model(checkpoint: Union[os.PathLike, str, Mapping[str, Any]], config=None, model_name: Optional[str] = None,
               device: Any = "cpu", source: Optional[os.PathLike] = None):
    """The model of ``checkpoint`` (a path or an already loaded dict) with its weights
    (:func:`weights_from`, ``strict``), in eval mode on ``device``.

    The architecture comes from ``config`` when given (a :class:`~restoration.config.Config`
    with ``model.name`` and ``model.args``), else from the recipe saved in the checkpoint.
    With ``model_name`` and no config, that model is built with the saved arguments when the
    checkpoint is of the same model, with its defaults otherwise. Weights that do not fit
    are a :class:`UserError` naming the checkpoint (``source``: the file an already loaded
    dict came from) and the model."""
    from .config import Config
    from .registry import build_model_from_config

    where = str(source) if source is not None else (
        "the given checkpoint" if isinstance(checkpoint, Mapping) else str(checkpoint))
    ck = checkpoint if isinstance(checkpoint, Mapping) else load_checkpoint(checkpoint, map_location="cpu")
    saved = (ck.get("config") or {}) if isinstance(ck, Mapping) else {}
    if config is None:
        saved_model = dict(saved.get("model") or {})
        if model_name is not None and saved_model.get("name") != model_name:
            saved_model = {"name": model_name, "args": {}}
        if not saved_model.get("name"):
            raise UserError(f"checkpoint {where} does not say which model it holds (no saved recipe); "
                            f"pass the model name (--model)")
        config = Config({"model": {"name": saved_model["name"], "args": saved_model.get("args") or {}}})
    model = build_model_from_config(config)
    try:
        model.load_state_dict(weights_from(ck))
    except RuntimeError as e:
        raise UserError(f"checkpoint {where} does not fit model {config.model.name!r} with args "
                        f"{dict(config.model.args or {})}: {str(e).splitlines()[0]} -- pass the --model/--config "
                        f"it was trained with") from None
    return model.to(torch.device(device)).eval()
