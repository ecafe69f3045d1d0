"""What tools/train.py, tools/test.py and tools/infer.py do: flags (``cli.py``) -> recipe ->
task and model -> trainer, evaluator or inference, with the run folder and the shipped weights.

Kept in the library so that the tools are thin and the logic is importable and tested.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from ..config import CONFIG_ROOT, Config, ConfigError, dump_config, load_config, read_yaml
from ..errors import UserError
from .cli import debug_enabled, friendly, infer_parser, normalize_model_name, test_parser, train_parser


def _task_class(name: str):
    from ..registry import TASKS

    return TASKS.get(name)


def choose_recipe(task: str, model: Optional[str], config: Optional[str], exp: Optional[str],
                  own_data: bool = True) -> Path:
    """The recipe file the flags select (see --model/--config/--exp help). Without a
    data folder of the user's (``own_data`` False) the CPU-sized sibling comes first."""
    if config:
        from ..config import resolve_config_path

        return resolve_config_path(config)
    cls = _task_class(task)
    if model:
        # an ANN twin ("<model>_ann") trains with its spiking model's recipe
        for stem in _model_stems(model):
            sizes = [f"{stem}.yaml", f"{stem}_cpu.yaml"]
            names = ([f"{stem}_{exp}.yaml"] if exp else []) + (sizes if own_data else sizes[::-1])
            for n in names:
                if (CONFIG_ROOT / task / n).is_file():
                    return CONFIG_ROOT / task / n
    if not cls.default_config:
        raise ConfigError(f"task {task!r} has no default recipe; pass --config")
    return CONFIG_ROOT / cls.default_config


def _model_stems(model: str) -> List[str]:
    return [model] + ([model[:-len("_ann")]] if model.endswith("_ann") else [])


def home_task(model: str) -> Optional[str]:
    """The task whose ``configs/<task>/`` holds a recipe named after ``model`` (or its
    spiking model, for an ANN twin); None for a model no shipped recipe names."""
    for stem in _model_stems(model):
        for d in sorted(p for p in CONFIG_ROOT.iterdir() if p.is_dir()):
            if any(d.glob(f"{stem}.yaml")) or any(d.glob(f"{stem}_*.yaml")):
                return d.name
    return None


def flag_overrides(args: argparse.Namespace) -> List[str]:
    """The plain flags as config overrides (``--set`` entries come after and win)."""
    o: List[str] = []
    if getattr(args, "data_dir", None) or getattr(args, "dataset", None):
        root = Path(args.data_dir or ".")
        if args.dataset:
            root = root / args.dataset
        o.append(f"data.root={root}")
    if getattr(args, "device", None):
        o.append(f"device={args.device}")
    if getattr(args, "workers", None) is not None:
        o.append(f"data.num_workers={args.workers}")
    for flag, key in (("epochs", "train.epochs"), ("batch_size", "data.batch_size"), ("lr", "optim.lr"),
                      ("accumulation_steps", "train.accumulation_steps"), ("tile", "eval.tile"),
                      ("tile_overlap", "eval.tile_overlap")):
        v = getattr(args, flag, None)
        if v is not None:
            o.append(f"{key}={v}")
    return o


def _apply_env_flags(args: argparse.Namespace) -> None:
    if getattr(args, "gpu", None):
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.gpu)
        if not args.device:
            args.device = "cuda"
    from ..runtime import set_threads

    set_threads(getattr(args, "threads", None))  # half the cores unless told (see runtime.py)


def resolve_task_name(args: argparse.Namespace) -> str:
    if args.task:
        return args.task
    if getattr(args, "pretrained", None):
        from ..pretrained import pretrained_info

        return pretrained_info(args.pretrained)["task"]
    if args.config:
        t = read_yaml(args.config).get("task")
        if t:
            return t
    from ..registry import list_tasks

    raise ConfigError(f"no task given: pass --task ({', '.join(list_tasks())}) or a --config that sets 'task'")


