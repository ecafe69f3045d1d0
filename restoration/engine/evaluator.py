"""Full-image and tiled inference, metrics over a data set, results files.

:func:`padded_forward` pads an image (reflect) on the bottom/right to the model's
size multiple, runs the model and crops the output back. :func:`tiled_forward` cuts an
image too large for memory into overlapping tiles, runs each padded, and keeps from
every tile only its part away from the seams (the middle of each overlap is the cut),
so that for any model whose receptive field reaches at most ``overlap // 2`` pixels the
stitched result equals untiled inference exactly, and an image that fits in one tile is
never cut at all.
"""
from __future__ import annotations

import csv
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Subset

from ..atomic import temp_path, write_text
from ..models._layers import pad_to_multiple
from ..metrics import compute_metrics, psnr as psnr_metric, ssim as ssim_metric
from ..spiking import reset_state  # noqa: F401  (the spiking core owns it; imported from here before)

SSIM_MIN_SIDE = 11  # the Gaussian window of SSIM


def _crop_out(out: Any, h: int, w: int) -> Any:
    if torch.is_tensor(out):
        return out[..., :h, :w] if out.dim() >= 3 else out
    if isinstance(out, (tuple, list)):
        return type(out)(_crop_out(o, h, w) if i == 0 else o for i, o in enumerate(out))
    if isinstance(out, dict):  # e.g. {'recon': images, 'rate': scalar}: crop the images
        return {k: _crop_out(v, h, w) if torch.is_tensor(v) and v.dim() >= 3 else v for k, v in out.items()}
    return out


def padded_forward(model: Callable, x: torch.Tensor, multiple: int = 1) -> Any:
    """``model(x)`` with ``x`` padded to a multiple of ``multiple`` and the image cropped back."""
    h, w = x.shape[-2:]
    return _crop_out(model(pad_to_multiple(x, multiple)), h, w)


def _tile_starts(size: int, tile: int, overlap: int) -> List[int]:
    if size <= tile:
        return [0]
    stride = tile - overlap
    n = math.ceil((size - tile) / stride) + 1
    starts = [min(i * stride, size - tile) for i in range(n)]
    return sorted(set(starts))


def tile_count(h: int, w: int, tile: Optional[int], overlap: int) -> int:
    """How many model calls :func:`tiled_forward` makes for an ``h x w`` image."""
    if tile is None or (h <= tile and w <= tile):
        return 1
    return len(_tile_starts(h, int(tile), overlap)) * len(_tile_starts(w, int(tile), overlap))


