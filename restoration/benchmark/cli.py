"""``tools/benchmark.py``: the cross-task SNN vs ANN benchmark's command line.

Parses the flags, checks them (one line per mistake), runs the jobs (``run.py``), measures
speed, and writes the run folder: benchmark.md (tables), benchmark.csv, layer_rates.csv,
<task>_snr.csv, and PNG plots (quality vs energy per task, JSCC SNR curves, firing rate per
layer). See docs/BENCHMARKS.md.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from ..energy import MEMORY_LEVELS
from .plots import plot_firing_rates, plot_quality_energy, plot_snr_curves
from .quality import aggregate_seeds, seed_comparisons, severity_fields, severity_quality
from ..atomic import write_text
from .report import markdown_report, write_csv
from .run import Clock, adopt_checkpoint_recipe, measure_model_speed, run_jobs  # noqa: F401  (tools/benchmark.py's names)
from .suite import BUDGETS, EXTRA_SPECS, SEED0, SUITES, build_bench_config, task_specs

DESCRIPTION = "Cross-task SNN vs ANN benchmark: quality, energy, speed and memory, with plots."

BUDGET_NOTES = {
    "quick": "a smoke-level comparison, all three built-in tasks in about 15 minutes per seed on 2 CPU cores\n"
             "         (--seeds 3 --threads 1 --jobs 2: 29.5 minutes measured on 2 cores, 53 with --jobs 1;\n"
             "         speed is measured once per model)",
    "full": "each task's shipped CPU recipe (configs/<task>/*_cpu.yaml)",
}


def epilog() -> str:
    """The models and budgets of the registered tasks (read when the parser is built, so a
    plugin registered since then appears)."""
    def models(table):
        return "\n".join(f"  {t:12s} " + ", ".join(f"{s.name} ({s.role})" for s in specs) for t, specs in table.items())

    budgets = []
    for name, budget in BUDGETS.items():
        if name == "micro":
            continue
        tasks = list(budget["tasks"])
        every = set(tasks) == set(SUITES)
        budgets.append(f"  {name:6s} " + BUDGET_NOTES.get(name, budget["label"])
                       + ("" if every else f" ({', '.join(tasks)} only)"))
    return ("models per task:\n" + models(SUITES) + "\nalso benchmarkable with --models:\n" + models(EXTRA_SPECS)
            + "\n\nbudgets (what all models of a task share: data, crop, batch, optimiser steps, seed):\n"
            + "\n".join(budgets) + "\nEach model keeps its own recipe's optimiser, loss and schedule shape.\n")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tools/benchmark.py", description=DESCRIPTION,
                                epilog=epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", required=True, choices=list(SUITES), metavar="TASK",
                   help=f"tasks to benchmark: {', '.join(SUITES)}")
    p.add_argument("--budget", default="quick", choices=[b for b in BUDGETS if b != "micro"] + ["micro"],
                   help="training budget: quick (default) or full; micro is for the tests")
    p.add_argument("--device", default="auto", help="training and evaluation device: auto, cpu, cuda, cuda:N")
    p.add_argument("--speed-devices", nargs="+", default=None, metavar="DEV",
                   help="devices for the latency/memory measurements (default: cpu, and cuda when present)")
    p.add_argument("--out", help="run folder (default runs/benchmark/<budget>_<date-time>)")
    p.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                   help="benchmark these models (in this order) instead of each task's suite: any of the suite "
                        "and of the models listed below as benchmarkable with --models")
    p.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                   help="use these weights for model NAME instead of training it (repeatable); PATH may be "
                        "the name of shipped weights, e.g. esdnet_tiny=esdnet_tiny (pretrained/MANIFEST.yaml)")
    p.add_argument("--pretrained", action="store_true",
                   help="evaluate the shipped weights of every benchmarked model that has them instead of "
                        "training; models without shipped weights are left out")
    p.add_argument("--data-dir", action="append", default=[], metavar="TASK=PATH",
                   help="data folder for TASK (default: its built-in generated set)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every model's recipe, e.g. --set optim.lr=1e-3")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: OMP_NUM_THREADS, else half the cores)")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="train and evaluate every model N times with seeds 1234+k (weights, data order, crops); "
                        "quality as mean +- std over seeds, SNN vs twin with a paired 95%% interval (default 1)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="train and evaluate N models at once in worker processes of --threads threads each "
                        "(--jobs 2 --threads 1 uses both cores of a 2-core machine); speed is then measured "
                        "one model at a time after all training; results do not depend on N (default 1)")
    p.add_argument("--no-speed", dest="speed", action="store_false", help="skip latency/throughput/memory")
    return p


def pairs(items, what: str, p: argparse.ArgumentParser) -> dict:
    out = {}
    for it in items:
        if "=" not in it:
            p.error(f"{what} expects NAME=PATH, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def machine_line(threads: int) -> str:
    import torch

    from ..engine.log import cpu_name

    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    return (f"{cpu_name()}, {os.cpu_count()} logical cores{gpu}; torch {torch.__version__} "
            f"with {threads} thread(s); Python {platform.python_version()}")


def shipped_weights(tasks) -> dict:
    """``{model name: verified weight file}`` for the benchmarked models with shipped weights
    (the first manifest entry of each model)."""
    from ..pretrained import list_pretrained, pretrained_info, pretrained_path

    wanted = {s.name for t in tasks for s in SUITES[t] + EXTRA_SPECS.get(t, [])}
    out = {}
    for n in list_pretrained():
        model = pretrained_info(n)["model"]
        if model in wanted and model not in out:
            out[model] = str(pretrained_path(n))
    return out


def checked_inputs(p: argparse.ArgumentParser, args) -> tuple:
    """``(checkpoints, data_dirs, skipped)`` from the flags, each mistake one ``p.error`` line."""
    checkpoints = pairs(args.checkpoint, "--checkpoint", p)
    data_dirs = pairs(args.data_dir, "--data-dir", p)
    for m in args.models or ():
        if not any(task_specs(t, [m]) for t in args.tasks):
            choices = sorted({s.name for t in args.tasks for s in SUITES[t] + EXTRA_SPECS.get(t, [])})
            p.error(f"--models {m}: not benchmarkable in tasks {' '.join(args.tasks)}; choose from {', '.join(choices)}")
    if args.seeds < 1:
        p.error(f"--seeds {args.seeds}: give 1 or more seeds")
    if args.jobs < 1:
        p.error(f"--jobs {args.jobs}: give 1 or more worker processes")
    if args.seeds > 1 and (args.checkpoint or args.pretrained):
        p.error(f"--seeds {args.seeds} trains each model {args.seeds} times; loaded weights (--checkpoint, "
                f"--pretrained) have no seed to vary: drop --seeds")
    for t in args.tasks:
        if t not in BUDGETS[args.budget]["tasks"]:
            p.error(f"--budget {args.budget} covers the tasks {', '.join(BUDGETS[args.budget]['tasks'])}, not {t}")
    known = {s.name for t in args.tasks for s in task_specs(t, args.models)}
    shipped = shipped_weights(args.tasks) if args.pretrained else {}
    for name, path in checkpoints.items():
        if name not in known:
            p.error(f"--checkpoint {name}=...: {name!r} is not benchmarked in tasks {' '.join(args.tasks)}; "
                    f"choose from {', '.join(sorted(known))}")
        if not Path(path).is_file():
            from ..pretrained import PretrainedError, list_pretrained, pretrained_path

            try:
                names = list_pretrained()
            except PretrainedError:  # no pretrained/ folder: only a file path can work
                names = []
            if path not in names:
                p.error(f"--checkpoint {name}={path}: no such file, and no shipped weights of that name "
                        f"(shipped: {', '.join(names) or 'none found'})")
            checkpoints[name] = str(pretrained_path(path))  # verified against its sha256
    skipped = []
    for name, weights in shipped.items():
        checkpoints.setdefault(name, weights)
    if args.pretrained:
        skipped = sorted(known - set(checkpoints))
        if not checkpoints:
            p.error(f"--pretrained: no shipped weights for the models of {' '.join(args.tasks)}")
    for t, path in data_dirs.items():
        if t not in args.tasks:
            p.error(f"--data-dir {t}=...: {t!r} is not among --tasks {' '.join(args.tasks)}")
        if not Path(path).expanduser().is_dir():
            p.error(f"--data-dir {t}={path}: the folder does not exist (it must hold train/ and test/)")

    return checkpoints, data_dirs, skipped


def gather(plan, results) -> tuple:
    """One row per model (mean over seeds, per severity), plus the SNR curves and layer rates of
    the first seed, the protocols, the per-image results and the per-seed rows."""
    rows, curves, rates, protocols, per_image, seed_rows = [], {}, {}, {}, {}, []
    for n, (task_name, spec) in enumerate(plan):
        by_seed = []
        for k, (row, curve, neuron_rates, protocol) in enumerate(results[n]):
            per_image.setdefault(task_name, {}).setdefault(spec.name, []).append(row.pop("_per_image"))
            row.pop("_config"), row.pop("_weights")
            by_seed.append(row)
            seed_rows.append(row)
            protocols[task_name] = protocol
            if curve and k == 0:  # the first seed's sweep and rates (plots); the means are in the table
                curves.setdefault(task_name, {})[spec.name] = curve
            if neuron_rates and k == 0:
                rates[f"{task_name}/{spec.name}"] = neuron_rates
        agg = aggregate_seeds(by_seed)
        sev = severity_quality(per_image[task_name][spec.name])
        if sev:  # derain, dehaze: per severity with the made-worse count; stereo JSCC has none
            agg.update(severity_fields(sev))
            agg["made_worse"] = sev["all"]["worse"]
            agg["made_worse_of"] = sev["all"]["n_compared"]
            agg["severity"] = sev  # for the report's per-severity table; the CSV has the flat columns
        rows.append(agg)
    return rows, curves, rates, protocols, per_image, seed_rows


def write_outputs(out: Path, text: str, rows, seed_rows, rates, curves, tasks, what: str, seeds: int) -> list:
    """benchmark.md, benchmark.csv (and per seed), layer_rates.csv, <task>_snr.csv and the plots;
    returns the plots written."""
    write_text(out / "benchmark.md", text)
    write_csv(rows, out / "benchmark.csv")
    if seeds > 1:
        write_csv(seed_rows, out / "benchmark_seeds.csv")  # one row per model and seed
    layer_rows = [{"model": m, "layer": n, "firing_rate": v} for m, r in rates.items() for n, v in r.items()]
    write_text(out / "layer_rates.csv", "model,layer,firing_rate\n" +
               "".join(f"{r['model']},{r['layer']},{r['firing_rate']:.6f}\n" for r in layer_rows))
    plots = []
    for t in tasks:
        plots.append(plot_quality_energy(rows, t, out / f"quality_energy_{t}.png",
                                           title=f"{t}: quality vs energy, operation count ({what})"))
        for level in MEMORY_LEVELS:  # the memory-aware presets beside the operation count
            plots.append(plot_quality_energy(rows, t, out / f"quality_energy_{t}_{level}.png",
                                               title=f"{t}: quality vs energy, memory-aware {level.upper()} ({what})",
                                               energy_key=f"energy_{level}_mj"))
    roles = {r["model"]: r["role"] for r in rows}
    for t, c in curves.items():
        write_text(out / f"{t}_snr.csv", "model,snr_db,psnr,ssim,ms_ssim\n" + "".join(
            f"{m},{q['snr_db']:g},{q['psnr']:.4f},{q['ssim']:.5f},{q.get('ms_ssim') or ''}\n"
            for m, pts in c.items() for q in pts))
        plots.append(plot_snr_curves(c, out / f"{t}_snr.png", roles,
                                       title=f"{t}: quality vs channel SNR ({what})"))
    if rates:
        plots.append(plot_firing_rates(rates, out / "firing_rates.png",
                                         title=f"firing rate per neuron layer on the held-out images ({what})"))
    return plots


def main(argv=None) -> int:
    p = parser()
    args = p.parse_args(argv)
    checkpoints, data_dirs, skipped = checked_inputs(p, args)

    import torch

    from ..runtime import set_threads

    threads = set_threads(args.threads)  # as the engine: half the cores unless told
    speed_devices = args.speed_devices or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))

    from ..engine.log import setup_logger

    out = Path(args.out or f"runs/benchmark/{args.budget}_{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    log = setup_logger(out / "benchmark.log")
    command = "python tools/benchmark.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                               else sys.argv[1:]))
    load0 = os.getloadavg()
    machine = machine_line(threads)
    log.info(f"{command}\nmachine: {machine}\nload average at start: {load0[0]:.2f}\nrun folder: {out}")
    plan = [(t, s) for t in args.tasks for s in task_specs(t, args.models) if s.name not in skipped]
    if skipped:
        log.info(f"--pretrained: no shipped weights for {', '.join(skipped)}; left out")
    clock = Clock(len(plan) * args.seeds, log)
    results = run_jobs(plan, args, out, data_dirs, checkpoints, clock, out / "benchmark.log", threads, args.jobs)
    if args.speed:  # one model at a time, after all training: no timing shares the cores with a job
        for n, (task_name, spec) in enumerate(plan):
            row = results[n][0][0]  # speed does not depend on the seed: measured once
            label = f"{task_name} / {spec.name} ({spec.role})"
            clock.say(1 + n * args.seeds, f"{label}: latency, throughput, training step and peak memory on "
                                          f"{', '.join(speed_devices)}")
            measure_model_speed(row, args.budget, speed_devices, threads)
    rows, curves, rates, protocols, per_image, seed_rows = gather(plan, results)
    seed_stats = seed_comparisons(per_image, {r["model"]: r["role"] for r in rows})
    wall = time.time() - clock.t0
    load1 = os.getloadavg()

    budget = BUDGETS[args.budget]
    sp = budget["speed"]
    shares = []
    for t in args.tasks:
        r = next((r for r in rows if r["task"] == t), None)
        if r is None:  # --models named none of this task's models
            continue
        cfgb = build_bench_config(next(s for t2, s in plan if t2 == t), t, args.budget, args.device, data_dirs.get(t), args.overrides)
        scale = (budget["tasks"].get(t) or {}).get("lr_scale")
        steps = sorted({r2.get("train_steps") for r2 in rows if r2["task"] == t and r2.get("train_steps")})
        shares.append(f"{t}: crop {cfgb.data.patch_size}, batch {cfgb.data.batch_size}, "
                      + (f"{'/'.join(str(x) for x in steps)} optimiser steps ({cfgb.train.epochs} epochs)"
                         if steps else "weights loaded")
                      + (f", every recipe learning rate x{scale:g}" if scale else "")
                      + f", {r.get('n_test')} held-out items")
    methods = "; ".join(f"{d}: " + next((r[f"{d}_memory_method"] for r in rows if r.get(f"{d}_memory_method")), "-")
                        for d in speed_devices) if args.speed else "not measured (--no-speed)"
    trained = any(r.get("train_steps") for r in rows)
    what = f"{args.budget} budget" if trained else ("shipped weights" if args.pretrained else "loaded weights")
    label = budget["label"] if trained else (
        ("shipped weights (--pretrained)" if args.pretrained else "loaded weights (--checkpoint)")
        + ", evaluated as they are: no training in this run")
    notes = [f"Command: `{command}`",
             f"Machine: {machine}; load average {load0[0]:.2f} at start, {load1[0]:.2f} at the end "
             f"(other jobs share the cores).",
             f"Wall time: {wall / 60:.1f} min for the whole run ({'training, ' if trained else ''}evaluation, "
             f"counting, timing).",
             ("Shared budget per task — " if trained else "Timed training step per task — ")
             + "; ".join(shares) + (". Seed 1234 for all." if args.seeds == 1 else
                                    f". {args.seeds} seeds ({SEED0}..{SEED0 + args.seeds - 1}) per model: "
                                    "quality is mean +- std over seeds; costs are means over seeds."),
             *([f"Shipped weights (--pretrained) evaluated as they are; left out for want of shipped weights: "
                f"{', '.join(skipped) or 'none'}."] if args.pretrained else []),
             f"Speed: medians of {sp['repeats']} runs after {sp['warmup']} warm-up runs, each in a fresh process; "
             f"latency at batch 1 and throughput at batch {sp['throughput_batch']} at the stated size; training "
             f"step (forward, loss, backward, optimiser step) at the training crop and batch on random images. "
             f"Peak memory of one inference (batch 1, stated size) and one training step — {methods}.",
             "MACs count every time step a spiking model runs (dense count); SOPs and energy use per-layer input "
             "firing rates measured on the held-out images. 'firing rate': mean over all neuron outputs "
             "(OLIF: outputs above its threshold)."]
    text = markdown_report(rows, label, speed_devices, curves, notes, protocols, seed_stats=seed_stats)
    plots = write_outputs(out, text, rows, seed_rows, rates, curves, args.tasks, what, args.seeds)
    log.info("\n" + text)
    log.info(f"wrote {out / 'benchmark.md'}, benchmark.csv, layer_rates.csv and {len(plots)} plot(s); "
             f"wall time {wall / 60:.1f} min")
    return 0


def cli() -> int:
    """``main`` with user errors as one line (``RESTORATION_DEBUG=1`` shows the traceback)."""
    from ..engine.cli import friendly

    return friendly(main)