def build_config(args: argparse.Namespace, base: Optional[Dict[str, Any]] = None) -> tuple:
    """(cfg, recipe path) from the flags. ``base`` (a checkpoint's saved config) sits
    under the recipe when no --config/--model is given."""
    task = resolve_task_name(args)
    model = normalize_model_name(args.model)
    extra = [f"task={task}"]
    if base is not None and not args.config and not args.model:
        # the device the checkpoint was trained on need not exist here: auto unless told
        over = ["device=auto"] + list(flag_overrides(args)) + list(args.overrides) + extra
        return load_config(None, over, base=base), None
    own_data = bool(getattr(args, "data_dir", None) or getattr(args, "dataset", None))
    if model and not args.config:
        home = home_task(model)
        if home and home != task:
            raise ConfigError(f"model {model!r} belongs to task {home!r} (configs/{home}/), not {task!r}; pass "
                              f"--task {home}, or pick a {task} model")
    recipe = choose_recipe(task, model, args.config, args.exp, own_data)
    recipe_task = read_yaml(recipe).get("task")
    if recipe_task and recipe_task != task:
        raise ConfigError(f"recipe {recipe} is for task {recipe_task!r}, not {task!r}; pass --task {recipe_task}, "
                          f"or a recipe from configs/{task}/")
    over = list(extra)
    if model:
        over.append(f"model.name={model}")
    over += flag_overrides(args) + list(args.overrides)
    return load_config(recipe, over), recipe


def exp_name(args, cfg, recipe: Optional[Path]) -> str:
    return args.exp or cfg.exp or (recipe.stem if recipe else str(cfg.model.name))


def fresh_run_dir(path: Path) -> Path:
    """``path`` if it holds no checkpoint yet, else ``path_2``, ``path_3``, ..."""
    from .checkpoint import RunLock

    def used(p: Path) -> bool:
        return p.is_dir() and (any(p.glob("*.pth")) or RunLock.held_elsewhere(p))

    if not used(path):
        return path
    i = 2
    while used(path.with_name(f"{path.name}_{i}")):
        i += 1
    return path.with_name(f"{path.name}_{i}")


def _main_rank() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


# -- train ----------------------------------------------------------------------------

def train_main(argv: Optional[Sequence[str]] = None) -> int:
    args = train_parser().parse_args(argv)
    state: Dict[str, Any] = {}
    return friendly(lambda: _train(args, state), debug_enabled(args),
                    on_interrupt=lambda: _resume_hint(state, argv))


def _resume_hint(state: Dict[str, Any], argv: Optional[Sequence[str]]) -> str:
    """What to type after Ctrl-C: the same command with --exp <run folder> --resume."""
    run_dir = state.get("run_dir")
    if run_dir is None:
        return "nothing was written"
    words = list(sys.argv[1:] if argv is None else argv)
    keep, skip = [], False
    for w in words:  # drop --exp/--overwrite/--resume (re-added below)
        if skip:
            skip = False
            continue
        if w in ("--exp", "--resume"):
            skip = w == "--exp"
            continue
        if w.startswith(("--exp=", "--resume=")) or w == "--overwrite":
            continue
        keep.append(w)
    cmd = " ".join(["python tools/train.py"] + keep + ["--exp", run_dir.name, "--resume"])
    if not any(Path(run_dir).glob("*_current.pth")):
        return f"no epoch finished, nothing was saved in {run_dir}; start again with the same command"
    return f"the last finished epoch is saved in {run_dir}; continue with:\n  {cmd}"