def _keep_bounds(starts: Sequence[int], tile: int, size: int) -> List[tuple]:
    """For each tile, the [lo, hi) range of the image it writes: cuts at the middle of
    each overlap."""
    cuts = [0]
    for a, b in zip(starts[:-1], starts[1:]):
        cuts.append((b + min(a + tile, size)) // 2)
    cuts.append(size)
    return [(cuts[i], cuts[i + 1]) for i in range(len(starts))]


def tiled_forward(model: Callable, x: torch.Tensor, tile: Optional[int], overlap: int = 32,
                  multiple: int = 1, after_each: Optional[Callable[[], None]] = None) -> torch.Tensor:
    """Image-to-image inference in overlapping tiles of ``tile`` pixels (see module doc).

    ``after_each`` runs after every model call (the membrane-state reset).
    """
    def run(t):
        out = padded_forward(model, t, multiple)
        if after_each is not None:
            after_each()
        return out

    h, w = x.shape[-2:]
    if tile is None or (h <= tile and w <= tile):
        return run(x)
    tile = int(tile)
    if overlap < 0 or overlap >= tile:
        raise ValueError(f"eval.tile_overlap={overlap} must be >= 0 and smaller than eval.tile={tile}")
    ys, xs = _tile_starts(h, tile, overlap), _tile_starts(w, tile, overlap)
    th, tw = min(tile, h), min(tile, w)
    ky, kx = _keep_bounds(ys, th, h), _keep_bounds(xs, tw, w)
    result = None
    for y0, (ylo, yhi) in zip(ys, ky):
        for x0, (xlo, xhi) in zip(xs, kx):
            out = run(x[..., y0:y0 + th, x0:x0 + tw])
            if not torch.is_tensor(out):
                raise TypeError("tiled inference needs a model that returns one image tensor; "
                                "set eval.tile=null for this model")
            if result is None:
                result = out.new_zeros(*out.shape[:-2], h, w)
            result[..., ylo:yhi, xlo:xhi] = out[..., ylo - y0:yhi - y0, xlo - x0:xhi - x0]
    return result


def model_size_multiple(model: torch.nn.Module, cfg, task) -> int:
    """What input sides must be a multiple of: the recipe's ``model.size_multiple``, else the
    model's own, else the task's (``cfg`` may be None: no recipe)."""
    if cfg is not None and cfg.model.size_multiple:
        return int(cfg.model.size_multiple)
    net = getattr(model, "module", model)
    m = getattr(net, "size_multiple", None) or getattr(net, "pad_multiple", None)
    return int(m) if m else int(getattr(task, "size_multiple", 1) or 1)


@dataclass
class EvalResult:
    rows: List[Dict[str, Any]] = field(default_factory=list)
    summary: Dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


class Evaluator:
    """Runs a model over a data set with the task's forward and metric protocol."""

    def __init__(self, task, cfg, device: torch.device):
        self.task, self.cfg, self.device = task, cfg, torch.device(device)
        e = cfg.eval
        self.y_channel = task.y_channel if e.y_channel is None else bool(e.y_channel)
        self.crop_border = task.crop_border if e.crop_border is None else int(e.crop_border)
        self.tile = e.tile if task.supports_tiling else None
        self.overlap = int(e.tile_overlap)

    def model_fn(self, model: torch.nn.Module, tile: Any = "config",
                 on_tile: Optional[Callable[[], None]] = None) -> Callable:
        """The model as the task should call it at test time: padded, tiled (``eval.tile``
        unless ``tile`` says otherwise), state reset after every call; ``on_tile`` runs
        after each model call."""
        multiple = model_size_multiple(model, self.cfg, self.task)
        tile = self.tile if tile == "config" else tile

        def after_each():
            reset_state(model)
            if on_tile is not None:
                on_tile()

        def fn(x):
            return tiled_forward(model, x, tile, self.overlap, multiple, after_each=after_each)
        return fn

    def loader(self, dataset: Dataset, batch_size: int = 1) -> DataLoader:
        return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=int(self.cfg.data.num_workers))

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, dataset: Dataset, full: bool = False,
                 image_dir: Optional[os.PathLike] = None, max_images: Optional[int] = None,
                 batch_size: int = 1, progress: Optional[Callable[[int, int], None]] = None) -> EvalResult:
        """Per-image metrics (``full``: also MS-SSIM, CIEDE2000 and the input's metrics).

        With ``image_dir`` the restored images are written there under their names
        (items without a target are only restored, as in tools/infer.py).
        """
        if max_images is not None and max_images < len(dataset):
            dataset = Subset(dataset, range(int(max_images)))
        was_training = model.training
        model.eval()
        fn = self.model_fn(model)
        res = EvalResult()
        t0 = time.time()
        n_total = len(dataset)
        done = 0
        try:
            for batch in self.loader(dataset, batch_size):
                pred, target, extras = self.task.forward(fn, batch, self.device)
                pred = pred.float().clamp(0, 1)
                names = self.task.item_names(batch)
                if image_dir is not None:
                    self.task.save_outputs(pred, batch, Path(image_dir))
                if target is not None:
                    rows = self._metrics(pred, target.float(), extras, full)
                    for name, r in zip(names, rows):
                        res.rows.append({"name": name, **r})
                done += len(batch["name"]) if "name" in batch else pred.shape[0]
                if progress is not None:
                    progress(done, n_total)
        finally:
            reset_state(model)
            model.train(was_training)
        res.seconds = time.time() - t0
        res.summary = summarize(res.rows)
        return res

    def _metrics(self, pred, target, extras, full: bool) -> List[Dict[str, float]]:
        yc, cb = self.y_channel, self.crop_border
        side = min(pred.shape[-2:]) - 2 * cb
        if side < SSIM_MIN_SIDE:  # SSIM and MS-SSIM need an 11x11 window: PSNR only
            if not getattr(self, "_noted_small", False):
                self._noted_small = True
                from .log import get_logger

                get_logger().warning(f"images of {pred.shape[-1]}x{pred.shape[-2]} pixels are smaller than the "
                                     f"{SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} SSIM window: SSIM/MS-SSIM are left out "
                                     f"(NaN in results.csv), PSNR is reported")
            nan = torch.full((pred.shape[0],), float("nan"))
            m = {"psnr": psnr_metric(pred, target, y_channel=yc, crop_border=cb), "ssim": nan}
            inp = extras.get("input") if (full and self.task.compare_input) else None
            if torch.is_tensor(inp) and inp.shape == pred.shape:
                m.update(input_psnr=psnr_metric(inp.float().clamp(0, 1), target, y_channel=yc, crop_border=cb),
                         input_ssim=nan)
            return [{k: float(v[i]) for k, v in m.items()} for i in range(pred.shape[0])]
        if full:
            m = compute_metrics(pred, target, yc, cb, with_ms_ssim=self.cfg.eval.ms_ssim,
                                with_ciede2000=self.cfg.eval.ciede2000)
            inp = extras.get("input") if self.task.compare_input else None
            if torch.is_tensor(inp) and inp.shape == pred.shape:
                mi = compute_metrics(inp.float().clamp(0, 1), target, yc, cb,
                                     with_ms_ssim=self.cfg.eval.ms_ssim, with_ciede2000=self.cfg.eval.ciede2000)
                m.update({f"input_{k}": v for k, v in mi.items()})
        else:
            m = {"psnr": psnr_metric(pred, target, y_channel=yc, crop_border=cb),
                 "ssim": ssim_metric(pred, target, y_channel=yc, crop_border=cb)}
        keys = list(m)
        return [{k: float(m[k][i]) for k in keys} for i in range(pred.shape[0])]


