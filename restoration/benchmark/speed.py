"""Speed and memory, each measured in a fresh Python process (:func:`measure_speed`; the child
is ``python -m restoration.benchmark _measure ...``)."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import torch

from ..config import Config, load_config


ROOT = Path(__file__).resolve().parents[2]  # the repository (or site-packages) root


# -- speed and memory in a fresh process -----------------------------------------------

from ..engine.memory import MALLOC_ENV, PeakMemory  # noqa: E402  (the engine owns memory measurement)

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(step: Callable[[], None], device: torch.device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        step()
    times = []
    for _ in range(max(1, repeats)):
        _sync(device)
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _peak_mb(step: Callable[[], None], device: torch.device):
    """(MB, method): one warm-up call (weights, optimiser state and the code pages the
    first call maps are then in place), then the peak of one more call above that."""
    step()
    with PeakMemory(device) as peak:
        step()
    return peak.bytes / 2 ** 20, peak.method


def _steps(cfg_path: str, checkpoint: Optional[str], size: int, patch: int, batch: int, throughput_batch: int,
           device: str):
    """(device, inference step factory, training step) for the model of a benchmark config
    (``cfg_path``: a YAML path or an already built :class:`Config`)."""
    from ..checkpoint import load_model
    from ..spiking import reset_state
    from ..engine.optim import build_optimizer
    from ..engine.trainer import apply_gradients, forward_loss
    from ..registry import build_model_from_config, build_task

    cfg = cfg_path if isinstance(cfg_path, Config) else load_config(cfg_path)
    dev = torch.device(device)
    task = build_task(cfg.task, **dict(cfg.task_args or {}))
    torch.manual_seed(0)
    # the checkpoint's weights on the benchmark recipe's model (one rebuild rule: load_model)
    model = load_model(checkpoint, config=cfg, device=dev) if checkpoint else build_model_from_config(cfg).to(dev)

    def infer(n):
        b = {k: v.to(dev) if torch.is_tensor(v) else v for k, v in task.example_batch(n, size).items()}

        def step():
            model.eval()
            with torch.no_grad():
                task.forward(model, b, dev)
            reset_state(model)
        return step

    loss_fn = task.build_loss(cfg).to(dev)
    opt = build_optimizer(model, cfg.optim)
    tb = task.example_batch(batch, patch)
    clip = cfg.train.clip_grad

    scaler = torch.amp.GradScaler("cuda", enabled=False)  # passes through: no AMP here

    def train_step():  # the trainer's step (its two functions), without AMP, accumulation and DDP
        model.train()
        loss, _, _ = forward_loss(task, model, loss_fn, tb, dev)
        loss.backward()
        apply_gradients(model, opt, scaler, clip)
    train_step.model = model  # for callers that adjust it (tools/bench_spiking.py sets the backend)
    return dev, infer, train_step


def _measure(cfg_path: str, checkpoint: Optional[str], what: str, size: int, patch: int, batch: int, warmup: int,
             repeats: int, throughput_batch: int, device: str) -> Dict[str, Any]:
    """Run in a fresh process (see :func:`measure_speed`): ``what='speed'`` gives the
    median latency (batch 1), throughput (``throughput_batch``) at ``size`` and training
    step time (``batch`` x ``patch``); ``'memory'`` the peak memory of each."""
    dev, infer, train_step = _steps(cfg_path, checkpoint, size, patch, batch, throughput_batch, device)
    out: Dict[str, Any] = {"device": str(dev)}
    if what == "speed":
        out["latency_s"] = _median_time(infer(1), dev, warmup, repeats)
        out["throughput"] = throughput_batch / _median_time(infer(throughput_batch), dev, warmup, repeats)
        out["train_step_s"] = _median_time(train_step, dev, warmup, repeats)
    elif what == "memory":
        out["infer_peak_mb"], out["memory_method"] = _peak_mb(infer(1), dev)
        out["train_peak_mb"], _ = _peak_mb(train_step, dev)
    else:
        raise ValueError(f"unknown measurement {what!r}; use speed or memory")
    return out


def _run_child(args: List[str], env_extra: Mapping[str, str], timeout: float) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "restoration.benchmark", "_measure"] + args
    env = dict(os.environ, **env_extra)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run(cmd, cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON "):])
    raise RuntimeError(f"measurement process failed with exit code {proc.returncode}: {' '.join(cmd)}\n"
                       f"{proc.stderr.strip()[-2000:]}")


def measure_speed(cfg_path: os.PathLike, checkpoint: Optional[os.PathLike], size: int, patch: int, batch: int,
                  warmup: int, repeats: int, throughput_batch: int, device: str, threads: int,
                  timeout: float = 1800) -> Dict[str, Any]:
    """Latency, throughput and training step time (one fresh process, the normal
    allocator), then peak memory of an inference and a training step (a second fresh
    process, see :data:`MALLOC_ENV`), for the model of the benchmark config ``cfg_path``."""
    args = ["--config", str(cfg_path), "--size", str(size), "--patch", str(patch), "--batch", str(batch),
            "--warmup", str(warmup), "--repeats", str(repeats), "--throughput-batch", str(throughput_batch),
            "--device", device, "--threads", str(threads)] + (["--checkpoint", str(checkpoint)] if checkpoint else [])
    out = _run_child(args + ["--what", "speed"], {}, timeout)
    out.update(_run_child(args + ["--what", "memory"], MALLOC_ENV if device == "cpu" else {}, timeout))
    return out


def _measure_cli(argv: Sequence[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m restoration.benchmark _measure")
    p.add_argument("--config", required=True)
    p.add_argument("--checkpoint")
    p.add_argument("--what", required=True, choices=["speed", "memory"])
    for k in ("size", "patch", "batch", "warmup", "repeats", "throughput-batch", "threads"):
        p.add_argument(f"--{k}", type=int, required=True)
    p.add_argument("--device", default="cpu")
    a = p.parse_args(argv)
    torch.set_num_threads(max(1, a.threads))
    res = _measure(a.config, a.checkpoint, a.what, a.size, a.patch, a.batch, a.warmup, a.repeats,
                   a.throughput_batch, a.device)
    print("BENCH_JSON " + json.dumps(res), flush=True)
    return 0
