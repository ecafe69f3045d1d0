"""AECR-Net's contrastive regularisation (Wu et al., CVPR 2021): the loss, and the frozen
VGG19 feature extractor it compares images in (torchvision's ``vgg19().features`` layout,
so torchvision's weights load; nothing is downloaded). Used through the ``contrast`` loss
term (``restoration.losses``); ``restoration.models.aecrnet`` re-exports both names.
"""
from __future__ import annotations

import warnings
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

# torchvision's vgg19().features: numbers are 3x3 convs (each followed by ReLU), "M" max-pools.
VGG19_LAYOUT = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
                512, 512, 512, 512, "M")
# Indices (in that Sequential) of relu1_1, relu2_1, relu3_1, relu4_1, relu5_1: the CR taps.
VGG19_TAPS = (1, 6, 11, 20, 29)


class VGG19Features(nn.Sequential):
    """The first ``VGG19_TAPS[-1] + 1`` layers of torchvision's ``vgg19().features``, at
    the same indices, so a torchvision state dict loads (see :meth:`load_torchvision`).
    ``forward`` returns the five tapped activations."""

    def __init__(self):
        layers: List[nn.Module] = []
        channels = 3
        for v in VGG19_LAYOUT:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(channels, v, 3, padding=1), nn.ReLU(inplace=True)]
                channels = v
        super().__init__(*layers[:VGG19_TAPS[-1] + 1])

    def forward(self, x) -> List[torch.Tensor]:
        taps = []
        for i, layer in enumerate(self):
            x = layer(x)
            if i in VGG19_TAPS:
                taps.append(x)
        return taps

    def load_torchvision(self, path, map_location="cpu") -> "VGG19Features":
        """Load a torchvision VGG19 checkpoint (whole model, ``features.*`` keys, or the
        features Sequential alone); layers past relu5_1 and the classifier are ignored."""
        from ..models._official import read_state_dict, state_dict_mismatch

        state = read_state_dict(path, map_location=map_location)
        if any(k.startswith("features.") for k in state):
            state = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        state = {k: v for k, v in state.items() if k.split(".")[0].isdigit() and int(k.split(".")[0]) < len(self)}
        problem = state_dict_mismatch(self, state)
        if problem is not None:
            raise ValueError(f"VGG19 weights {str(path)!r} do not fit torchvision's vgg19().features layout: "
                             f"{problem}. Pass the state dict of torchvision.models.vgg19 (e.g. vgg19-dcbb9e9d.pth).")
        self.load_state_dict(state, strict=True)
        return self


class ContrastLoss(nn.Module):
    """AECR-Net's training loss: ``l1_weight * L1(restored, clear) + cr_weight * CR``.

    CR (contrastive regularisation) = sum_i w_i * L1(V_i(restored), V_i(clear)) /
    L1(V_i(restored), V_i(hazy)) over the five VGG19 taps V_i (relu1_1 ... relu5_1),
    w = (1/32, 1/16, 1/8, 1/4, 1): the restored image is pulled towards the clear one
    (positive) and pushed from the hazy input (negative). ``ablation=True`` drops the
    negative (the paper's ablation). The VGG19 is frozen and loaded from ``vgg_weights``
    (a torchvision vgg19 state dict): there is no download. Without weights the loss
    warns once and is the L1 term alone.

    As in the authors' code, images enter the VGG as they are (no ImageNet
    normalisation) unless ``imagenet_norm=True``. ``cr_weight`` 0.1 is the paper's beta.
    """

    IMAGENET_MEAN = (0.485, 0.456, 0.406)
    IMAGENET_STD = (0.229, 0.224, 0.225)

    def __init__(self, vgg_weights=None, cr_weight: float = 0.1, l1_weight: float = 1.0,
                 layer_weights: Sequence[float] = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0), ablation: bool = False,
                 imagenet_norm: bool = False):
        super().__init__()
        if len(layer_weights) != len(VGG19_TAPS):
            raise ValueError(f"ContrastLoss layer_weights needs {len(VGG19_TAPS)} values, got {list(layer_weights)}")
        self.cr_weight, self.l1_weight = float(cr_weight), float(l1_weight)
        self.layer_weights = [float(v) for v in layer_weights]
        self.ablation, self.imagenet_norm = ablation, imagenet_norm
        self.vgg: Optional[VGG19Features] = None
        if vgg_weights is not None:
            self.vgg = VGG19Features().load_torchvision(vgg_weights).eval()
            self.vgg.requires_grad_(False)
        elif cr_weight:
            warnings.warn("ContrastLoss: no VGG19 weights given (vgg_weights=None), so the contrastive "
                          "term is off and the loss is L1 alone; pass the path of a torchvision vgg19 "
                          "state dict to enable it", UserWarning, stacklevel=2)
        self.last_terms = {}  # the latest l1 and cr values (detached tensors), for logging

    def train(self, mode: bool = True):
        super().train(mode)
        if self.vgg is not None:
            self.vgg.eval()  # frozen feature extractor
        return self

    def _features(self, x):
        if self.imagenet_norm:
            mean = x.new_tensor(self.IMAGENET_MEAN).view(1, 3, 1, 1)
            std = x.new_tensor(self.IMAGENET_STD).view(1, 3, 1, 1)
            x = (x - mean) / std
        return self.vgg(x)

    def contrastive(self, restored, clear, hazy) -> torch.Tensor:
        if self.vgg is None:
            raise RuntimeError("ContrastLoss.contrastive needs VGG19 weights: construct it with vgg_weights=PATH")
        if next(self.vgg.parameters()).device != restored.device:
            self.vgg.to(restored.device)
        anchor = self._features(restored)
        with torch.no_grad():  # positives and negatives are constants
            positive = self._features(clear)
            negative = None if self.ablation else self._features(hazy)
        loss = restored.new_zeros(())
        for i, weight in enumerate(self.layer_weights):
            d_ap = F.l1_loss(anchor[i], positive[i])
            if negative is None:
                loss = loss + weight * d_ap
            else:
                loss = loss + weight * d_ap / (F.l1_loss(anchor[i], negative[i]) + 1e-7)
        return loss

    def forward(self, restored, clear, hazy) -> torch.Tensor:
        l1 = F.l1_loss(restored, clear)
        loss = self.l1_weight * l1
        self.last_terms = {"l1": l1.detach()}
        if self.vgg is not None and self.cr_weight:
            cr = self.contrastive(restored, clear, hazy)
            self.last_terms["cr"] = cr.detach()
            loss = loss + self.cr_weight * cr
        return loss
