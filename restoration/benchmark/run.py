"""Running the benchmark's jobs: train (or load), evaluate and count each model and seed,
then time each model once.

:func:`run_jobs` runs the (task, model, seed) jobs one after another, or ``jobs`` at a
time in worker processes (one per core is the way to use several CPU cores: a training
step of these small networks gains little from a second torch thread). Speed and memory
are measured afterwards, one model at a time, so that no timing shares the machine with
another job. The results do not depend on ``jobs``: each job is seeded on its own.
"""
from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .cost import cost_at_size, measure_ops
from .speed import measure_speed
from .suite import BUDGETS, SEED0, STATED_SIZE, build_bench_config, snr_sweep


class Clock:
    """Progress lines with the elapsed time: one line per stage, never a redraw."""

    def __init__(self, total: int, log, t0: Optional[float] = None):
        self.t0, self.total, self.log = time.time() if t0 is None else t0, total, log

    def say(self, i: int, what: str) -> None:
        m, s = divmod(int(time.time() - self.t0), 60)
        self.log.info(f"[{i}/{self.total} {m:02d}:{s:02d}] {what}")


def adopt_checkpoint_recipe(cfg, ck, model_name: str) -> None:
    """Give ``cfg`` the model arguments and the loss that the checkpoint ``ck`` was trained with
    (when it records them and is of ``model_name``): the model must be rebuilt as it was, and
    the timed training step must use a loss that model can feed (e.g. no rate term for a JSCC
    model trained without its entropy model)."""
    from ..config import Config

    saved = (ck.get("config") or {}) if isinstance(ck, dict) else {}
    model = saved.get("model") or {}
    if model.get("name") != model_name:
        return
    cfg.model.args = Config(model.get("args") or {})
    if saved.get("loss"):
        cfg.loss = Config(saved["loss"])


def output_levels(model, task, test_set, device, fn) -> int:
    """Distinct 8-bit values in the model's output for the first held-out item: a collapsed
    model (the DHF-JSCC-SNN seed reported 2-29) shows it at once."""
    import torch
    from torch.utils.data import DataLoader

    from ..spiking import reset_state

    batch = next(iter(DataLoader(test_set, batch_size=1)))
    with torch.no_grad():
        pred = task.forward(fn, batch, device)[0]
    reset_state(model)
    return int(torch.unique((pred.float().clamp(0, 1) * 255).round()).numel())


def train_and_evaluate(i: int, clock: Clock, task_name: str, spec, args, out: Path, data_dirs: Dict[str, str],
                       checkpoints: Dict[str, str], seed: Optional[int] = None):
    """Train (or load), evaluate and count one model at one seed; returns (row, SNR curve or
    None, per-layer neuron firing rates, metric protocol). The row keeps what the speed
    measurement needs under ``_config`` and ``_weights``, and the per-image results under
    ``_per_image``; none of the three goes to the CSV."""
    from torch.utils.data import DataLoader, Subset

    from ..config import Config, dump_config
    from ..checkpoint import load_checkpoint, load_model
    from ..engine.distributed import DistInfo
    from ..engine.evaluator import Evaluator
    from ..engine.trainer import Trainer, resolve_device
    from ..registry import build_task

    seed = SEED0 if seed is None else seed
    label = f"{task_name} / {spec.name} ({spec.role})" + (f" seed {seed}" if args.seeds > 1 else "")
    cfg = build_bench_config(spec, task_name, args.budget, args.device, data_dirs.get(task_name), args.overrides,
                             seed=seed)
    task = build_task(task_name, **dict(cfg.task_args or {}))
    # one folder per seed when there are several; the one-seed layout is kept
    run_dir = out / task_name / spec.name / (f"seed{seed}" if args.seeds > 1 else "")
    row: Dict[str, Any] = {"task": task_name, "model": spec.name, "role": spec.role, "seed": seed}
    if spec.name in checkpoints:
        ckpt = Path(checkpoints[spec.name])
        ck = load_checkpoint(ckpt)
        adopt_checkpoint_recipe(cfg, ck, spec.name)
        device = resolve_device(cfg.device, DistInfo())
        model = load_model(ck, config=cfg, device=device, source=ckpt)
        row.update(trained_from=str(ckpt), train_seconds=None, train_steps=None)
        clock.say(i, f"{label}: weights from {ckpt}")
    else:
        clock.say(i, f"{label}: training ({cfg.train.epochs} epochs x {cfg.train.max_steps_per_epoch or 'all'} "
                     f"steps, batch {cfg.data.batch_size}, crop {cfg.data.patch_size}, recipe {spec.recipe})")
        trainer = Trainer(cfg, task, run_dir)
        t0 = time.time()
        trainer.fit()
        row.update(train_seconds=time.time() - t0, train_steps=trainer.global_step, trained_from="trained here")
        model, device = trainer.eval_model(), trainer.device
        ckpt = trainer.ckpt.path("last")
    model.eval()
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir / "bench_config.yaml"
    dump_config(cfg, cfg_path)

    # quality on the held-out split, the task's protocol
    clock.say(i, f"{label}: evaluating on the held-out '{cfg.data.test_split}' split")
    test_cfg = Config(cfg.to_dict())
    test_cfg.data.valid_mode = "test"
    test_set = task.build_dataset(test_cfg, cfg.data.test_split, False)
    cap = BUDGETS[args.budget].get("max_test_images")
    if cap and cap < len(test_set):
        test_set = Subset(test_set, range(cap))
    ev = Evaluator(task, cfg, device)
    res = ev.evaluate(model, test_set, full=True)
    s = res.summary
    row.update(n_test=len(test_set), psnr=s.get("psnr"), ssim=s.get("ssim"), ms_ssim=s.get("ms_ssim"),
               input_psnr=s.get("input_psnr"), input_ssim=s.get("input_ssim"), input_ms_ssim=s.get("input_ms_ssim"))
    row["output_levels"] = output_levels(model, task, test_set, device, ev.model_fn(model))
    protocol = (", Y channel" if ev.y_channel else ", RGB") + (f", border {ev.crop_border}" if ev.crop_border else "")

    curve = None
    sweep = snr_sweep(task_name)
    attr = "snr_db"  # the channel's SNR, an attribute of a JSCC model
    if sweep and hasattr(model, attr):
        trained_snr = getattr(model, attr)
        row["train_snr_db"] = trained_snr
        curve = []
        try:
            for snr in sweep:
                setattr(model, attr, snr)
                r = ev.evaluate(model, test_set, full=True).summary
                curve.append({"snr_db": snr, "psnr": r["psnr"], "ssim": r["ssim"], "ms_ssim": r.get("ms_ssim")})
                row[f"psnr_snr{snr:g}"], row[f"ms_ssim_snr{snr:g}"] = r["psnr"], r.get("ms_ssim")
        finally:
            setattr(model, attr, trained_snr)
        clock.say(i, f"{label}: SNR sweep " + ", ".join(f"{p['snr_db']:g} dB {p['psnr']:.2f}" for p in curve))

    # cost: firing rates on the held-out images, MACs / SOPs / energy at the stated size
    size = BUDGETS[args.budget].get("stated_size") or STATED_SIZE[task_name]
    measured = measure_ops(model, task, DataLoader(test_set, batch_size=1), device, fn=ev.model_fn(model))
    cost = cost_at_size(model, task, device, size, measured)
    row.update(params=sum(p.numel() for p in model.parameters()), gmacs=cost["macs"] / 1e9,
               gsops=cost["sops"] / 1e9, spike_mac_share=cost["spike_mac_share"], energy_mj=cost["energy_mj"],
               energy_sram_mj=cost["energy_sram_mj"], energy_dram_mj=cost["energy_dram_mj"],
               memory_mbit=cost["memory_mbit"], mean_rate=measured["mean_rate"], stated_size=size)
    clock.say(i, f"{label}: PSNR {row['psnr']:.2f} SSIM {row['ssim']:.4f}, {row['gmacs']:.2f} GMACs, "
                 f"{row['gsops']:.3f} GSOPs, {row['energy_mj']:.2f} mJ")
    row.update(_per_image=res.rows, _config=str(cfg_path), _weights=str(ckpt))
    return row, curve, measured["neuron_rates"], protocol


