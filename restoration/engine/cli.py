"""The command line of tools/train.py, tools/test.py and tools/infer.py: the flags, and the
one wrapper that turns a user's mistake into one line (``friendly``).

Flag names follow the seeds where they exist: DehazeSNN's ``--model --exp --dataset
--data_dir --save_dir --result_dir --gpu --resume --fine_tuning --last_20`` are accepted
beside the hyphenated spellings. What the flags do is ``runner.py``.
"""
from __future__ import annotations

import argparse
import errno
import os
import sys
from typing import Optional

from ..config import ConfigError

EPILOG_TRAIN = """examples:
  python tools/train.py --task derain                       # CPU recipe on built-in data, ends with a table
  python tools/train.py --task dehaze --model dehazesnn_m --data-dir datasets/reside6k --device cuda
  python tools/train.py --task derain --config configs/derain/esdnet.yaml --data-dir data/Rain200H --device cuda
  python tools/train.py --task derain --set optim.lr=2e-4 --set train.epochs=5
  python tools/train.py --task derain --resume              # continue runs/derain/<exp> from _current.pth
  torchrun --nproc_per_node 4 tools/train.py --task dehaze --model dehazesnn_m --data-dir D --device cuda
"""


def str2bool(v: str) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "y", "on"):
        return True
    if s in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {v!r}")


def bool_or_path(v: str):
    """``--resume`` / ``--resume true|false`` / ``--resume PATH``."""
    try:
        return str2bool(v)
    except argparse.ArgumentTypeError:
        return v


def normalize_model_name(name: Optional[str]) -> Optional[str]:
    """DehazeSNN's ``DehazeSNN-M`` -> ``dehazesnn_m`` (registry names are lower snake case)."""
    return None if name is None else name.strip().lower().replace("-", "_")


# -- argument parsers ---------------------------------------------------------------

def _add_common(p: argparse.ArgumentParser, training: bool) -> None:
    g = p.add_argument_group("what to run")
    g.add_argument("--task", help="task plugin: dehaze, derain, stereo_jscc (or a registered plugin); may "
                                  "be omitted when --config names one")
    g.add_argument("--model", help="registered model name (restoration.list_models()); DehazeSNN spellings "
                                   "such as DehazeSNN-M are accepted. Without --config the recipe is the first "
                                   "of configs/<task>/<model>_<exp>.yaml, <model>.yaml, <model>_cpu.yaml that "
                                   "exists (<model>_cpu.yaml before <model>.yaml when no --data-dir is given)")
    g.add_argument("--config", help="YAML recipe (a path, or relative to configs/); default: the task's "
                                    "CPU-sized recipe")
    g.add_argument("--exp", help="experiment name: output goes to <save-dir>/<task>/<exp> (default: the "
                                 "recipe's file name). With --model, configs/<task>/<model>_<exp>.yaml is "
                                 "preferred as the recipe, as DehazeSNN picks configs/<exp>/<model>.json")
    g = p.add_argument_group("data and output")
    g.add_argument("--data-dir", "--data_dir", dest="data_dir",
                   help="dataset folder holding <split>/ subfolders; default: the built-in generated set")
    g.add_argument("--dataset", help="DehazeSNN style: dataset folder name under --data-dir "
                                     "(data root becomes <data-dir>/<dataset>)")
    g.add_argument("--save-dir", "--save_dir", "--output-dir", dest="save_dir",
                   help="root of run folders (default: config output_root, 'runs'); the run folder is "
                        "<save-dir>/<task>/<exp>")
    g = p.add_argument_group("device")
    g.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: config 'device', auto)")
    g.add_argument("--gpu", help="DehazeSNN style: GPU ids, e.g. 0 or 0,1 (sets CUDA_VISIBLE_DEVICES and "
                                 "--device cuda; several GPUs need torchrun, see docs/ENGINE.md)")
    g.add_argument("--threads", type=int, help="CPU threads for torch (default: OMP_NUM_THREADS if set, else half "
                                               "the cores, which stays fast when other processes share them)")
    g.add_argument("--workers", type=int, help="data loader worker processes (config data.num_workers)")
    g.add_argument("--debug", action="store_true",
                   help="show the full traceback of errors (default: one line; RESTORATION_DEBUG=1 does the same)")
    g = p.add_argument_group("recipe overrides")
    g.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set optim.lr=2e-4 --set data.patch_size=128 "
                        "(repeatable; values parsed as YAML; unknown keys are an error)")
    if training:
        g.add_argument("--epochs", type=int, help="number of epochs (config train.epochs)")
        g.add_argument("--batch-size", "--batch_size", dest="batch_size", type=int,
                       help="global batch size (config data.batch_size)")
        g.add_argument("--lr", type=float, help="base learning rate (config optim.lr)")
        g.add_argument("--accumulation-steps", "--accumulation_steps", dest="accumulation_steps", type=int,
                       help="gradient accumulation steps (config train.accumulation_steps)")


