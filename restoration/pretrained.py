"""Shipped pretrained weights: ``pretrained/MANIFEST.yaml`` and ``load_pretrained``.

    import restoration
    restoration.list_pretrained()                 # ['dehazesnn_s', 'dehazesnn_s_ann', ...]
    model = restoration.load_pretrained("esdnet_tiny")        # eval mode, on the CPU
    restoration.pretrained_info("esdnet_tiny")["metrics"]     # what tools/test.py measured

Every weight file is listed in the manifest with how it was made (recipe, data, seed,
training time and machine), its sha256 and its held-out metrics. A file is checked against
its sha256 before it is read, so a missing, truncated or altered file is reported by name
instead of loading wrong weights.

A weight file is a slim checkpoint: ``{'model': state_dict, 'config': the training
recipe as a dict}``, so ``tools/test.py --checkpoint pretrained/<file>`` works as well.
The folder is ``pretrained/`` at the repository root, or ``$SNN_RESTORATION_PRETRAINED``.
"""
from __future__ import annotations

import difflib
import hashlib
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

ENV_PRETRAINED_DIR = "SNN_RESTORATION_PRETRAINED"
MANIFEST_NAME = "MANIFEST.yaml"


class PretrainedError(ValueError):
    """A pretrained name that is unknown, or a weight file that is missing or altered."""


def pretrained_dir() -> Path:
    env = os.environ.get(ENV_PRETRAINED_DIR)
    return Path(env).expanduser() if env else Path(__file__).resolve().parent.parent / "pretrained"


def read_manifest(directory: Optional[os.PathLike] = None) -> Dict[str, Dict[str, Any]]:
    """``{name: entry}`` from ``MANIFEST.yaml`` (entries keep the file's order)."""
    import yaml

    path = Path(directory or pretrained_dir()) / MANIFEST_NAME
    if not path.is_file():
        raise PretrainedError(f"no pretrained manifest at {path}: the pretrained/ folder of the repository is "
                              f"missing (use a git checkout, or set ${ENV_PRETRAINED_DIR} to a folder that "
                              f"holds {MANIFEST_NAME} and the weight files)")
    data = yaml.safe_load(path.read_text()) or {}
    entries = data.get("models") or []
    out: Dict[str, Dict[str, Any]] = {}
    for e in entries:
        if not isinstance(e, dict) or "name" not in e:
            raise PretrainedError(f"{path}: every entry under 'models' needs a 'name'; got {e!r}")
        out[str(e["name"])] = e
    return out


def list_pretrained(task: Optional[str] = None) -> List[str]:
    return [n for n, e in read_manifest().items() if task is None or e.get("task") == task]


def pretrained_info(name: str) -> Dict[str, Any]:
    """The manifest entry of ``name``; an unknown name lists the shipped ones."""
    manifest = read_manifest()
    if name not in manifest:
        close = difflib.get_close_matches(name, list(manifest), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PretrainedError(f"no pretrained weights named {name!r}.{hint} Shipped: {', '.join(manifest) or '(none)'} "
                              f"(pretrained/{MANIFEST_NAME})")
    return manifest[name]


def default_pretrained(task: str) -> Optional[str]:
    """The task's default weights (``default: true`` in the manifest), else its first entry."""
    try:
        names = [(n, e) for n, e in read_manifest().items() if e.get("task") == task]
    except PretrainedError:
        return None
    for n, e in names:
        if e.get("default"):
            return n
    return names[0][0] if names else None


def sha256_of(path: os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def pretrained_path(name: str, verify: bool = True) -> Path:
    """The weight file of ``name``, after checking that it exists and matches its sha256."""
    entry = pretrained_info(name)
    path = pretrained_dir() / entry["file"]
    how = entry.get("train_command", "the recipe in the manifest")
    if not path.is_file():
        raise PretrainedError(f"pretrained weights {name!r}: file {path} is missing. Restore it with "
                              f"'git checkout -- pretrained/{entry['file']}' (a Git LFS-free checkout holds it), "
                              f"or retrain with: {how}")
    if verify:
        got = sha256_of(path)
        if got != entry["sha256"]:
            raise PretrainedError(f"pretrained weights {name!r}: {path} has been altered or is damaged (sha256 "
                                  f"{got[:16]}..., the manifest says {str(entry['sha256'])[:16]}...). Restore it "
                                  f"with 'git checkout -- pretrained/{entry['file']}'; if you retrained it on "
                                  f"purpose, update its entry with tools/export_pretrained.py")
    return path


def load_pretrained(name: str, device: Any = "cpu", verify: bool = True):
    """The model behind ``name`` with its shipped weights, in eval mode, on ``device``.

    The architecture and its arguments come from the recipe saved in the file; the weights
    load with ``strict=True``."""
    from .checkpoint import load_model

    return load_model(pretrained_path(name, verify=verify), device=device)
