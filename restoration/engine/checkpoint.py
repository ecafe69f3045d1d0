"""Run folders' checkpoints: the DehazeSNN naming, RNG state capture, run locks. Writing,
reading and rebuilding a model from one file live a floor below, in ``restoration/checkpoint.py``
(re-exported here).

In a run folder, for model ``M``:

* ``M_current.pth``: the latest epoch, everything needed to resume;
* ``M_best.pth``: the epoch with the best validation score;
* ``M_last.pth``: the final epoch of a finished run;
* ``M_epoch_XXX.pth``: the last ``train.keep_last_epochs`` epochs (``--last-n``).

Every file is written to a temporary name and renamed, so a crash never leaves a
half-written checkpoint behind.
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import numpy as np
import torch

from ..checkpoint import atomic_save, load_checkpoint, load_model, model_state_from, weights_from  # noqa: F401
from ..errors import UserError


def rng_state() -> Dict[str, Any]:
    """Every random generator a training step may draw from."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu() if torch.is_tensor(state["torch"]) else state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])


class CheckpointManager:
    """Writes the ``_current``/``_best``/``_last``/``_epoch_XXX`` files of one run."""

    def __init__(self, run_dir: os.PathLike, model_name: str, keep_last_epochs: int = 0):
        self.dir = Path(run_dir)
        self.model_name = model_name
        self.keep_last_epochs = int(keep_last_epochs or 0)

    def path(self, which: str) -> Path:
        return self.dir / f"{self.model_name}_{which}.pth"

    def epoch_path(self, epoch: int) -> Path:
        return self.dir / f"{self.model_name}_epoch_{epoch:04d}.pth"

    def save(self, state: Dict[str, Any], epoch: int, total_epochs: int, is_best: bool, is_last: bool) -> None:
        atomic_save(state, self.path("current"))
        if is_best:
            atomic_save(state, self.path("best"))
        if is_last:
            atomic_save(state, self.path("last"))
        if self.keep_last_epochs > 0 and total_epochs - epoch <= self.keep_last_epochs:
            atomic_save(state, self.epoch_path(epoch))
        self.prune()

    def epoch_files(self) -> List[Path]:
        pat = re.compile(re.escape(self.model_name) + r"_epoch_(\d+)\.pth$")
        found = [(int(m.group(1)), p) for p in self.dir.glob(f"{self.model_name}_epoch_*.pth")
                 if (m := pat.search(p.name))]
        return [p for _, p in sorted(found)]

    def prune(self) -> None:
        files = self.epoch_files()
        excess = len(files) - self.keep_last_epochs
        for p in files[:max(0, excess)]:
            p.unlink(missing_ok=True)

    def latest(self) -> Optional[Path]:
        p = self.path("current")
        return p if p.is_file() else None


def find_checkpoints(run_dir: os.PathLike) -> Dict[str, Path]:
    """``{'best': path, 'current': ..., 'last': ...}`` for the files present in a run folder."""
    out = {}
    for p in Path(run_dir).glob("*_*.pth"):
        for which in ("best", "current", "last"):
            if p.name.endswith(f"_{which}.pth"):
                out[which] = p
    return out


class RunLock:
    """An exclusive lock on a run folder (``.lock``, ``flock``): two trainings never
    share a folder. The kernel drops the lock when the process ends, however it ends."""

    def __init__(self, run_dir: os.PathLike):
        self.path = Path(run_dir) / ".lock"
        self.fd: Optional[int] = None

    @staticmethod
    def held_elsewhere(run_dir: os.PathLike) -> bool:
        """True while another process holds the lock of ``run_dir``."""
        lock = RunLock(run_dir)
        if not lock.path.is_file():
            return False
        try:
            lock.acquire()
        except UserError:
            return True
        lock.release()
        return False

    def acquire(self) -> "RunLock":
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            try:
                other = self.path.read_text().strip() or "?"
            except OSError:
                other = "?"
            raise UserError(f"run folder {self.path.parent} is in use by another training (pid {other}); wait "
                            f"for it to finish, or pass another --exp") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def newest_run(run_dir: os.PathLike) -> Path:
    """``run_dir`` or the newest of its numbered siblings (``<exp>_2``, ``<exp>_3``...,
    made when a run folder was already taken): the one whose checkpoints were written last."""
    run_dir = Path(run_dir)
    pat = re.compile(re.escape(run_dir.name) + r"_(\d+)$")
    found = [run_dir] if run_dir.is_dir() else []
    if run_dir.parent.is_dir():
        found += sorted((p for p in run_dir.parent.iterdir() if p.is_dir() and pat.match(p.name)),
                        key=lambda p: int(pat.match(p.name).group(1)))

    def last_write(p: Path) -> float:
        return max((f.stat().st_mtime for f in p.glob("*.pth")), default=-1.0)

    with_ckpt = [p for p in found if last_write(p) >= 0]
    return max(with_ckpt, key=last_write) if with_ckpt else run_dir
