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
(rendered layered scenes for training, the real Middlebury motorcycle pair for testing).
"""
from pathlib import Path
from typing import Any, Dict

import torch

from restoration.data.images import save_image
from restoration.engine.task import Task
from restoration.registry import TASKS


@TASKS.register("stereo_jscc")
class StereoJSCC(Task):
    name = "stereo_jscc"
    default_config = "stereo_jscc/dhf_jscc_snn_cpu.yaml"
    y_channel = False
    crop_border = 0
    compare_input = False
    supports_tiling = False       # the channel and the cross-view fusion see the whole image
    snr_config_key = "model.args.snr_db"  # what tools/infer.py --snr sets

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
