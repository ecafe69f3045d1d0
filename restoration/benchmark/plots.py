"""The benchmark's plots: quality against energy, JSCC SNR curves, firing rate per layer."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence


# -- plots ---------------------------------------------------------------------------------

ROLE_STYLE = {"SNN": ("tab:red", "o"), "ANN twin": ("tab:blue", "s"), "ANN baseline": ("tab:green", "^")}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: os.PathLike, dpi: int = 90, colors: int = 128) -> Path:
    """Save as PNG, written to a temporary name and renamed. The image is reduced to a
    palette of ``colors`` colours (plots hold few; files 3-4x smaller for the docs)."""
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    if colors:
        with Image.open(tmp) as im:
            small = im.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
        small.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)
    return path


def _log_axis(ax) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_quality_energy(rows: Sequence[Mapping[str, Any]], task: str, path: os.PathLike, title: str = "",
                        energy_key: str = "energy_mj") -> Path:
    """PSNR and SSIM against energy per item (log scale) for the models of one task; the
    degraded input's score as a dashed line when the task has one; error bars: std over
    seeds. ``energy_key``: energy_mj (operation count), energy_sram_mj or energy_dram_mj."""
    plt = _plt()
    trs = [dict(r, energy_mj=r[energy_key]) for r in rows if r["task"] == task and r.get(energy_key) is not None]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    fig.subplots_adjust(wspace=0.35)
    for ax, key, label in ((axes[0], "psnr", "PSNR (dB)"), (axes[1], "ssim", "SSIM")):
        for j, r in enumerate(trs):
            if r.get(key) is None:
                continue
            color, marker = ROLE_STYLE.get(r["role"], ("tab:gray", "x"))
            ax.scatter(r["energy_mj"], r[key], c=color, marker=marker, s=60, label=f"{r['model']} ({r['role']})")
            sd = r.get(f"{key}_std")
            if sd is not None and not math.isnan(sd):  # std over seeds
                ax.errorbar(r["energy_mj"], r[key], yerr=sd, color=color, capsize=3, lw=1)
            # staggered labels: models with equal energy and quality stay readable
            ax.annotate(r["model"], (r["energy_mj"], r[key]), textcoords="offset points",
                        xytext=(6, 10 - 11 * j), fontsize=8, color=color)
        inp = next((r.get(f"input_{key}") for r in trs if r.get(f"input_{key}") is not None), None)
        if inp is not None:
            ax.axhline(inp, color="gray", ls="--", lw=1, label="degraded input")
        _log_axis(ax)
        model_name = {"energy_mj": "operation count"}.get(energy_key, energy_key[7:-3].upper() + " memory-aware")
        ax.set_xlabel(f"energy per item (mJ, {trs[0]['stated_size']} px, {model_name})" if trs else "energy (mJ)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        ax.margins(x=0.3, y=0.25)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)) or 1, fontsize=8,
               bbox_to_anchor=(0.5, -0.12))
    fig.suptitle(title or f"{task}: quality vs energy", fontsize=10)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_snr_curves(curves: Mapping[str, Sequence[Mapping[str, float]]], path: os.PathLike,
                    roles: Optional[Mapping[str, str]] = None, title: str = "") -> Path:
    """PSNR and MS-SSIM against channel SNR, one line per model."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    fig.subplots_adjust(wspace=0.3)
    for model, pts in curves.items():
        color, marker = ROLE_STYLE.get((roles or {}).get(model, ""), (None, "o"))
        snrs = [p["snr_db"] for p in pts]
        axes[0].plot(snrs, [p["psnr"] for p in pts], marker=marker, color=color, label=model)
        if all(p.get("ms_ssim") is not None for p in pts):
            axes[1].plot(snrs, [p["ms_ssim"] for p in pts], marker=marker, color=color, label=model)
    for ax, label in ((axes[0], "PSNR (dB)"), (axes[1], "MS-SSIM")):
        ax.set_xlabel("channel SNR (dB)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title or "stereo JSCC: quality vs channel SNR", fontsize=10)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_firing_rates(rates: Mapping[str, Mapping[str, float]], path: os.PathLike, title: str = "") -> Path:
    """One panel per spiking model: the firing rate of every neuron layer in forward
    order, coloured and labelled by the top-level module it sits in."""
    plt = _plt()
    models = [m for m, r in rates.items() if r]
    if not models:
        raise ValueError("no firing rates to plot (no spiking model was measured)")
    fig, axes = plt.subplots(len(models), 1, figsize=(9, 2.5 * len(models)), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, model in zip(axes[:, 0], models):
        names = list(rates[model])
        top = [n.split(".")[0] for n in names]
        groups = list(dict.fromkeys(top))
        vals = [rates[model][n] for n in names]
        ax.bar(range(len(vals)), vals, color=[cmap(groups.index(g) % 10) for g in top])
        starts = [i for i, g in enumerate(top) if i == 0 or top[i - 1] != g]
        ax.set_xticks(starts)
        ax.set_xticklabels([top[i] for i in starts], rotation=35, ha="right", fontsize=7)
        ax.set_xlim(-0.7, len(vals) - 0.3)
        ax.set_ylabel("firing rate")
        ax.set_title(f"{model}: {len(vals)} neuron layers, mean {sum(vals) / len(vals):.3f} (unweighted)",
                     fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