def _train(args, state: Dict[str, Any]) -> int:
    _apply_env_flags(args)
    from ..atomic import remove_stale_temporaries
    from ..registry import build_task
    from .checkpoint import RunLock, newest_run
    from .distributed import cleanup
    from .log import setup_logger
    from .trainer import Trainer

    cfg, recipe = build_config(args)
    task = build_task(cfg.task, **dict(cfg.task_args or {}))
    exp = exp_name(args, cfg, recipe)
    run_dir = Path(args.save_dir or cfg.output_root) / cfg.task / exp
    fine_tune = args.fine_tune
    picked_note = ""
    if args.resume is True and not args.exp:
        newest = newest_run(run_dir)
        if newest != run_dir:
            picked_note = f"--resume: picked {newest}, the newest of the {run_dir.name}* run folders"
        run_dir = newest
    if not args.resume and not args.overwrite:
        run_dir = fresh_run_dir(run_dir)
    if fine_tune:
        ft = cfg.train.fine_tune
        cfg.optim.lr *= ft.lr_scale
        if cfg.optim.neuron_lr is not None:
            cfg.optim.neuron_lr *= ft.lr_scale
        cfg.sched.warmup_epochs *= ft.warmup_scale
        cfg.train.epochs = max(1, int(round(cfg.train.epochs * ft.epochs_scale)))
        if fine_tune is True:
            fine_tune = Path(args.save_dir or cfg.output_root) / cfg.task / exp / f"{cfg.model.name}_base.pth"
    cfg.exp = run_dir.name
    main = _main_rank()
    if main:
        # every split is checked before the first epoch: a bad test pair must not wait for the end
        check_splits(task, cfg)
    lock = RunLock(run_dir).acquire() if main else None
    try:
        state["run_dir"] = run_dir
        log = setup_logger(run_dir / "train.log", main=main)
        if main:
            for p in remove_stale_temporaries(run_dir):
                log.info(f"removed {p.name}, left behind by an interrupted run")
            dump_config(cfg, run_dir / "config.yaml")
            if picked_note:
                log.info(picked_note)
            log.info(f"task {cfg.task}, recipe {recipe}, run folder {run_dir}")
        t0 = time.time()
        try:
            trainer = Trainer(cfg, task, run_dir, resume=args.resume, fine_tune=fine_tune or None)
            trainer.fit()
            if main and args.final_test:
                final_test(trainer, cfg, task, run_dir, log)
        finally:
            cleanup()
        if main:
            log.info(f"total wall time {time.time() - t0:.1f} s; checkpoints and train.log in {run_dir}")
    finally:
        if lock is not None:
            lock.release()
    return 0


def check_splits(task, cfg) -> None:
    """Open every split the run will read and check each pair's sizes from the file
    headers (cheap), so that a bad file fails now, not after an epoch of training."""
    for split, train in ((cfg.data.train_split, True), (cfg.data.test_split, False)):
        ds = task.build_dataset(cfg, split, train)
        check = getattr(ds, "check_headers", None)
        if check is not None:
            check(split)


def final_test(trainer, cfg, task, run_dir: Path, log) -> None:
    """The table at the end of training: input vs output on the held-out split."""
    from .checkpoint import load_checkpoint, weights_from
    from .evaluator import format_table, write_results

    model = trainer.eval_model()
    which = cfg.eval.final
    if which == "best" and trainer.ckpt.path("best").is_file():
        model.load_state_dict(weights_from(load_checkpoint(trainer.ckpt.path("best"), map_location=trainer.device)))
    split = cfg.data.test_split
    test_cfg = Config(cfg.to_dict())
    test_cfg.data.valid_mode = "test"
    test_set = task.build_dataset(test_cfg, split, False)
    out = run_dir / "results" / split
    res = trainer.evaluator.evaluate(model, test_set, full=True,
                                     image_dir=out / "imgs" if cfg.eval.save_images else None)
    table = format_table(res.summary, res.rows, title=f"{cfg.task} / {cfg.model.name}: {which} weights on the "
                                                      f"'{split}' split ({len(res.rows)} images, "
                                                      f"{_protocol(trainer.evaluator)})")
    write_results(res, out, table)
    log.info("\n" + table)
    log.info(f"per-image results: {out / 'results.csv'}")


def _protocol(ev) -> str:
    return ("Y channel" if ev.y_channel else "RGB") + (f", border {ev.crop_border}" if ev.crop_border else "")


# -- test -----------------------------------------------------------------------------

def _locate_checkpoint(args, cfg_for_names) -> Path:
    from .checkpoint import find_checkpoints

    if getattr(args, "pretrained", None):
        from ..pretrained import pretrained_path

        return pretrained_path(args.pretrained)
    if args.checkpoint:
        return Path(args.checkpoint)
    if args.run_dir:
        run = Path(args.run_dir)
    else:
        from .checkpoint import newest_run

        cfg, recipe = cfg_for_names
        named = Path(args.save_dir or cfg.output_root) / cfg.task / exp_name(args, cfg, recipe)
        run = named if args.exp else newest_run(named)
        if run != named:
            from .log import get_logger

            get_logger().info(f"using run folder {run}, the newest of the {named.name}* run folders "
                              f"(--run-dir or --exp picks another)")
    found = find_checkpoints(run)
    if args.which not in found:
        raise FileNotFoundError(f"no <model>_{args.which}.pth in {str(run)!r}; train first "
                                f"(python tools/train.py --task {cfg_for_names[0].task}) or pass --checkpoint/"
                                f"--run-dir")
    return found[args.which]