def train_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tools/train.py", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG_TRAIN,
        description="Train a restoration model. With only --task it trains the task's CPU-sized recipe on a "
                    "small built-in generated data set and ends with a table of input vs output PSNR/SSIM on "
                    "the held-out split.")
    _add_common(p, training=True)
    g = p.add_argument_group("run control")
    g.add_argument("--resume", nargs="?", const=True, default=False, type=bool_or_path,
                   help="continue the run from its <model>_current.pth (model, optimiser, schedule, epoch, best "
                        "score, AMP scaler, RNG states); '--resume PATH' names the checkpoint; DehazeSNN's "
                        "'--resume true|false' works too")
    g.add_argument("--fine-tune", "--fine_tuning", dest="fine_tune", nargs="?", const=True, default=False,
                   type=bool_or_path,
                   help="DehazeSNN fine-tuning: start from the weights of PATH (default <run>/<model>_base.pth) "
                        "with lr and neuron lr x0.1, warm-up x0.5 and epochs x0.2 (train.fine_tune.*)")
    g.add_argument("--overwrite", action="store_true",
                   help="reuse the run folder even if it holds checkpoints (default: a new folder <exp>_2, ...)")
    g.add_argument("--no-final-test", dest="final_test", action="store_false",
                   help="skip the evaluation on the test split after training")
    return p


def test_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tools/test.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Evaluate a trained checkpoint on a data split: per-image PSNR/SSIM (RGB or Y channel with "
                    "border crop, as the task's protocol), MS-SSIM, CIEDE2000, the input's metrics; writes "
                    "results.csv, summary.txt and the restored images.",
        epilog="examples:\n  python tools/test.py --task derain                 # best checkpoint of the default run\n"
               "  python tools/test.py --pretrained esdnet_tiny       # shipped weights on their held-out set\n"
               "  python tools/test.py --task derain --checkpoint runs/derain/x/esdnet_tiny_best.pth\n"
               "  python tools/test.py --task dehaze --model DehazeSNN-M --exp reside6k --data_dir datasets/reside6k "
               "--last-n 20\n")
    _add_common(p, training=False)
    g = p.add_argument_group("checkpoint and output")
    g.add_argument("--checkpoint", help="checkpoint file, or the name of shipped weights (default: "
                                        "<save-dir>/<task>/<exp>/<model>_<which>.pth)")
    g.add_argument("--pretrained", metavar="NAME", help="evaluate shipped weights (pretrained/MANIFEST.yaml, e.g. "
                                                        "esdnet_tiny); --task may then be omitted")
    g.add_argument("--run-dir", help="run folder to take the checkpoint from")
    g.add_argument("--which", default="best", choices=["best", "last", "current"],
                   help="which checkpoint of the run folder (default best)")
    g.add_argument("--split", help="data split to evaluate (default: config data.test_split)")
    g.add_argument("--result-dir", "--result_dir", dest="result_dir",
                   help="where results.csv, summary.txt and imgs/ go (default <run>/results/<split>[_<which>])")
    g.add_argument("--last-n", "--last_n", dest="last_n", type=int, default=0,
                   help="also evaluate the last N saved epoch checkpoints (<model>_epoch_XXXX.pth)")
    g.add_argument("--last_20", type=str2bool, default=False, help="DehazeSNN alias of --last-n 20")
    g.add_argument("--tile", type=int, help="tiled inference with this tile size (config eval.tile)")
    g.add_argument("--tile-overlap", type=int, help="tile overlap in pixels (config eval.tile_overlap)")
    g.add_argument("--no-save-images", dest="save_images", action="store_false", help="do not write images")
    return p


def inference_default_memory() -> str:
    """1.5G, or half the available memory where that is less (a 6-megapixel photo then
    peaks well under 2 GB: docs/ENGINE.md)."""
    try:
        with open("/proc/meminfo") as f:
            avail = next(int(line.split()[1]) for line in f if line.startswith("MemAvailable:")) * 1024
    except (OSError, StopIteration, ValueError):
        return "1.5G"
    half = avail / 2
    return "1.5G" if half >= 1.5 * 2 ** 30 else f"{max(256, int(half / 2 ** 20))}M"


