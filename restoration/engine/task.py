"""The task plugin interface: everything task-specific, in one object.

The engine (trainer, evaluator, CLI) asks a task for its datasets, its loss, its
metric protocol, how a batch flows through the model and how outputs are written.
A new task is one file in ``tasks/`` that subclasses :class:`Task` (or the ready-made
:class:`PairedImageTask` for "degraded image -> clean image" problems) and registers
itself::

    from restoration.registry import TASKS
    from restoration.engine.task import PairedImageTask

    @TASKS.register("denoise")
    class Denoise(PairedImageTask):
        default_config = "denoise/dncnn_cpu.yaml"   # data: <root>/<split>/{input,target}

plus its recipes under ``configs/<task>/``. See docs/ENGINE.md.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from ..losses import build_loss

Batch = Mapping[str, Any]
ModelFn = Callable[[torch.Tensor], Any]


class Task:
    """Base class of task plugins. Subclasses override what differs.

    Attributes read by the engine:

    * ``name``: the registry name (set by the subclass);
    * ``default_config``: recipe used when neither ``--config`` nor ``--model`` is given
      (the CPU-sized recipe on built-in data), relative to ``configs/``;
    * ``y_channel``, ``crop_border``: the metric protocol (config ``eval.*`` may override);
    * ``compare_input``: the degraded input is an image comparable with the target, so
      the final table shows input-vs-output metrics;
    * ``supports_tiling``: outputs of disjoint tiles can be stitched (image-to-image).
    """

    name: str = ""
    default_config: str = ""
    y_channel: bool = False
    crop_border: int = 0
    compare_input: bool = True
    supports_tiling: bool = True
    size_multiple: int = 1  # fallback when neither the config nor the model says

    def __init__(self, **task_args):
        if task_args:
            raise ValueError(f"task {self.name!r} takes no task_args, got {sorted(task_args)}")

    # -- data -------------------------------------------------------------------------
    def builtin_data(self, cfg) -> Path:
        """Root of the small generated data set used when ``data.root`` is unset."""
        from restoration.data.synthetic import ensure_builtin_data

        from .log import use_tty_progress

        opts = {"progress": use_tty_progress(), **dict(cfg.data.builtin or {})}
        return Path(ensure_builtin_data(self.name, **opts))

    def data_root(self, cfg) -> Path:
        root = cfg.data.root
        if root in (None, ""):
            return self.builtin_data(cfg)
        root = Path(os.path.expanduser(str(root)))
        if not root.is_dir():
            raise FileNotFoundError(f"data root {str(root)!r} does not exist; pass --data-dir with a folder "
                                    f"holding {cfg.data.train_split}/ and {cfg.data.test_split}/, or leave it "
                                    f"out to use the built-in generated set")
        return root

    def build_dataset(self, cfg, split: str, train: bool) -> Dataset:
        raise NotImplementedError

    @staticmethod
    def mode_and_patch(cfg, train: bool):
        """Dataset mode and crop size: random crops for training; for evaluation the
        centre crop (``data.valid_mode: valid``) or full images (``test``)."""
        d = cfg.data
        if train:
            return "train", d.patch_size
        if d.valid_mode == "valid":
            return "valid", d.valid_patch_size or d.patch_size
        return "test", None

    def build_infer_dataset(self, cfg, input_dir: Path) -> Dataset:
        """Items of the user's own images (no target) for ``tools/infer.py``."""
        raise NotImplementedError(f"task {self.name!r} does not support tools/infer.py")

    # -- model flow -------------------------------------------------------------------
    def build_loss(self, cfg):
        return build_loss(cfg.loss.terms)

    def forward(self, model: ModelFn, batch: Batch, device: torch.device
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor], Dict[str, Any]]:
        """Run one batch: returns ``(prediction, target, extras)``.

        ``prediction`` and ``target`` are ``N,C,H,W`` images in [0, 1] that losses and
        metrics compare (a task with several images per item folds them into N);
        ``target`` is None when the batch has none (inference). ``extras`` carries
        anything else the loss may need (``'input'``: the degraded image; ``'rate'``).
        """
        raise NotImplementedError

    def item_names(self, batch: Batch) -> List[str]:
        """One name per prediction row, for results.csv."""
        return list(batch["name"])

    def save_outputs(self, pred: torch.Tensor, batch: Batch, out_dir: Path) -> None:
        """Write the restored images of a batch under ``out_dir``, same file names."""
        for img, name in zip(pred, self.item_names(batch)):
            save_image(img, Path(out_dir) / name)

    def prepare_model(self, model: torch.nn.Module, cfg) -> torch.nn.Module:
        """Hook for task-specific model settings at test/inference time."""
        return model


