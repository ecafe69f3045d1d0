"""Firing-rate maps of every spiking layer of a model for one image, as a PNG grid.

    python tools/visualize_spikes.py --model esdnet_tiny --checkpoint runs/.../esdnet_tiny_last.pth \\
        --image rainy.png --target clean.png --out spikes.png
    python tools/visualize_spikes.py --model dehazesnn_s --image hazy.png --out olif.png
    python tools/visualize_spikes.py --model esdnet_tiny --checkpoint W --image test/input --target test/target \
        --out spikes.png          # per-image degraded-vs-rest summary of a folder, grid of its first image

Each panel is one neuron layer: the fraction of channels and time steps that fired at
each position (OLIF: outputs above its threshold; DehazeSNN's OLIF layers are marked H
or W by the direction they run along). With --target (the clean image) the degraded
pixels (|input - target| above --threshold, e.g. rain streaks) are compared with the
rest: for every layer the mean rate on them and elsewhere, printed and plotted. The image
is fed as the model's task feeds it (``Task.image_batch``): a stereo model gets it as both
views unless --right is given.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from .suite import task_for_model


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tools/visualize_spikes.py", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="registered spiking model (restoration.list_models())")
    p.add_argument("--checkpoint", help="weights (our checkpoints or a state dict); default: random init")
    p.add_argument("--image", required=True,
                   help="input image; or a folder: per-image summary (with --target), grid of its first image")
    p.add_argument("--target", help="clean image of the same size (or folder, same names): compare degraded "
                                    "pixels with the rest")
    p.add_argument("--right", help="stereo models: the right view (default: --image again)")
    p.add_argument("--threshold", type=float, default=0.08,
                   help="a pixel is degraded when the channel mean of |input - target| exceeds this (default 0.08)")
    p.add_argument("--out", required=True, help="PNG file to write")
    p.add_argument("--cols", type=int, default=6, help="panels per row (default 6)")
    return p


def load_model(name: str, checkpoint):
    from ..checkpoint import load_model as load_checkpoint_model
    from ..registry import build_model

    if checkpoint is None:
        return build_model(name)
    return load_checkpoint_model(checkpoint, model_name=name)


def short_names(names):
    """Layer names without the parts every name shares (DehazeSNN:
    'layer1.blocks.0.lif_module.lif1' -> 'layer1.0.lif1'), for panel titles."""
    parts = [n.split(".") for n in names]
    common = set.intersection(*(set(p) for p in parts)) if parts else set()
    common = {c for c in common if not c.isdigit()}
    return {n: ".".join(c for c in p if c not in common) or n for n, p in zip(names, parts)}


def image_maps(model, img, right=None, task=None):
    """Firing-rate maps of ``model`` for one ``3,H,W`` image, fed as its task feeds it (a
    stereo task: ``(img, right or img)``), padded to the model's size multiple and the maps
    cropped back."""
    from ..engine.evaluator import model_size_multiple
    from ..models._layers import pad_to_multiple
    from .cost import TaskModel, is_spiking
    from .spikes import spike_maps

    if not is_spiking(model):
        raise ValueError(f"{type(model).__name__} has no spiking neuron: firing-rate maps need a spiking model "
                         f"(not an ANN twin)")
    if task is None:  # a plain image-to-image model
        from ..engine.task import PairedImageTask

        task = PairedImageTask()
    h, w = img.shape[-2:]
    m = model_size_multiple(model, None, task)
    x = pad_to_multiple(img[None], m)[0]
    views = [] if right is None else [pad_to_multiple(right[None], m)[0]]
    ph, pw = x.shape[-2] - h, x.shape[-1] - w
    wrapped = TaskModel(model, task, "cpu")
    maps = {name.removeprefix("model."): e for name, e in spike_maps(wrapped, task.image_batch(x, views)).items()}
    for e in maps.values():  # maps are at 1/s of the padded size: drop the padded border
        mh, mw = e["map"].shape
        e["map"] = e["map"][:max(1, round(mh * h / (h + ph))), :max(1, round(mw * w / (w + pw)))]
    return maps


def compare_regions(maps, mask) -> None:
    """Adds 'inside', 'outside' and 'ratio' (inside / outside) to every layer's entry."""
    from .spikes import region_rates

    for e in maps.values():
        inside, outside = region_rates(e["map"], mask)
        e["inside"], e["outside"] = inside, outside
        e["ratio"] = inside / outside if outside > 0 else (float("inf") if inside > 0 else float("nan"))


