"""Logging: console + a plain ``train.log`` beside the checkpoints, TensorBoard, progress.

Progress bars (tqdm) are drawn only when stderr is a terminal; in CI logs and files
the same information comes as one log line every ``train.log_interval`` steps.
"""
from __future__ import annotations

import logging
import os
import platform
import sys
import time
from pathlib import Path
from typing import Dict, Optional

LOGGER_NAME = "restoration"


def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), for run and benchmark records."""
    try:
        with open("/proc/cpuinfo") as f:
            name = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        name = ""
    return name or platform.processor() or platform.machine() or "unknown CPU"


def setup_logger(log_file: Optional[os.PathLike] = None, main: bool = True) -> logging.Logger:
    """The ``restoration`` logger: INFO to stdout (rank 0 only) and to ``log_file``."""
    log = logging.getLogger(LOGGER_NAME)
    log.setLevel(logging.INFO)
    log.propagate = False
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(logging.Formatter("%(message)s"))
    console.setLevel(logging.INFO if main else logging.WARNING)
    log.addHandler(console)
    if log_file is not None and main:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, mode="a")
        fh.setFormatter(fmt)
        log.addHandler(fh)
    return log


def get_logger() -> logging.Logger:
    return logging.getLogger(LOGGER_NAME)


def use_tty_progress() -> bool:
    return sys.stderr.isatty() and os.environ.get("RESTORATION_NO_TQDM", "") == ""


class Progress:
    """One epoch's progress: a tqdm bar on a terminal, periodic log lines otherwise."""

    def __init__(self, total: int, desc: str, enabled: bool, log_interval: int = 20):
        self.total, self.desc, self.enabled = total, desc, enabled
        self.log_interval = max(1, int(log_interval))
        self.bar = None
        self.n = 0
        self.t0 = time.time()
        self.log = get_logger()
        if enabled and use_tty_progress():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="batch", dynamic_ncols=True, leave=False)

    def update(self, stats: Dict[str, float]) -> None:
        self.n += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix({k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in stats.items()},
                                 refresh=False)
            self.bar.update(1)
        elif self.n % self.log_interval == 0 or self.n == self.total:
            parts = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in stats.items())
            self.log.info(f"{self.desc} [{self.n}/{self.total}] {parts}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class TBWriter:
    """tensorboardX SummaryWriter on rank 0; a no-op elsewhere or if it cannot start."""

    def __init__(self, log_dir: Optional[os.PathLike], enabled: bool = True):
        self.w = None
        if enabled and log_dir is not None:
            try:
                from tensorboardX import SummaryWriter

                self.w = SummaryWriter(str(log_dir))
            except Exception as e:  # noqa: BLE001 - TensorBoard is optional for a run
                get_logger().warning(f"TensorBoard logging disabled: {type(e).__name__}: {e}")

    def scalar(self, tag, value, step):
        if self.w is not None:
            self.w.add_scalar(tag, value, step)

    def image(self, tag, img, step):
        if self.w is not None:
            self.w.add_image(tag, img.detach().float().clamp(0, 1).cpu().numpy(), step)

    def close(self):
        if self.w is not None:
            self.w.close()
