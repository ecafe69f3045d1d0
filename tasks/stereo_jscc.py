"""Stereo deep joint source-channel coding (DHF-JSCC, CNN and SNN).

Each item is a rectified stereo pair ``{'left', 'right', 'name'}``; the model takes the
pair as ``N x 2 x 3 x H x W``, sends both views through the simulated AWGN channel
(``model.args.snr_db``) and returns ``{'recon': N x 2 x 3 x H x W, 'rate': bits or None}``.
Losses and metrics see the two views as separate images (folded into the batch), named
``left/<name>`` and ``right/<name>``; outputs are written to ``<out>/left`` and
``<out>/right``. There is no degraded input to compare with, so the final table shows the
reconstruction quality only.

Data: ``<root>/<split>/{left,right}`` (or the KITTI / InStereo2K path lists of
DHF-JSCC via ``data.args.layout``). Without ``data.root`` a generated set is used
(``builtin`` below: rendered layered scenes for training, the real Middlebury motorcycle
pair for testing).
"""
from pathlib import Path
from typing import Any, Dict

import torch

from restoration.data import sources
from restoration.data.degradations import render_stereo
from restoration.data.images import save_image
from restoration.data.synthetic import COMMON_OPTIONS, BuiltinData, Option
from restoration.engine.task import BenchmarkSuite, ModelSpec, Task
from restoration.registry import TASKS


def stereo_pair(rng, split, i, opt):
    """Built-in pair ``i`` of ``split``: {left/<i>.png, right/<i>.png}: a rendered layered scene
    for training, a crop of the real rectified Middlebury pair (both views alike) for testing."""
    if split == "train":
        size = int(opt["train_size"])
        left, right = render_stereo(rng, size, size, opt["max_disparity"], opt["max_objects"], opt["procedural"])
    else:
        crops = sources.motorcycle_crops(rng, opt["test_size"], i)
        left, right = crops["left"], crops["right"]
    return {f"left/{i:05d}.png": left, f"right/{i:05d}.png": right}


BUILTIN = BuiltinData(
    sampler=stereo_pair,
    counts=(400, 8),
    options={"train_size": COMMON_OPTIONS["train_size"], "test_size": COMMON_OPTIONS["test_size"],
             "max_disparity": Option(0.12, "largest disparity as a fraction of the image width"),
             "max_objects": Option(3, "most foreground objects per training stereo pair"),
             "procedural": COMMON_OPTIONS["procedural"].with_default(0.3)},
    seed_id=2,  # the id every earlier set was seeded with: the same pixels
    layout="<out>/{train,test}/{left,right} (rectified pairs, identical names)")


