"""The task-agnostic trainer.

One :class:`Trainer` trains any task: the task plugin builds the data sets and the
loss and says how a batch flows through the model; the trainer owns the loop
(parameter groups, warm-up + cosine, gradient accumulation and clipping, AMP on CUDA,
EMA, state reset after every forward), validation, checkpoints, logging and DDP.

Resuming (``resume=True`` or a path) restores model, optimiser, AMP scaler, EMA,
epoch, best score and every rank's RNG state; the learning rate is a pure function of
the position in training and each epoch's shuffling is seeded by (seed, epoch), so a
run stopped after any epoch and resumed ends with the same weights as one that never
stopped (tests/test_engine_resume.py checks it bit for bit).
"""
from __future__ import annotations

import collections
import contextlib
import math
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from ..errors import UserError
from ..registry import build_model_from_config  # noqa: F401  (its home before; callers import it from here)
from .checkpoint import (CheckpointManager, atomic_save, load_checkpoint, model_state_from, rng_state,
                         set_rng_state)
from .distributed import DistInfo, all_gather_object, any_true, barrier, init_distributed
from .evaluator import Evaluator, reset_state
from .log import Progress, TBWriter, get_logger
from .optim import LRSchedule, ModelEMA, build_optimizer


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stops, the last good checkpoint stays."""


class DivergedError(NonFiniteLossError):
    """The loss left its usual level and stayed away (too high a learning rate)."""


class DivergenceGuard:
    """Tells when the training loss has diverged: ``patience`` steps in a row above
    ``median + max(k * MAD, |median|)`` of the losses seen so far (the last ``window``
    normal ones). The ``|median|`` floor keeps the rule scale-free for losses of either
    sign (L1 near 0.1, a PSNR loss near -20) and quiet in the first steps, where the
    spread is not known yet: a loss must at least double its usual size away from zero."""

    def __init__(self, patience: int = 5, k: float = 10.0, window: int = 200):
        self.patience, self.k = int(patience), float(k)
        self.history: collections.deque = collections.deque(maxlen=int(window))
        self.streak = 0

    def limit(self) -> float:
        med = statistics.median(self.history)
        mad = statistics.median(abs(v - med) for v in self.history)
        return med + max(self.k * mad, abs(med), 1e-8)

    def update(self, loss: float) -> bool:
        """Record one step's loss; True once the loss has diverged."""
        if self.history and loss > self.limit():
            self.streak += 1
            return self.streak >= self.patience
        self.streak = 0
        self.history.append(loss)
        return False


def resolve_device(spec: str, dist: DistInfo) -> torch.device:
    spec = str(spec or "auto")
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"device {spec!r} was requested but CUDA is not available here; "
                               f"use --device cpu (or device: auto)")
        if dist.enabled:
            return torch.device("cuda", dist.local_rank)
        return torch.device(spec)
    if spec != "cpu":
        raise ValueError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def _worker_init(worker_id: int) -> None:
    # DataLoader seeds torch (and python random) per worker from the main RNG; numpy too.
    s = torch.initial_seed() % 2 ** 32
    np.random.seed(s)
    random.seed(s)