def infer_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tools/infer.py", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Restore your own images (a file, a folder or a glob; any size) into an output folder, same "
                    "file names; your originals and existing outputs are never written over (--overwrite replaces "
                    "existing outputs). "
                    "For stereo_jscc the input folder holds left/ and right/ with matching names; each pair goes "
                    "through the simulated channel at --snr dB and both reconstructions are written to "
                    "<output>/left and <output>/right.",
        epilog="examples:\n  python tools/infer.py --task derain --input my_rainy/ --output restored/   # shipped weights\n"
               "  python tools/infer.py --task dehaze --pretrained dehazesnn_s_ann --input in/ --output out/\n"
               "  python tools/infer.py --task derain --run-dir runs/derain/esdnet_cpu --input in/ --output out/\n"
               "  python tools/infer.py --task dehaze --checkpoint w.pth --model dehazesnn_m --input in/ "
               "--output out/ --tile 512\n"
               "  python tools/infer.py --task stereo_jscc --input pairs/ --snr 5 --output recon/\n")
    _add_common(p, training=False)
    g = p.add_argument_group("input, output, checkpoint")
    g.add_argument("--input", required=True, help="an image file, a folder of images, or a quoted glob such as "
                                                  "'photos/*.jpg' (stereo_jscc: a folder with left/ and right/)")
    g.add_argument("--output", required=True, help="output folder (created; same file names as the input). It may "
                                                   "not be the input folder: your originals are never written over")
    g.add_argument("--overwrite", action="store_true",
                   help="replace files that already exist in --output (default: refuse and say which)")
    g.add_argument("--checkpoint", help="checkpoint file, or the name of shipped weights (default: the task's "
                                        "default pretrained weights, pretrained/MANIFEST.yaml)")
    g.add_argument("--pretrained", metavar="NAME", help="shipped weights to use (e.g. dehazesnn_s_ann); default: "
                                                        "the task's default, or the one shipped for --model")
    g.add_argument("--run-dir", help="run folder to take the checkpoint from")
    g.add_argument("--which", default="best", choices=["best", "last", "current"],
                   help="which checkpoint of the run folder (default best)")
    g.add_argument("--tile", type=int, help="fixed tile size for large images (config eval.tile; default: chosen "
                                            "from --max-memory)")
    g.add_argument("--tile-overlap", type=int, help="tile overlap in pixels (config eval.tile_overlap)")
    g.add_argument("--max-memory", default=inference_default_memory(),
                   help="memory the restoration may use, e.g. 2G or 800M (default %(default)s: at most 1.5G and "
                        "half the free memory); images too large for it are restored in tiles, the tile size is printed. "
                        "'none' restores whole images whatever their size")
    g.add_argument("--snr", type=float, help="channel SNR in dB, for tasks with a channel (stereo_jscc)")
    return p


# -- building a configuration from the flags ---------------------------------------


# -- errors -----------------------------------------------------------------------------

# OSErrors a user causes and fixes (a full disk, a read-only or missing folder, a name too
# long); any other OSError is reported with its traceback like any bug.
USER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG,
               errno.EISDIR, errno.ENOTDIR, errno.ENOENT, errno.EEXIST}

_OS_HINTS = {errno.ENOSPC: "free some disk space or write elsewhere (--save-dir / --output)",
             errno.EDQUOT: "free some disk space or write elsewhere (--save-dir / --output)",
             errno.EROFS: "write elsewhere (--save-dir / --output)",
             errno.EACCES: "check the permissions, or write elsewhere (--save-dir / --output)",
             errno.EPERM: "check the permissions, or write elsewhere (--save-dir / --output)"}


def debug_enabled(args=None) -> bool:
    return bool(getattr(args, "debug", False) or os.environ.get("RESTORATION_DEBUG"))


def friendly(fn, debug: bool = False, on_interrupt=None) -> int:
    """Run a CLI body: a user error prints one line and returns 1, Ctrl-C prints what
    to do next and returns 130; a bug keeps its traceback. ``--debug`` (or
    ``RESTORATION_DEBUG=1``) shows the traceback of user errors too."""
    from ..errors import UserError
    from .trainer import NonFiniteLossError

    debug = debug or debug_enabled()
    try:
        return fn()
    except KeyboardInterrupt:
        if debug:
            raise
        hint = on_interrupt() if on_interrupt is not None else ""
        print(f"\ninterrupted{': ' + hint if hint else ''}", file=sys.stderr)
        return 130
    except (UserError, ConfigError, FileNotFoundError, KeyError, ValueError, NonFiniteLossError) as e:
        if debug:
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg}", file=sys.stderr)
        return 1
    except OSError as e:
        if debug or e.errno not in USER_ERRNOS:
            raise
        where = f": {e.filename}" if e.filename else ""
        hint = _OS_HINTS.get(e.errno)
        print(f"error: {e.strerror or e}{where}{'; ' + hint if hint else ''}", file=sys.stderr)
        return 1


_friendly = friendly  # the earlier name
