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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import torch
from torch.utils.data import Dataset

from ..data.images import IMG_EXTENSIONS as IMAGE_EXTS  # noqa: F401  (the data layer owns image I/O;
from ..data.images import ImageFiles as ImageFolder  # noqa: F401   these names stay for old imports)
from ..data.images import save_image
from ..data.synthetic import BuiltinData
from ..errors import UserError
from ..losses import build_loss

Batch = Mapping[str, Any]
ModelFn = Callable[[torch.Tensor], Any]


@dataclass(frozen=True)
class ModelSpec:
    """One model of a benchmark suite."""
    name: str     # registered model
    role: str     # "SNN", "ANN twin" or "ANN baseline" (or a label of its own)
    recipe: str   # relative to configs/


@dataclass(frozen=True)
class BenchmarkSuite:
    """What ``tools/benchmark.py`` needs to know of a task (``Task.benchmark_suite``).

    * ``models``: the spiking model, its ANN twin and the ANN baseline, each with its recipe;
      the first recipe sets what a budget without the task's own figures uses;
    * ``extra_models``: further models ``--models`` may name;
    * ``stated_size``: the image side at which cost and speed are reported;
    * ``budgets``: per budget name (``quick``, ``full``, ...), what every model of the task
      shares: ``patch_size``, ``batch_size``, ``epochs``, ``steps`` per epoch, optionally
      ``builtin`` data counts and ``lr_scale``; ``None`` takes the first recipe's own.
      A budget the task does not list does not cover it;
    * ``snr_sweep``: channel SNRs (dB) at which to evaluate again, for a model with an
      ``snr_db`` attribute (joint source-channel coding); empty for none.
    """
    models: Sequence[ModelSpec]
    stated_size: int
    budgets: Mapping[str, Optional[Mapping[str, Any]]]
    extra_models: Sequence[ModelSpec] = ()
    snr_sweep: Sequence[float] = field(default_factory=tuple)


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
    benchmark_suite: Optional[BenchmarkSuite] = None  # what tools/benchmark.py compares
    builtin: Optional[BuiltinData] = None  # the generated data used when data.root is unset
    snr_config_key: Optional[str] = None  # tasks with a channel: the config key tools/infer.py --snr sets

    def __init__(self, **task_args):
        if task_args:
            raise ValueError(f"task {self.name!r} takes no task_args, got {sorted(task_args)}")

    # -- data -------------------------------------------------------------------------
    def builtin_data(self, cfg) -> Path:
        """Root of the small generated data set used when ``data.root`` is unset."""
        from restoration.data.synthetic import ensure_builtin_data

        from .log import use_tty_progress

        if self.builtin is None:
            raise UserError(f"task {self.name!r} has no built-in data: set data.root in the recipe or pass "
                            f"--data-dir with a folder of your data")

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

    def build_infer_dataset(self, cfg, input_spec) -> Dataset:
        """Items of the user's own images (no target) for ``tools/infer.py``; ``input_spec``
        is what ``--input`` says (a file, a folder or a glob)."""
        raise NotImplementedError(f"task {self.name!r} does not support tools/infer.py")

    def infer_files(self, dataset) -> Tuple[List[Path], List[str]]:
        """(the input files, the output names relative to ``--output``) of an inference
        data set, known before any image is restored: tools/infer.py checks them first
        (never write over an input; an existing output needs --overwrite)."""
        return list(dataset.paths), list(dataset.names)

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

    # -- benchmark --------------------------------------------------------------------
    def example_batch(self, n: int, size: int, seed: int = 0) -> Dict[str, Any]:
        """``n`` items of random ``size`` x ``size`` images in the layout :meth:`forward`
        reads: what cost counting and the timed steps run on."""
        raise NotImplementedError(f"task {self.name!r} does not say how to make an example batch")

    def stated_item(self, size: int) -> str:
        """What one item at the stated size is, for the benchmark's 'cost per ...' line."""
        return f"one {size}x{size} image"

    def image_batch(self, image: torch.Tensor, views: Sequence[torch.Tensor] = ()) -> Dict[str, Any]:
        """A batch of one item, in the layout ``forward`` reads, made from one ``3,H,W`` image
        (and further views where the task's items have them): what tools that look inside a
        model with a user's picture feed it (``tools/visualize_spikes.py``)."""
        raise NotImplementedError(f"task {self.name!r} does not say how to make a batch from an image")


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

    def build_infer_dataset(self, cfg, input_spec) -> Dataset:
        from ..data.images import ImageFiles

        return ImageFiles(input_spec)

    def example_batch(self, n: int, size: int, seed: int = 0) -> Dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        return {"input": torch.rand(n, 3, size, size, generator=g), "target": torch.rand(n, 3, size, size, generator=g),
                "name": [f"{i}" for i in range(n)]}

    def image_batch(self, image, views=()):
        return {"input": image[None], "name": ["image"]}

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