class EpochSampler(Sampler):
    """Shuffles with a generator seeded by (seed, epoch): the order of an epoch does
    not depend on what ran before it (as ``DistributedSampler`` on one process)."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


class RepeatDataset(Dataset):
    """A small data set seen ``times`` times per epoch (fresh random crops each time)."""

    def __init__(self, base: Dataset, times: int):
        self.base, self.times = base, int(times)

    def __len__(self):
        return len(self.base) * self.times

    def __getitem__(self, i):
        return self.base[i % len(self.base)]


def forward_loss(task, net: nn.Module, loss_fn, batch, device: torch.device, amp: bool = False):
    """The loss of one training batch: the task's forward (under float16 autocast with
    ``amp``), the loss in float32, then the neurons put back at rest. Returns (loss, its
    parts, batch size). The one training forward of the trainer and the benchmark."""
    with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
        pred, target, extras = task.forward(net, batch, device)
    loss, parts = loss_fn(pred.float(), target.float(), extras)
    reset_state(net)
    return loss, parts, pred.shape[0]


def apply_gradients(model: nn.Module, optimizer, scaler, clip: Optional[float] = None) -> None:
    """Clip the gradient norm to ``clip`` (after unscaling), step the optimiser through the
    AMP ``scaler`` (a disabled one passes through) and zero the gradients."""
    if clip:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(clip))
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


class Trainer:
    def __init__(self, cfg, task, run_dir: os.PathLike, model: Optional[nn.Module] = None,
                 train_set: Optional[Dataset] = None, valid_set: Optional[Dataset] = None,
                 resume: Any = False, fine_tune: Optional[os.PathLike] = None):
        self.cfg, self.task = cfg, task
        self.run_dir = Path(run_dir)
        device_type = "cuda" if str(cfg.device).startswith("cuda") or (
            cfg.device == "auto" and torch.cuda.is_available()) else "cpu"
        self.dist = init_distributed(device_type)
        self.device = resolve_device(cfg.device, self.dist)
        self.main = self.dist.is_main
        self.log = get_logger()
        if cfg.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if cfg.eval.metric not in ("psnr", "ssim"):
            raise ValueError(f"eval.metric={cfg.eval.metric!r}: validation picks the best checkpoint by "
                             f"'psnr' or 'ssim'")

        # the same seed on every rank gives the same initial weights; then per-rank streams
        seed_everything(int(cfg.seed))
        self.model = (model if model is not None else build_model_from_config(cfg)).to(self.device)
        if fine_tune:
            self._load_weights(fine_tune)
        seed_everything(int(cfg.seed) + self.dist.rank)

        t = cfg.train
        self.train_set = train_set if train_set is not None else task.build_dataset(cfg, cfg.data.train_split, True)
        if valid_set is None:
            self.valid_set = task.build_dataset(cfg, self._valid_split(cfg, task), False)
        else:
            self.valid_set = valid_set
        if len(self.train_set) == 0:
            raise ValueError("the training set is empty; check --data-dir and data.train_split")
        if int(cfg.data.repeat) > 1:
            self.train_set = RepeatDataset(self.train_set, int(cfg.data.repeat))
        ws = self.dist.world_size
        if int(cfg.data.batch_size) % ws:
            raise ValueError(f"data.batch_size={cfg.data.batch_size} is the global batch and must divide by "
                             f"the {ws} processes; pass e.g. --set data.batch_size={ws * max(1, cfg.data.batch_size // ws)}")
        self.batch_size = int(cfg.data.batch_size) // ws
        if self.dist.enabled:
            self.sampler = DistributedSampler(self.train_set, num_replicas=ws, rank=self.dist.rank, shuffle=True,
                                              seed=int(cfg.seed))
        else:
            self.sampler = EpochSampler(len(self.train_set), int(cfg.seed))
        per_rank = math.ceil(len(self.train_set) / ws)
        self.loader = DataLoader(self.train_set, batch_size=self.batch_size, sampler=self.sampler,
                                 num_workers=int(cfg.data.num_workers), drop_last=per_rank > self.batch_size,
                                 pin_memory=self.device.type == "cuda", worker_init_fn=_worker_init,
                                 persistent_workers=False)
        n_batches = len(self.loader)
        if t.max_steps_per_epoch:
            n_batches = min(n_batches, int(t.max_steps_per_epoch))
        self.batches_per_epoch = n_batches
        self.accum = max(1, int(t.accumulation_steps))
        self.steps_per_epoch = math.ceil(n_batches / self.accum)

        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        else:
            self.net = self.model
        self.optimizer = build_optimizer(self.model, cfg.optim)
        self.schedule = LRSchedule(self.optimizer, cfg.sched, int(t.epochs), self.steps_per_epoch)
        self.use_amp = bool(t.amp) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.ema = ModelEMA(self.model, t.ema_decay) if t.ema_decay else None
        self.loss_fn = task.build_loss(cfg).to(self.device)
        self.evaluator = Evaluator(task, cfg, self.device)
        self.ckpt = CheckpointManager(self.run_dir, str(cfg.model.name or type(self.model).__name__.lower()),
                                      int(t.keep_last_epochs or 0))
        self.tb = TBWriter(self.run_dir / "tb", enabled=self.main)
        self.start_epoch, self.global_step = 0, 0
        self.best_score, self.best_epoch = -math.inf, -1
        self.last_scores: Dict[str, float] = {}
        self.divergence = DivergenceGuard()
        if resume:
            path = self.ckpt.latest() if resume is True else Path(resume)
            if path is None:
                raise FileNotFoundError(f"--resume: no {self.ckpt.path('current').name} in {self.run_dir}; "
                                        f"start without --resume, or pass the run's --exp/--config")
            self.load_state(path)

    # -- checkpoints ------------------------------------------------------------------
    def _load_weights(self, path: os.PathLike) -> None:
        sd = model_state_from(load_checkpoint(path))
        missing, unexpected = self.model.load_state_dict(sd, strict=False)
        self.log.info(f"fine-tuning from {path} (missing keys: {len(missing)}, unexpected: {len(unexpected)})")

    def state_dict(self, epoch: int) -> Dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema else None,
            "epoch": epoch,
            "global_step": self.global_step,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "metric": self.cfg.eval.metric,
            "scores": dict(self.last_scores),
            "schedule": {"total": self.schedule.total, "warmup": self.schedule.warmup,
                         "per_step": self.schedule.per_step, "steps_per_epoch": self.steps_per_epoch},
            "rng": all_gather_object(rng_state()),  # every rank's generators (collective call)
            "world_size": self.dist.world_size,
            "task": self.task.name,
            "model_name": self.cfg.model.name,
            "config": self.cfg.to_dict() if hasattr(self.cfg, "to_dict") else dict(self.cfg),
        }

    def load_state(self, path: os.PathLike) -> None:
        ck = load_checkpoint(path, map_location=self.device)
        self.model.load_state_dict(model_state_from(ck))
        self.optimizer.load_state_dict(ck["optimizer"])
        for g in self.optimizer.param_groups:  # the current recipe's lr wins (same recipe: same values)
            g.pop("base_lr", None)
        fresh = build_optimizer(self.model, self.cfg.optim)
        for g, f in zip(self.optimizer.param_groups, fresh.param_groups):
            g["base_lr"] = f["base_lr"]
        if ck.get("scaler") and self.use_amp:
            self.scaler.load_state_dict(ck["scaler"])
        if self.ema is not None and ck.get("ema") is not None:
            self.ema.load_state_dict(ck["ema"])
        self.start_epoch = int(ck["epoch"]) + 1
        self.global_step = int(ck.get("global_step", 0))
        self.best_score = float(ck.get("best_score", -math.inf))
        self.best_epoch = int(ck.get("best_epoch", -1))
        rngs = ck.get("rng") or []
        if len(rngs) == self.dist.world_size:
            set_rng_state(rngs[self.dist.rank])
        else:
            self.log.warning(f"checkpoint was written by {len(rngs)} process(es), this run has "
                             f"{self.dist.world_size}: random streams are reseeded, not restored")
            seed_everything(int(self.cfg.seed) + self.dist.rank + self.start_epoch)
        self.log.info(f"resumed from {path} at epoch {self.start_epoch} "
                      f"(best {self.cfg.eval.metric} {self.best_score:.4f} at epoch {self.best_epoch})")

    def _params_finite(self) -> bool:
        return all(torch.isfinite(p).all() for p in self.model.parameters())

    # -- loop -------------------------------------------------------------------------
    def fit(self, max_epochs: Optional[int] = None) -> Dict[str, Any]:
        """Train from ``start_epoch`` to ``train.epochs`` (or only ``max_epochs`` of them
        in this call: the rest can follow with ``resume``)."""
        epochs = int(self.cfg.train.epochs)
        end = epochs if max_epochs is None else min(epochs, self.start_epoch + int(max_epochs))
        if self.main:
            n_params = sum(p.numel() for p in self.model.parameters())
            self.log.info(f"training {self.cfg.model.name} ({n_params / 1e3:.1f} k parameters) on {self.device} "
                          f"x{self.dist.world_size}: {len(self.train_set)} training items/epoch, "
                          f"{len(self.valid_set)} validation images, epochs {self.start_epoch + 1}..{epochs}, "
                          f"{self.steps_per_epoch} steps/epoch, output {self.run_dir}")
        for epoch in range(self.start_epoch, end):
            t0 = time.time()
            loss, imgs_per_s = self.train_one_epoch(epoch)
            is_final = epoch == epochs - 1
            scores: Dict[str, float] = {}
            if self._should_validate(epoch, epochs):
                scores = self.validate(epoch)
            self.last_scores = scores
            is_best = False
            if scores and scores[self.cfg.eval.metric] > self.best_score:
                self.best_score, self.best_epoch, is_best = scores[self.cfg.eval.metric], epoch, True
            self._save(epoch, epochs, is_best, is_final)
            if self.main:
                val = (f"  valid PSNR {scores['psnr']:.2f} SSIM {scores['ssim']:.4f}"
                       f" (best {self.cfg.eval.metric} {self.best_score:.4f} @ {self.best_epoch + 1})") if scores else ""
                self.log.info(f"epoch {epoch + 1}/{epochs}  loss {loss:.4f}  "
                              f"lr {self.optimizer.param_groups[0]['lr']:.3g}{val}  "
                              f"{imgs_per_s:.1f} img/s  {time.time() - t0:.1f} s")
                self.tb.scalar("train/epoch_loss", loss, epoch + 1)
            self.start_epoch = epoch + 1
        self.tb.close()
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "epochs_done": self.start_epoch,
                "run_dir": str(self.run_dir)}

    def _valid_split(self, cfg, task) -> str:
        """``data.valid_split`` where the data has it (the built-in sets' 'motorcycle'), else
        ``data.test_split``: a recipe that names it still runs on a user's own folder."""
        split = cfg.data.valid_split
        if split and split != cfg.data.test_split:
            if (task.data_root(cfg) / split).is_dir():
                return split
            self.log.info(f"no '{split}' split (data.valid_split) in the data; validating on "
                          f"'{cfg.data.test_split}'")
        return cfg.data.test_split

    def _should_validate(self, epoch: int, epochs: int) -> bool:
        t = self.cfg.train
        return ((epoch + 1) % max(1, int(t.eval_freq)) == 0 or epoch == epochs - 1
                or epoch + 1 > float(t.eval_last_fraction) * epochs)

    def _save(self, epoch: int, epochs: int, is_best: bool, is_final: bool) -> None:
        if not self._params_finite():
            raise NonFiniteLossError(f"the weights became non-finite in epoch {epoch + 1}; nothing was saved for "
                                     f"this epoch and the last good checkpoint is kept "
                                     f"({self.ckpt.latest() or 'none yet'}). Lower optim.lr or set train.clip_grad")
        state = self.state_dict(epoch)  # collective (RNG gather): every rank calls it
        if self.main:
            self.ckpt.save(state, epoch, epochs, is_best, is_final)
        barrier()

    def _stop_non_finite(self, epoch: int, i: int, parts: Dict[str, torch.Tensor]) -> None:
        detail = ", ".join(f"{k}={float(v):.4g}" for k, v in parts.items())
        raise NonFiniteLossError(
            f"training stopped: the loss is not finite at epoch {epoch + 1}, batch {i + 1} ({detail}; lr "
            f"{self.optimizer.param_groups[0]['lr']:.3g}). The last good checkpoint is kept: "
            f"{self.ckpt.latest() or 'none yet (the first epoch did not finish)'}. Lower optim.lr, set "
            f"train.clip_grad, or turn off train.amp, then continue with --resume.")

    def _stop_diverged(self, epoch: int, i: int, loss: float) -> None:
        g = self.divergence
        raise DivergedError(
            f"training stopped: the loss diverged at epoch {epoch + 1}, batch {i + 1} ({g.streak} steps in a row "
            f"above {g.limit():.4g}; usual level {statistics.median(g.history):.4g}, now {loss:.4g}; lr "
            f"{self.optimizer.param_groups[0]['lr']:.3g}). Nothing of this epoch was saved; the last good "
            f"checkpoint is kept: {self.ckpt.latest() or 'none yet (the first epoch did not finish)'}. Lower "
            f"optim.lr (e.g. --set optim.lr={self.cfg.optim.lr / 10:.3g}) or set train.clip_grad, then start again "
            f"or continue with --resume.")

    def train_one_epoch(self, epoch: int):
        t = self.cfg.train
        self.net.train()
        self.sampler.set_epoch(epoch)
        lr = self.schedule.set(epoch, 0)
        self.optimizer.zero_grad(set_to_none=True)
        progress = Progress(self.batches_per_epoch, f"epoch {epoch + 1}/{t.epochs}", self.main, t.log_interval)
        step, n_img, loss_sum, n_loss = 0, 0, 0.0, 0
        t0 = time.time()
        clip = t.clip_grad
        for i, batch in enumerate(self.loader):
            if i >= self.batches_per_epoch:
                break
            boundary = (i + 1) % self.accum == 0 or i + 1 == self.batches_per_epoch
            sync = contextlib.nullcontext() if (boundary or not self.dist.enabled) else self.net.no_sync()
            with sync:
                loss, parts, bs = forward_loss(self.task, self.net, self.loss_fn, batch, self.device, self.use_amp)
                finite = bool(torch.isfinite(loss.detach()).all())
                diverged = finite and self.divergence.update(float(loss.detach()))
                bad = not finite or diverged
                if self.dist.enabled:
                    bad = any_true(bad, self.device)
                if bad:
                    if diverged:
                        self._stop_diverged(epoch, i, float(loss.detach()))
                    self._stop_non_finite(epoch, i, parts)
                self.scaler.scale(loss / self.accum).backward()
            if boundary:
                apply_gradients(self.model, self.optimizer, self.scaler, clip)
                if self.ema is not None:
                    self.ema.update(self.model)
                step += 1
                self.global_step += 1
                lr = self.schedule.set(epoch, step)
            n_img += bs
            loss_sum += float(loss.detach()) * bs
            n_loss += bs
            rate = n_img * self.dist.world_size / max(1e-9, time.time() - t0)
            progress.update({"loss": loss_sum / n_loss, "lr": lr, "img/s": rate})
            if self.main and (i + 1) % max(1, int(t.log_interval)) == 0:
                self.tb.scalar("train/loss", float(loss.detach()), self.global_step)
                self.tb.scalar("train/lr", lr, self.global_step)
                for k, v in parts.items():
                    self.tb.scalar(f"train/loss_{k}", float(v), self.global_step)
        progress.close()
        return loss_sum / max(1, n_loss), n_img * self.dist.world_size / max(1e-9, time.time() - t0)

    def eval_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    def validate(self, epoch: int) -> Dict[str, float]:
        """PSNR/SSIM on the validation split (rank 0; the others wait)."""
        scores: Dict[str, float] = {}
        if self.main:
            bs = int(self.cfg.data.batch_size) if self.cfg.data.valid_mode == "valid" else 1
            res = self.evaluator.evaluate(self.eval_model(), self.valid_set, full=False,
                                          max_images=self.cfg.data.max_valid_images, batch_size=bs)
            scores = {k: res.summary[k] for k in ("psnr", "ssim")}
            for k, v in scores.items():
                self.tb.scalar(f"valid/{k}", v, epoch + 1)
            self._log_samples(epoch)
        return scores

    @torch.no_grad()
    def _log_samples(self, epoch: int) -> None:
        k = int(self.cfg.train.sample_images or 0)
        if k <= 0 or self.tb.w is None:
            return
        model = self.eval_model()
        was = model.training
        model.eval()
        fn = self.evaluator.model_fn(model)
        loader = DataLoader(self.valid_set, batch_size=1, shuffle=False)
        for j, batch in enumerate(loader):
            if j >= k:
                break
            pred, target, extras = self.task.forward(fn, batch, self.device)
            tiles = [extras["input"]] if self.task.compare_input and torch.is_tensor(extras.get("input")) else []
            tiles += [pred] + ([target] if target is not None else [])
            if all(x.shape == pred.shape for x in tiles):
                self.tb.image(f"samples/{j}", torch.cat([x[0].float() for x in tiles], dim=-1), epoch + 1)
        model.train(was)


def save_weights_only(model: nn.Module, path: os.PathLike, **meta) -> None:
    """A small inference checkpoint (weights + metadata), written atomically."""
    atomic_save({"model": model.state_dict(), **meta}, path)