def summarize(rows: Sequence[Dict[str, Any]]) -> Dict[str, float]:
    """Mean of every numeric column (NaN entries skipped; :func:`coverage` says how many)."""
    out: Dict[str, float] = {}
    if not rows:
        return out
    for k in rows[0]:
        vals = [r[k] for r in rows if _finite(r.get(k))]
        if vals and k != "name":
            out[k] = sum(vals) / len(vals)
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# -- severities and "made worse" ----------------------------------------------------------

SEVERITY_LEVELS = ("light", "medium", "heavy")


def severity_of(name: Any) -> Optional[str]:
    """The severity an image's name starts with (``heavy_00005.png`` -> 'heavy'), or None.

    The built-in held-out splits name their images this way (restoration.data.synthetic);
    your own test folders can too, to get the per-severity table.
    """
    token = re.split(r"[_\-. ]", Path(str(name)).name.lower(), maxsplit=1)[0]
    return token if token in SEVERITY_LEVELS else None


def coverage(rows: Sequence[Dict[str, Any]], key: str = "psnr") -> tuple:
    """(images whose ``key`` is a finite number, all images): how many a mean covers."""
    return sum(1 for r in rows if _finite(r.get(key))), len(rows)


def group_stats(rows: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """Means of input/output PSNR and SSIM over ``rows`` and the do-no-harm count.

    ``worse``: images whose output PSNR is below their input's, of ``n_compared`` images
    with both numbers finite; ``worst``: the most negative output-minus-input PSNR and its
    image (only when an input is compared). Non-finite values are left out of every mean
    and counted in ``nan``.
    """
    out: Dict[str, Any] = {"n": len(rows)}
    for k in ("input_psnr", "psnr", "input_ssim", "ssim"):
        vals = [r[k] for r in rows if _finite(r.get(k))]
        if vals:
            out[k] = sum(vals) / len(vals)
    out["nan"] = sum(1 for r in rows if any(k in r and not _finite(r[k]) for k in ("psnr", "ssim", "input_psnr")))
    pairs = [(r["psnr"] - r["input_psnr"], r["name"]) for r in rows
             if _finite(r.get("psnr")) and _finite(r.get("input_psnr"))]
    if pairs:
        out["n_compared"] = len(pairs)
        out["worse"] = sum(1 for g, _ in pairs if g < 0)
        out["gain"] = sum(g for g, _ in pairs) / len(pairs)
        out["worst"], out["worst_name"] = min(pairs)
    return out


def severity_report(rows: Sequence[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    """:func:`group_stats` per severity present in the names, then 'all' (every image).
    Only 'all' when no name carries a severity."""
    groups: Dict[str, Dict[str, Any]] = {}
    for level in SEVERITY_LEVELS:
        members = [r for r in rows if severity_of(r.get("name")) == level]
        if members:
            groups[level] = group_stats(members)
    groups["all"] = group_stats(rows)
    return groups


def made_worse_line(stats: Dict[str, Any]) -> str:
    """'made worse: k of n (worst -x.xx dB, name)': the do-no-harm count of :func:`group_stats`."""
    if "worse" not in stats:
        return ""
    line = f"made worse: {stats['worse']} of {stats['n_compared']}"
    if stats["worse"]:
        line += f" (worst {stats['worst']:+.2f} dB, {stats['worst_name']})"
    return line


def format_severity_table(groups: Dict[str, Dict[str, Any]]) -> str:
    """One line per severity (and 'all'): mean input/output PSNR and SSIM, mean gain,
    made worse k of n and the worst change."""
    cols = [("n", "images", "{:d}"), ("input_psnr", "input PSNR", "{:.2f}"), ("psnr", "output PSNR", "{:.2f}"),
            ("gain", "gain (dB)", "{:+.2f}"), ("input_ssim", "input SSIM", "{:.4f}"), ("ssim", "output SSIM", "{:.4f}"),
            ("worse", "made worse", None), ("worst", "worst (dB)", "{:+.2f}")]
    cols = [c for c in cols if any(c[0] in g for g in groups.values())]
    widths = [max(len(lab), 10) for _, lab, _ in cols]
    name_w = max(len("severity"), *(len(k) for k in groups))

    def cell(g, key, f):
        if key not in g:
            return ""
        if key == "worse":
            return f"{g['worse']} of {g['n_compared']}"
        return f.format(g[key])

    head = "  ".join(["severity".ljust(name_w)] + [lab.rjust(w) for (_, lab, _), w in zip(cols, widths)])
    out = [head, "-" * len(head)]
    for level, g in groups.items():
        out.append("  ".join([level.ljust(name_w)] + [cell(g, k, f).rjust(w) for (k, _, f), w in zip(cols, widths)]))
    nan = groups.get("all", {}).get("nan", 0)
    if nan:
        out.append(f"{nan} image(s) with a NaN/inf metric are left out of the means and the counts")
    return "\n".join(out)


METRIC_LABELS = [("psnr", "PSNR (dB)", "{:.2f}"), ("ssim", "SSIM", "{:.4f}"), ("ms_ssim", "MS-SSIM", "{:.4f}"),
                 ("ciede2000", "CIEDE2000", "{:.3f}")]


def format_table(summary: Dict[str, float], rows: Optional[Sequence[Dict[str, Any]]] = None,
                 max_rows: int = 20, title: str = "", columns: Sequence[str] = ("psnr", "ssim")) -> str:
    """The input-vs-output table: one line per image (up to ``max_rows``) and the mean of
    ``columns`` (saying how many images it covers when some metric is NaN), the gain and
    "made worse: k of n", then a line with the means of every other metric, then -- when
    the image names carry a severity -- the per-severity table."""
    metrics = [(k, lab, f) for k, lab, f in METRIC_LABELS if k in summary and k in columns]
    has_input = any(f"input_{k}" in summary for k, _, _ in metrics)
    cols: List[tuple] = []
    for k, lab, f in metrics:
        if has_input and f"input_{k}" in summary:
            cols.append((f"input_{k}", f"input {lab}", f))
        cols.append((k, f"output {lab}" if has_input else lab, f))
    rows = list(rows or [])
    covered = min((coverage(rows, k)[0] for k, _, _ in cols), default=len(rows))
    mean_label = (f"mean ({len(rows)})" if covered == len(rows) else f"mean ({covered} of {len(rows)}, "
                  f"{len(rows) - covered} NaN)") if rows else "mean"
    name_w = max([len("image"), len(mean_label)] + [len(str(r["name"])) for r in rows[:max_rows]])
    widths = [max(len(lab), 9) for _, lab, _ in cols]

    def line(cells):
        return "  ".join(c.rjust(w) if i else c.ljust(name_w) for i, (c, w) in enumerate(zip(cells, [name_w] + widths)))

    def fmt(f, v):
        return f.format(v) if _finite(v) else "nan"

    out = [title] if title else []
    header = line(["image"] + [lab for _, lab, _ in cols])
    out += [header, "-" * len(header)]
    for r in rows[:max_rows]:
        out.append(line([str(r["name"])] + [fmt(f, r[k]) if k in r else "" for k, _, f in cols]))
    if len(rows) > max_rows:
        out.append(f"... ({len(rows) - max_rows} more images in results.csv)")
    if rows:
        out.append("-" * len(header))
    out.append(line([mean_label] + [fmt(f, summary[k]) for k, _, f in cols]))
    if rows and covered < len(rows):
        bad = [str(r["name"]) for r in rows if any(k in r and not _finite(r[k]) for k, _, _ in cols)]
        out.append(f"the means cover {covered} of {len(rows)} images; NaN/inf metric in: {', '.join(bad[:10])}"
                   + (f" and {len(bad) - 10} more" if len(bad) > 10 else ""))
    if has_input and "psnr" in summary and "input_psnr" in summary:
        extra = ""
        if "ssim" in summary and "input_ssim" in summary:
            extra = f", SSIM {summary['ssim'] - summary['input_ssim']:+.4f}"
        worse = made_worse_line(group_stats(rows)) if rows else ""
        out.append(f"gain over input: PSNR {summary['psnr'] - summary['input_psnr']:+.2f} dB{extra}"
                   + (f"; {worse}" if worse else ""))
    others = [(k, lab, f) for k, lab, f in METRIC_LABELS if k in summary and k not in columns]
    if others:
        parts = []
        for k, lab, f in others:
            inp = f" (input {f.format(summary['input_' + k])})" if f"input_{k}" in summary else ""
            parts.append(f"{lab} {f.format(summary[k])}{inp}")
        out.append("mean " + ", ".join(parts) + (" [CIEDE2000: lower is better]" if "ciede2000" in summary else ""))
    if any(severity_of(r.get("name")) for r in rows):
        out += ["", "per severity (names light_*, medium_*, heavy_*):", format_severity_table(severity_report(rows))]
    return "\n".join(out)


def write_results(res: EvalResult, out_dir: os.PathLike, table: str = "") -> Path:
    """``results.csv`` (one row per image, then the mean) and ``summary.txt``; atomic."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.csv"
    keys = ["name"] + [k for k in (res.rows[0] if res.rows else {}) if k != "name"]
    tmp = temp_path(path)
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(keys)
        for r in res.rows:
            w.writerow([r["name"]] + [f"{r[k]:.6f}" if isinstance(r.get(k), float) else r.get(k, "")
                                      for k in keys[1:]])
        if res.rows:
            w.writerow(["mean"] + [f"{res.summary[k]:.6f}" if k in res.summary else "" for k in keys[1:]])
    os.replace(tmp, path)
    if table:
        write_text(out_dir / "summary.txt", table + "\n")
    return path
