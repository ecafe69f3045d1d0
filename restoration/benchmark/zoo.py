"""Parameters and MACs of every registered model at a stated input size.

    python tools/model_stats.py                       # table of all models at 256x256
    python tools/model_stats.py --models esdnet aecrnet --size 128
    python tools/model_stats.py --write docs/MODELS.md

MACs are counted by ``restoration.energy.count_ops`` on one forward of a random item of
the model's task (``Task.example_batch``: a stereo pair for the stereo JSCC models), over
all time steps a spiking model runs:
they are what a dense (ANN) execution of the same network does. Spiking models do
fewer real operations; their synaptic operations depend on trained firing rates and
are reported by tools/benchmark.py, not here.
"""
from __future__ import annotations

import argparse
import time

import torch

from ..atomic import write_text
from ..energy import count_ops
from ..registry import build_model, list_models
from ..spiking import is_spiking_neuron
from .cost import TaskModel
from .suite import task_for_model


def model_row(name: str, size: int):
    model = build_model(name).eval()
    params = sum(p.numel() for p in model.parameters())
    neuron_params = sum(p.numel() for m in model.modules() if is_spiking_neuron(m)
                        for p in m.parameters(recurse=False))
    spiking = any(is_spiking_neuron(m) for m in model.modules())
    t0 = time.perf_counter()
    task = task_for_model(name)
    ops = count_ops(TaskModel(model, task, "cpu"), task.example_batch(1, size))
    return {"model": name, "spiking": spiking, "params": params, "neuron_params": neuron_params,
            "gmacs": ops.macs / 1e9, "seconds": time.perf_counter() - t0}


def render(rows, size: int, command: str) -> str:
    lines = [
        "# Model zoo: parameters and MACs",
        "",
        f"Input {size}x{size} RGB (a stereo pair of two such images for `dhf_jscc_*`), batch 1.",
        "MACs include every time step a spiking model runs (dense count: what an ANN",
        "execution of the same graph does). Regenerate with:",
        "",
        "```",
        command,
        "```",
        "",
        "| model | spiking | parameters | of which neuron parameters | GMACs |",
        "|---|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| `{r['model']}` | {'yes' if r['spiking'] else 'no'} | {r['params']:,} | "
                     f"{r['neuron_params']:,} | {r['gmacs']:.2f} |")
    lines += [
        "",
        "Notes:",
        "",
        "- DehazeSNN-S/M/L match the published counts (1,226,819 / 2,697,203 / 4,751,315) and the",
        "  authors' parameter names and shapes (tests/fixtures), so their checkpoints load strictly.",
        "- ESDNet has 12,811,463 parameters: 12,754,443 plus the 57,020 weights of the attention",
        "  (MultiDimensionalAttention) in its 22 residual blocks. SpikingJelly 0.0.0.0.14's attention",
        "  is not an nn.Module, so counting under that release gives 12,754,443; the authors trained",
        "  with a later SpikingJelly whose attention holds weights, and their checkpoints carry them.",
        "  Ours has them, so those checkpoints load with strict=True.",
        "- The DHF-JSCC twin (`dhf_jscc_snn_ann`) runs one time step: without neurons every step",
        "  computes the same thing, so its MACs equal the CNN's.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(prog="tools/model_stats.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*", default=None, help="model names (default: every registered model)")
    p.add_argument("--size", type=int, default=256, help="input height and width (default 256)")
    p.add_argument("--write", default=None, metavar="FILE", help="also write the markdown table to FILE")
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    names = args.models or list_models()
    rows = []
    for name in names:
        rows.append(model_row(name, args.size))
        r = rows[-1]
        print(f"{name:22s} params {r['params']:>12,}  GMACs {r['gmacs']:8.2f}  ({r['seconds']:.1f} s)", flush=True)
    cmd = "python tools/model_stats.py" + (f" --size {args.size}" if args.size != 256 else "") + \
        (f" --models {' '.join(args.models)}" if args.models else "") + (f" --write {args.write}" if args.write else "")
    text = render(rows, args.size, cmd)
    print()
    print(text)
    if args.write:
        write_text(args.write, text)
    return 0