class PairedImageTask(Task):
    """Degraded image -> clean image, read by the ``paired`` dataset of
    :mod:`restoration.data` (its layout auto-detection covers DehazeSNN's ``hazy/``+``GT/``,
    ESDNet's ``input/``+``target/``, RESIDE and Rain100/200 naming, pair lists;
    ``data.args.layout`` forces one)."""

    dataset_name: str = "paired"

    def dataset_kwargs(self, cfg, train: bool) -> Dict[str, Any]:
        d = cfg.data
        mode, patch = self.mode_and_patch(cfg, train)
        return dict(mode=mode, patch_size=patch, edge_decay=d.edge_decay, only_h_flip=d.only_h_flip)

    def build_dataset(self, cfg, split: str, train: bool) -> Dataset:
        from restoration.registry import DATASETS

        kwargs = {**self.dataset_kwargs(cfg, train), **dict(cfg.data.args or {})}
        return DATASETS.get(self.dataset_name)(root=self.data_root(cfg), split=split, **kwargs)

    def build_infer_dataset(self, cfg, input_dir: Path) -> Dataset:
        return ImageFolder(input_dir)

    def forward(self, model, batch, device):
        x = batch["input"].to(device, non_blocking=True)
        y = batch["target"].to(device, non_blocking=True) if "target" in batch else None
        out = model(x)
        extras: Dict[str, Any] = {"input": x}
        if isinstance(out, (tuple, list)):  # (image, aux...) models: keep the image
            out, extras["aux"] = out[0], out[1:]
        elif isinstance(out, dict):
            extras.update({k: v for k, v in out.items() if k != "output"})
            out = out["output"]
        return out, y, extras


# -- small image helpers (the engine's own, so that it needs nothing from data/) -------

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def load_image(path: os.PathLike) -> torch.Tensor:
    """RGB image file -> ``3,H,W`` float tensor in [0, 1]."""
    from PIL import Image

    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def save_image(img: torch.Tensor, path: os.PathLike) -> None:
    """``3,H,W`` (or ``1,H,W``) tensor in [0, 1] -> image file, written to a temporary
    name and renamed. The format follows the extension (PNG when it has none)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = (img.detach().float().clamp(0, 1).cpu().numpy() * 255.0).round().astype(np.uint8)
    arr = arr[0] if arr.shape[0] == 1 else np.moveaxis(arr, 0, -1)
    ext = path.suffix.lower()
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
           ".webp": "WEBP"}.get(ext, "PNG")
    tmp = path.with_name(f".{path.name}.tmp")
    kwargs = {"quality": 95} if fmt == "JPEG" else {}
    Image.fromarray(arr).save(tmp, format=fmt, **kwargs)
    os.replace(tmp, path)


class ImageFolder(Dataset):
    """Every image file in a folder (any size), items ``{'input', 'name'}``."""

    def __init__(self, folder: os.PathLike):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"input folder {str(self.folder)!r} does not exist; pass --input with a "
                                    f"folder of images")
        self.names = sorted(p.name for p in self.folder.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_EXTS)
        if not self.names:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTS)}) in {str(self.folder)!r}")

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        return {"input": load_image(self.folder / self.names[i]), "name": self.names[i]}