def measure_model_speed(row: Dict[str, Any], budget: str, devices: Sequence[str], threads: int) -> None:
    """Latency, throughput, training step and peak memory of the model of ``row`` (each in a
    fresh process), on each device; the figures go into ``row``."""
    from ..config import load_config

    cfg = load_config(row["_config"])
    sp = BUDGETS[budget]["speed"]
    for dev in devices:
        m = measure_speed(row["_config"], row["_weights"], int(row["stated_size"]), int(cfg.data.patch_size),
                          int(cfg.data.batch_size), sp["warmup"], sp["repeats"], sp["throughput_batch"], dev, threads)
        row.update({f"{dev}_latency_ms": m["latency_s"] * 1e3, f"{dev}_throughput": m["throughput"],
                    f"{dev}_train_step_ms": m["train_step_s"] * 1e3, f"{dev}_infer_peak_mb": m["infer_peak_mb"],
                    f"{dev}_train_peak_mb": m["train_peak_mb"], f"{dev}_memory_method": m["memory_method"]})


# -- worker processes ------------------------------------------------------------------

_WORKER: Dict[str, Any] = {}


def _worker_init(threads: int, log_file: str, t0: float, total: int) -> None:
    import torch

    from ..engine.log import setup_logger

    torch.set_num_threads(max(1, threads))
    _WORKER["clock"] = Clock(total, setup_logger(log_file), t0)


def _worker_job(i: int, task_name: str, spec, args, out: Path, data_dirs, checkpoints, seed: int):
    return train_and_evaluate(i, _WORKER["clock"], task_name, spec, args, out, data_dirs, checkpoints, seed=seed)


def run_jobs(plan: List[Tuple[str, Any]], args, out: Path, data_dirs: Dict[str, str], checkpoints: Dict[str, str],
             clock: Clock, log_file: Path, threads: int, jobs: int = 1) -> List[List[tuple]]:
    """Every model of ``plan`` at ``args.seeds`` seeds: ``results[p][k]`` is the
    :func:`train_and_evaluate` tuple of plan entry ``p`` at seed ``SEED0 + k``. With
    ``jobs > 1`` they run in that many worker processes of ``threads`` torch threads each."""
    work = [(p, k, 1 + p * args.seeds + k) for p in range(len(plan)) for k in range(args.seeds)]
    results: List[List[Any]] = [[None] * args.seeds for _ in plan]
    if jobs <= 1:
        for p, k, i in work:
            task_name, spec = plan[p]
            results[p][k] = train_and_evaluate(i, clock, task_name, spec, args, out, data_dirs, checkpoints,
                                               seed=SEED0 + k)
        return results
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that holds torch threads
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                             initargs=(threads, str(log_file), clock.t0, clock.total)) as pool:
        futures = {pool.submit(_worker_job, i, *plan[p], args, out, data_dirs, checkpoints, SEED0 + k): (p, k)
                   for p, k, i in work}
        for fut, (p, k) in futures.items():
            results[p][k] = fut.result()  # a failed job raises here, with its traceback
    return results