def folder_summary(model, image_dir: Path, target_dir: Path, threshold: float, task=None) -> str:
    """One line per image of a folder (targets with the same names): mean rate over the
    firing layers on degraded pixels and elsewhere, and how many layers fire more there."""
    from ..data.images import list_images, load_tensor as load_image

    names = list_images(image_dir)
    lines = [f"{'image':14s} {'degraded px':>11s} {'rate there':>10s} {'elsewhere':>9s}  layers firing more there"]
    up = total = 0
    for name in names:
        if not (target_dir / name).is_file():
            raise FileNotFoundError(f"--target {target_dir} has no {name} (it needs the names of --image)")
        img, tgt = load_image(image_dir / name), load_image(target_dir / name)
        mask = (img - tgt).abs().mean(0) > threshold
        maps = image_maps(model, img, task=task)
        compare_regions(maps, mask)
        firing = [e for e in maps.values() if e["inside"] > 0 or e["outside"] > 0]
        more = sum(e["inside"] > e["outside"] for e in firing)
        up, total = up + more, total + len(firing)
        lines.append(f"{name:14s} {float(mask.float().mean()):11.1%} "
                     f"{sum(e['inside'] for e in firing) / max(1, len(firing)):10.4f} "
                     f"{sum(e['outside'] for e in firing) / max(1, len(firing)):9.4f}  {more}/{len(firing)}")
    lines.append(f"all images: {up}/{total} (layer, image) pairs fire more on degraded pixels")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    folder = Path(args.image).is_dir()
    for flag in ("image", "target", "right"):
        path = getattr(args, flag)
        if path and not (Path(path).is_file() or (folder and flag != "right" and Path(path).is_dir())):
            kind = "folder" if folder and flag == "target" else "file"
            print(f"error: --{flag} {path}: the {kind} does not exist", file=sys.stderr)
            return 2
    import torch

    from ..runtime import set_threads

    set_threads()
    from .plots import _plt, _save
    from ..data.images import list_images, load_tensor as load_image

    torch.manual_seed(0)  # random-init runs are reproducible
    model = load_model(args.model, args.checkpoint).eval()
    task = task_for_model(args.model)  # feeds the image as the model's task does
    if folder:  # summary over the folder; the grid shows its first image
        if args.target:
            try:
                print(folder_summary(model, Path(args.image), Path(args.target), args.threshold, task))
            except (FileNotFoundError, ValueError) as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
        first = list_images(args.image)[0]
        args.image = str(Path(args.image) / first)
        args.target = str(Path(args.target) / first) if args.target else None
    img = load_image(args.image)
    h, w = img.shape[-2:]
    target = load_image(args.target) if args.target else None
    if target is not None and target.shape != img.shape:
        print(f"error: --target is {tuple(target.shape[-2:])} but --image is {(h, w)}; they must match",
              file=sys.stderr)
        return 2
    try:
        maps = image_maps(model, img, load_image(args.right) if args.right else None, task)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    mask = None
    if target is not None:
        mask = (img - target).abs().mean(0) > args.threshold
        compare_regions(maps, mask)
        lines = [f"{Path(args.image).name}: degraded pixels (|input - target| > {args.threshold}): "
                 f"{float(mask.float().mean()):.1%}",
                 f"{'layer':45s} {'kind':16s} {'size':>9s} {'degraded':>9s} {'elsewhere':>9s} {'ratio':>6s}"]
        for name, e in maps.items():
            size = "x".join(str(s) for s in e["map"].shape)
            lines.append(f"{name:45s} {e['kind'][:16]:16s} {size:>9s} {e['inside']:9.4f} {e['outside']:9.4f} "
                         f"{e['ratio']:6.2f}")
        print("\n".join(lines))

    plt = _plt()
    extra = [("input", img)] + ([("target", target), ("degraded pixels", mask)] if target is not None else [])
    n = len(extra) + len(maps) + (1 if target is not None else 0)
    cols = max(1, args.cols)
    rows = math.ceil(n / cols)
    panel = 2.2  # inches per panel; rows follow the image's aspect, plus room for two title lines
    fig, axes = plt.subplots(rows, cols, figsize=(panel * cols, (panel * min(1.5, h / w) + 0.45) * rows),
                             squeeze=False)
    flat = list(axes.flat)
    k = 0
    for title, t in extra:
        ax = flat[k]
        k += 1
        if t.dim() == 3:
            ax.imshow(t.permute(1, 2, 0).clamp(0, 1).numpy())
        else:
            ax.imshow(t.numpy(), cmap="gray")
        ax.set_title(title, fontsize=7)
    vmax = max(float(e["map"].max()) for e in maps.values()) or 1.0
    im = None
    shorts = short_names(list(maps))
    for name, e in maps.items():
        ax = flat[k]
        k += 1
        im = ax.imshow(e["map"].numpy(), cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
        short = shorts[name] if len(shorts[name]) <= 30 else "…" + shorts[name][-29:]
        extra_t = f", x{e['ratio']:.2f} on degraded" if math.isfinite(e.get("ratio", float("nan"))) else ""
        kind = f" [{e['kind'].split()[-1]}]" if e["kind"].startswith("OLIF") else ""
        ax.set_title(f"{short}{kind}\nmean {float(e['map'].mean()):.3f}{extra_t}", fontsize=6)
    bar_ax = None
    if target is not None:
        ax = bar_ax = flat[k]
        k += 1
        ratios = [e["ratio"] for e in maps.values()]
        idx = [i for i, r in enumerate(ratios) if math.isfinite(r)]  # silent layers have no ratio
        ax.bar(idx, [ratios[i] for i in idx], color=["tab:red" if ratios[i] > 1 else "tab:blue" for i in idx])
        ax.set_xlim(-0.7, len(ratios) - 0.3)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_title("rate on degraded / elsewhere\nper layer (silent layers: no bar)", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in flat[:k]:
        if ax is not bar_ax:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax in flat[k:]:
        ax.axis("off")
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.6, label="firing rate")
    fig.suptitle(f"{args.model}: firing-rate maps per spiking layer ({Path(args.image).name}"
                 f"{', trained weights' if args.checkpoint else ', random weights'})", fontsize=9)
    _save(fig, args.out, dpi=80, colors=64)
    plt.close(fig)
    print(f"wrote {args.out} ({len(maps)} spiking layers)")
    return 0


def cli() -> int:
    from ..engine.cli import friendly

    return friendly(main)  # a checkpoint that does not fit: one line, not a traceback