@TASKS.register("stereo_jscc")
class StereoJSCC(Task):
    name = "stereo_jscc"
    default_config = "stereo_jscc/dhf_jscc_snn_cpu.yaml"
    y_channel = False
    crop_border = 0
    compare_input = False
    builtin = BUILTIN
    supports_tiling = False       # the channel and the cross-view fusion see the whole image
    snr_config_key = "model.args.snr_db"  # what tools/infer.py --snr sets
    # tools/benchmark.py: DHF-JSCC-SNN, its ANN twin and the CNN DHF-JSCC, cost stated per pair
    # of 128x128 views, quality again at each channel SNR; --models may add the authors'
    # 21.4 M-parameter network and the seed's SNN (the 'authors' budget, docs/JSCC.md).
    # The quick budget keeps the recipes' learning rate (2e-4).
    benchmark_suite = BenchmarkSuite(
        models=(ModelSpec("dhf_jscc_snn", "SNN", "stereo_jscc/dhf_jscc_snn_cpu.yaml"),
                ModelSpec("dhf_jscc_snn_ann", "ANN twin", "stereo_jscc/dhf_jscc_snn_cpu.yaml"),
                ModelSpec("dhf_jscc_cnn", "ANN baseline", "stereo_jscc/dhf_jscc_cnn_cpu.yaml")),
        extra_models=(ModelSpec("dhf_jscc_authors", "authors' CNN", "stereo_jscc/dhf_jscc_authors_cpu.yaml"),
                      ModelSpec("dhf_jscc_authors_snn", "seed's SNN", "stereo_jscc/dhf_jscc_authors_snn_cpu.yaml"),
                      ModelSpec("dhf_jscc_authors_snn_ann", "ANN twin",
                                "stereo_jscc/dhf_jscc_authors_snn_cpu.yaml")),
        stated_size=128,
        # authors: the authors' network is 21.4 M parameters at 256 channels and the SNN runs
        # it T = 4 times: on 2 shared CPU cores its training step at 32x32, batch 4, takes
        # 5-15 s, and every held-out pass (evaluation, 5 SNRs, counting) runs it again.
        budgets={"quick": {"patch_size": 64, "batch_size": 8, "epochs": 4, "steps": 50}, "full": None,
                 "authors": {"patch_size": 32, "batch_size": 4, "epochs": 4, "steps": 80,
                             "builtin": {"n_train": 400, "n_test": 4, "test_size": [64, 96]},
                             "label": "AUTHORS budget: DHF-JSCC four ways on 2 shared CPU cores (32x32 crops, batch 4, "
                                      "320 optimiser steps, 4 held-out pairs of 64-96 pixels): an early-training "
                                      "snapshot, far from converged",
                             "speed": {"warmup": 1, "repeats": 3, "throughput_batch": 2}}},
        snr_sweep=(0.0, 5.0, 10.0, 15.0, 20.0))

    def build_dataset(self, cfg, split: str, train: bool):
        from restoration.registry import DATASETS

        mode, patch = self.mode_and_patch(cfg, train)
        kwargs = {"mode": mode, "patch_size": patch, **dict(cfg.data.args or {})}
        return DATASETS.get("stereo")(root=self.data_root(cfg), split=split, **kwargs)

    def build_infer_dataset(self, cfg, input_spec):
        from restoration.registry import DATASETS

        input_dir = Path(input_spec).expanduser()
        for sub in ("left", "right"):
            if not (input_dir / sub).is_dir():
                raise FileNotFoundError(f"{input_dir / sub} does not exist: tools/infer.py --task stereo_jscc "
                                        f"reads pairs from <input>/left and <input>/right (same file names); "
                                        f"--input must be that folder")
        return DATASETS.get("stereo")(root=input_dir, split=None, mode="test", patch_size=None,
                                      **{k: v for k, v in dict(cfg.data.args or {}).items()
                                         if k in ("center_crop", "resize")})

    def example_batch(self, n: int, size: int, seed: int = 0) -> Dict[str, Any]:
        g = torch.Generator().manual_seed(seed)
        return {"left": torch.rand(n, 3, size, size, generator=g), "right": torch.rand(n, 3, size, size, generator=g),
                "name": [f"{i}" for i in range(n)]}

    def stated_item(self, size: int) -> str:
        return f"a stereo pair of {size}x{size} views"

    def image_batch(self, image, views=()):
        """The image as the left view; the right view is ``views[0]``, or the image again."""
        right = views[0] if len(views) else image
        return {"left": image[None], "right": right[None], "name": ["image"]}

    def forward(self, model, batch, device):
        pair = torch.stack([batch["left"], batch["right"]], dim=1).to(device, non_blocking=True)
        out = model(pair)
        extras: Dict[str, Any] = {}
        if isinstance(out, dict):
            recon = out["recon"]
            if out.get("rate") is not None:
                extras["rate"] = out["rate"]
        elif isinstance(out, (tuple, list)):
            recon = out[0]
            if len(out) > 1 and out[1] is not None:
                extras["rate"] = out[1]
        else:
            recon = out
        # views folded into the batch: row 2i is the left view of item i, 2i+1 the right
        return recon.flatten(0, 1), pair.flatten(0, 1), extras

    def infer_files(self, dataset):
        inputs = [f for p in dataset.pairs for f in (p.first, p.second)]
        return inputs, [f"{view}/{p.name}" for p in dataset.pairs for view in ("left", "right")]

    def item_names(self, batch):
        return [f"{view}/{name}" for name in batch["name"] for view in ("left", "right")]

    def save_outputs(self, pred, batch, out_dir):
        for img, name in zip(pred, self.item_names(batch)):
            save_image(img, Path(out_dir) / name)