def select_pretrained(args, default_for_task: bool) -> None:
    """Fill ``args.pretrained`` from ``--checkpoint NAME`` (a shipped name, not a file) or,
    with ``default_for_task`` and no weights named at all, from the manifest: the weights
    shipped for ``--model``, else the task's default. The architecture then comes from the
    weight file, so ``--model`` is only checked against it."""
    from ..pretrained import default_pretrained, list_pretrained, pretrained_info

    if args.checkpoint and not Path(args.checkpoint).exists() and "/" not in args.checkpoint \
            and not args.checkpoint.endswith(".pth"):
        try:
            shipped = list_pretrained()
        except ValueError:
            shipped = []
        if args.checkpoint in shipped:
            args.pretrained, args.checkpoint = args.checkpoint, None
    if not args.pretrained and default_for_task and not args.checkpoint and not args.run_dir:
        task = resolve_task_name(args)
        model = normalize_model_name(args.model)
        if model:
            try:
                names = [n for n in list_pretrained(task) if pretrained_info(n).get("model") == model]
            except ValueError:
                names = []
            if not names:
                raise FileNotFoundError(f"no pretrained weights are shipped for model {model!r} of task {task!r}; "
                                        f"pass --checkpoint or --run-dir with your own (tools/train.py --task "
                                        f"{task} --model {model})")
            args.pretrained = names[0]
        else:
            args.pretrained = default_pretrained(task)
    if args.pretrained:
        entry = pretrained_info(args.pretrained)
        if args.task and args.task != entry["task"]:
            raise ValueError(f"pretrained weights {args.pretrained!r} are for task {entry['task']!r}, not "
                             f"{args.task!r}; pick one of: {', '.join(list_pretrained(args.task)) or '(none)'}")
        model = normalize_model_name(args.model)
        if model and model != entry["model"]:
            raise ValueError(f"pretrained weights {args.pretrained!r} are a {entry['model']!r} model, not {model!r}")
        args.task, args.model = entry["task"], None


def load_for_eval(args):
    """(cfg, task, model, checkpoint path) for test/infer: the checkpoint's own recipe
    (model name and arguments) under the flags' overrides."""
    from ..registry import build_task
    from .checkpoint import load_checkpoint, load_model
    from .trainer import resolve_device
    from .distributed import DistInfo

    names_cfg = build_config(args)
    path = _locate_checkpoint(args, names_cfg)
    ck = load_checkpoint(path)
    saved = ck.get("config") if isinstance(ck, dict) else None
    saved_task = (saved or {}).get("task") or (ck.get("task") if isinstance(ck, dict) else None)
    asked = names_cfg[0].task
    if saved_task and saved_task != asked:
        model_name = (saved or {}).get("model", {}).get("name") or ck.get("model_name") or "?"
        raise UserError(f"checkpoint {path} holds a {saved_task!r} model ({model_name}), not a {asked!r} one; "
                        f"pass --task {saved_task}, or a {asked} checkpoint")
    if saved and not args.config and not args.model:
        cfg, _ = build_config(args, base=saved)
    else:
        cfg = names_cfg[0]
    task = build_task(cfg.task, **dict(cfg.task_args or {}))
    device = resolve_device(cfg.device, DistInfo())
    model = task.prepare_model(load_model(ck, config=cfg, device=device, source=path), cfg)
    return cfg, task, model, path, device


def test_main(argv: Optional[Sequence[str]] = None) -> int:
    args = test_parser().parse_args(argv)
    return friendly(lambda: _test(args), debug_enabled(args))


