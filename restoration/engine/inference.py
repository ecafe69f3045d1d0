"""Restoring a user's photographs (tools/infer.py), safely.

* Nothing the user owns is harmed: an output that would land on an input file is
  refused, an existing output needs ``--overwrite``, and every image is written to a
  temporary name and renamed.
* Memory stays within ``--max-memory``: the model's working memory per pixel is
  measured once on two small probes, and an image too large for the budget is restored
  in tiles (:func:`restoration.engine.evaluator.tiled_forward`) of the largest size that
  fits. ``--tile`` (or ``eval.tile``) fixes the size instead.
* A file that cannot be read is named in a warning and skipped; the others are
  restored and the caller learns how many failed.
"""
from __future__ import annotations

import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import torch
from torch.utils.data import default_collate

from ..data.images import DataError
from ..errors import UserError
from ..metrics import psnr as psnr_metric, ssim as ssim_metric
from .evaluator import SSIM_MIN_SIDE, Evaluator, model_size_multiple, tile_count
from .log import get_logger, use_tty_progress
from .memory import PeakMemory, return_freed_memory, rss_bytes

_UNITS = {"": 1, "k": 2 ** 10, "m": 2 ** 20, "g": 2 ** 30, "t": 2 ** 40}


def parse_memory(text: str) -> int:
    """``'2G'``, ``'1.5GB'``, ``'800M'``, ``'512MiB'``, or bytes -> bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?b)?\s*", str(text).lower())
    if not m or float(m.group(1)) <= 0:
        raise UserError(f"--max-memory {text!r} is not a size; write it like 2G, 1.5G or 800M")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _fmt_bytes(n: float) -> str:
    return f"{n / 2 ** 30:.2f} GB" if n >= 2 ** 30 else f"{n / 2 ** 20:.0f} MB"


def check_outputs(inputs: Sequence[Path], names: Sequence[str], out_dir: Path, overwrite: bool) -> None:
    """Refuse, before any work, an output that is an input file (always) or that exists
    (unless ``overwrite``)."""
    sources = {os.path.realpath(p) for p in inputs}
    existing = []
    for name in names:
        target = out_dir / name
        if os.path.realpath(target) in sources:
            raise UserError(f"--output {out_dir} would write over your input file {target}; choose another "
                            f"--output folder (the restored images keep the input names)")
        if target.exists():
            existing.append(str(target))
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise UserError(f"--output {out_dir} already holds {existing[0]}{more}; pass --overwrite to replace "
                        f"them, or choose another --output folder")


def _forward_peak(fn: Callable, x: torch.Tensor) -> Optional[int]:
    """Extra memory one forward of ``x`` needs at its peak, in bytes, or None when the
    platform cannot tell (see :mod:`restoration.engine.memory`)."""
    with torch.no_grad(), PeakMemory(x.device) as peak:
        fn(x)
    return int(peak.bytes) if peak.exact else None


# Used where the peak cannot be measured: about twice what the shipped models need.
FALLBACK_BYTES_PER_PIXEL = 6144


@dataclass
class MemoryModel:
    """Working memory of one forward: ``fixed + per_pixel * pixels`` bytes."""
    per_pixel: float
    fixed: float = 0.0
    measured: bool = True

    def need(self, pixels: int) -> float:
        return self.fixed + self.per_pixel * pixels


# Tiles are several times larger than the probes and need a little more per pixel than
# the probes suggest (measured with esdnet_tiny: 1.65 KB/px from the probes, about 2.4 at
# 800x800); the margin keeps the peak under the budget.
MARGIN = 1.5


def measure_memory(fn: Callable, channels: int, device: torch.device, multiple: int = 1,
                   sizes: Sequence[int] = (160, 320)) -> MemoryModel:
    """Fit :class:`MemoryModel` to the peaks of forwards on two square probes (times
    ``MARGIN``)."""
    pts = []
    for s in sizes:
        s = int(math.ceil(s / max(1, multiple)) * max(1, multiple))
        x = torch.rand(1, channels, s, s, generator=torch.Generator().manual_seed(0)).to(device)
        peak = _forward_peak(fn, x)
        if peak is None:
            return MemoryModel(FALLBACK_BYTES_PER_PIXEL, 0.0, measured=False)
        pts.append((s * s, peak))
    (p0, m0), (p1, m1) = pts
    slope = (m1 - m0) / (p1 - p0)
    if not math.isfinite(slope) or slope <= 0.25 * m1 / p1:  # noise: keep the larger probe's average
        return MemoryModel(MARGIN * m1 / p1, 0.0)
    return MemoryModel(MARGIN * slope, max(0.0, m1 - slope * p1))


def choose_tile(h: int, w: int, need: MemoryModel, budget: float, multiple: int = 1,
                overlap: int = 32, step: int = 32) -> Optional[int]:
    """None when the whole image fits in ``budget`` bytes, else the largest tile side
    (a multiple of ``step`` and of the model's ``multiple``) whose forward fits; at
    least twice the overlap plus one step, however small the budget."""
    if need.need(h * w) <= budget:
        return None
    unit = step * max(1, multiple) // math.gcd(step, max(1, multiple))
    side = math.sqrt(max(0.0, budget - need.fixed) / max(need.per_pixel, 1e-9))
    tile = int(side // unit) * unit
    smallest = int(math.ceil((2 * overlap + unit) / unit)) * unit
    return max(tile, smallest)


@dataclass
class InferReport:
    restored: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)
    psnr: List[float] = field(default_factory=list)
    ssim: List[float] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    model_calls: int = 0
    seconds: float = 0.0


class _Bars:
    """A bar over images and, for a tiled image, one over its tiles (terminal only)."""

    def __init__(self, total: int):
        self.images = self.tiles = None
        if use_tty_progress():
            from tqdm import tqdm

            self._tqdm = tqdm
            self.images = tqdm(total=total, desc="images", unit="img", dynamic_ncols=True)

    def start_tiles(self, n: int, name: str) -> None:
        if self.images is not None and n > 1:
            self.tiles = self._tqdm(total=n, desc=f"  {name}", unit="tile", leave=False, dynamic_ncols=True)

    def tile_done(self) -> None:
        if self.tiles is not None:
            self.tiles.update(1)

    def image_done(self) -> None:
        if self.tiles is not None:
            self.tiles.close()
            self.tiles = None
        if self.images is not None:
            self.images.update(1)

    def close(self) -> None:
        if self.tiles is not None:
            self.tiles.close()
        if self.images is not None:
            self.images.close()


def restore_folder(task, cfg, model: torch.nn.Module, dataset, out_dir: Path, device: torch.device,
                   overwrite: bool = False, max_memory: Optional[int] = None,
                   fixed_tile: Optional[int] = None) -> InferReport:
    """Restore every item of ``dataset`` (a task's inference set) into ``out_dir``."""
    log = get_logger()
    inputs, names = task.infer_files(dataset)
    check_outputs(inputs, names, out_dir, overwrite)
    ev = Evaluator(task, cfg, device)
    multiple = model_size_multiple(model, cfg, task)
    overlap = ev.overlap
    budget = None
    need: Optional[MemoryModel] = None
    report = InferReport()
    if max_memory is not None and device.type == "cpu":
        return_freed_memory()  # freed tiles leave the process: the measured peaks are the real ones
    bars = _Bars(len(dataset))
    t0 = time.time()
    was_training = model.training
    model.eval()
    try:
        for i in range(len(dataset)):
            try:
                item = dataset[i]
            except DataError as e:
                log.warning(f"skipped: {getattr(e, 'problem', e)}")
                report.failed.append(str(inputs[i] if len(inputs) == len(dataset) else i))
                bars.image_done()
                continue
            batch = default_collate([item])
            label = item.get("name", str(i))
            h, w = next(v for v in item.values() if torch.is_tensor(v)).shape[-2:]
            tile = fixed_tile
            if tile is None and max_memory is not None and task.supports_tiling:
                if need is None:
                    need = measure_memory(ev.model_fn(model, tile=None), 3, device, multiple)
                    base = (rss_bytes() or 0) if device.type == "cpu" else 0  # in use before the first image
                    budget = max_memory - base
                    how = "measured" if need.measured else "assumed (peak memory cannot be read here)"
                    log.info(f"memory: {need.per_pixel / 1024:.2f} KB per pixel {how}; budget "
                             f"{_fmt_bytes(max_memory)} (--max-memory) less {_fmt_bytes(base)} in use")
                # the image itself, its restored copy and the file buffers live beside the model
                room = budget - 5 * 4 * 3 * h * w
                tile = choose_tile(h, w, need, room, multiple, overlap)
            tiles = tile_count(h, w, tile, overlap) if tile else 1
            if tile:
                log.info(f"{label}: {w}x{h}, restored in {tiles} tiles of {tile} px"
                         + (" to stay within --max-memory" if fixed_tile is None else ""))
            bars.start_tiles(tiles, label)
            fn = ev.model_fn(model, tile=tile, on_tile=bars.tile_done)
            with torch.no_grad():
                pred, target, extras = task.forward(fn, batch, device)
            pred = pred.float().clamp(0, 1)
            task.save_outputs(pred, batch, out_dir)
            if target is not None:  # e.g. JSCC: the reconstruction against what was sent
                target = target.float()
                report.psnr += psnr_metric(pred, target).tolist()
                if min(h, w) >= SSIM_MIN_SIDE:
                    report.ssim += ssim_metric(pred, target).tolist()
                elif not report.notes:
                    report.notes.append(f"SSIM skipped for images smaller than {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} "
                                        f"pixels ({label} is {w}x{h})")
            report.restored.append(label)
            report.model_calls += tiles
            bars.image_done()
            if bars.images is None:
                log.info(f"[{i + 1}/{len(dataset)}] {label} ({time.time() - t0:.1f} s)")
    finally:
        bars.close()
        model.train(was_training)
    report.seconds = time.time() - t0
    return report