def _test(args) -> int:
    _apply_env_flags(args)
    from .checkpoint import load_checkpoint, weights_from
    from .evaluator import Evaluator, format_table, write_results
    from .log import setup_logger

    log = setup_logger(None)
    select_pretrained(args, default_for_task=False)
    cfg, task, model, path, device = load_for_eval(args)
    split = args.split or cfg.data.test_split
    cfg.data.valid_mode = "test"
    dataset = task.build_dataset(cfg, split, False)
    ev = Evaluator(task, cfg, device)
    if args.result_dir:
        out = Path(args.result_dir)
    elif args.pretrained:  # never write into pretrained/
        out = Path(args.save_dir or cfg.output_root) / cfg.task / f"pretrained_{args.pretrained}" / "results" / split
    else:
        out = path.parent / "results" / f"{split}_{args.which}"
    res = ev.evaluate(model, dataset, full=True, image_dir=out / "imgs" if args.save_images else None)
    table = format_table(res.summary, res.rows, title=f"{path} on '{split}' ({len(res.rows)} images, "
                                                      f"{_protocol(ev)})")
    write_results(res, out, table)
    log.info(table)
    log.info(f"results: {out / 'results.csv'}; images: {out / 'imgs' if args.save_images else 'not saved'}")
    n = args.last_n or (20 if args.last_20 else 0)
    if n:
        from .checkpoint import CheckpointManager

        files = CheckpointManager(path.parent, str(cfg.model.name)).epoch_files()[-n:]
        if not files:
            log.info(f"--last-n: no {cfg.model.name}_epoch_XXXX.pth in {path.parent} (train.keep_last_epochs "
                     f"sets how many are kept)")
        lines = ["epoch checkpoint            PSNR      SSIM"]
        for f in files:
            ck = load_checkpoint(f, map_location=device)
            model.load_state_dict(weights_from(ck))
            r = ev.evaluate(model, dataset, full=False)
            write_results(r, out / f.stem)
            lines.append(f"{f.name:26s} {r.summary['psnr']:8.3f}  {r.summary['ssim']:.4f}")
        if files:
            log.info("\n".join(lines))
    return 0


# -- infer ----------------------------------------------------------------------------

def infer_main(argv: Optional[Sequence[str]] = None) -> int:
    args = infer_parser().parse_args(argv)
    return friendly(lambda: _infer(args), debug_enabled(args),
                    on_interrupt=lambda: "finished images are complete; no file was left half-written")


def _infer(args) -> int:
    _apply_env_flags(args)
    from .inference import parse_memory, restore_folder
    from .log import setup_logger

    log = setup_logger(None)
    max_memory = None if str(args.max_memory).strip().lower() in ("none", "0", "off") \
        else parse_memory(args.max_memory)
    if args.snr is not None:
        task_name = resolve_task_name(args)
        cls = _task_class(task_name)
        key = cls.snr_config_key
        if not key:
            raise ConfigError(f"--snr applies to tasks with a channel (such as stereo_jscc); task {task_name!r} "
                              f"has none: leave --snr out")
        args.overrides = list(args.overrides) + [f"{key}={args.snr}"]
    select_pretrained(args, default_for_task=True)
    if args.pretrained:
        log.info(f"using the shipped weights {args.pretrained!r} (pretrained/MANIFEST.yaml); pass --checkpoint or "
                 f"--run-dir to use your own")
    cfg, task, model, path, device = load_for_eval(args)
    dataset = task.build_infer_dataset(cfg, args.input)
    out_dir = Path(args.output).expanduser()
    fixed_tile = int(cfg.eval.tile) if cfg.eval.tile else None
    rep = restore_folder(task, cfg, model, dataset, out_dir, device, overwrite=args.overwrite,
                         max_memory=max_memory, fixed_tile=fixed_tile)
    quality = ""
    if rep.psnr:
        quality = f"; mean PSNR {sum(rep.psnr) / len(rep.psnr):.2f} dB"
        if rep.ssim:
            quality += f", SSIM {sum(rep.ssim) / len(rep.ssim):.4f} over {len(rep.ssim)} image(s)"
    log.info(f"restored {len(rep.restored)} of {len(dataset)} item(s) from {args.input} into {out_dir} with {path} "
             f"({rep.seconds:.1f} s){quality}")
    for note in rep.notes:
        log.info(f"note: {note}")
    if rep.failed:
        log.error(f"{len(rep.failed)} input(s) could not be read and were skipped: {', '.join(rep.failed[:5])}"
                  f"{' ...' if len(rep.failed) > 5 else ''}")
        return 1
    return 0
