"""ESDNet: the spiking deraining network of Song et al., "Learning A Spiking Neural
Network for Efficient Image Deraining" (IJCAI 2024), github.com/MingTian99/ESDNet.

Shape of the network (three levels, channels dim, 2*dim, 4*dim)::

    image N,3,H,W --repeat T times--> T,N,3,H,W
    patch_embed (3x3 conv)                                     dim
    encoder_level1: spiking residual blocks                    dim      ─┐ skip
    down1_2 (LIF, strided 3x3 conv, tdBN)                      2*dim     │
    encoder_level2                                             2*dim    ─┼┐ skip
    down2_3                                                    4*dim     ││
    encoder_level3, decoder_level3                             4*dim     ││
    up3_2 (bilinear x2, LIF, 3x3 conv, tdBN), concat skip      4*dim  <──┼┘
    reduce_chan_level2 (LIF, 1x1 conv, tdBN)                   2*dim     │
    decoder_level2                                             2*dim     │
    up2_1, concat skip                                         2*dim  <──┘
    decoder_level1                                             2*dim
    mean over T -> refinement (channel + spatial gates) -> 3x3 conv -> + image

A spiking residual block is ``attn(residual(x) + shortcut(x)) + x`` with
``residual = LIF, conv3x3, tdBN, LIF, conv3x3, tdBN`` and ``shortcut = conv3x3, tdBN``;
``attn`` is the multi-dimensional (time, channel, spatial) attention of MA-SNN.

Module and parameter names follow the authors' ``model.py`` so that their released
checkpoints load with ``strict=True`` (tests/fixtures/esdnet_keys.json lists them).

With the same weights, outputs and gradients equal those of the authors' code (run with
a SpikingJelly where their layers work) to float64 precision, in train and eval mode;
tests/fixtures/esdnet_reference_small.json holds their numbers.

Differences from the authors' code, all without effect on the default model's weights:

* ``ThresholdDependentBatchNorm2d`` is SpikingJelly's with the input check that the
  0.0.0.0.14 release misses (without it every forward raises ``NotImplementedError``).
* The attention is implemented here (:class:`MultiDimensionalAttention`) with the
  submodule names of SpikingJelly's ``layer.MultiDimensionalAttention``. In the
  0.0.0.0.14 release that layer is not an ``nn.Module`` (it cannot be called and its
  weights are not registered: the model then counts 12,754,443 parameters and the
  released checkpoints fail with "unexpected keys ...attn..."); the authors used a later
  SpikingJelly from GitHub where it is an ``nn.Module``. With the attention registered
  the default model has 12,811,463 parameters, as the checkpoints.
* The attention's time axis follows ``T`` (the authors fixed it at 4, which breaks any
  other ``T``); its reductions are capped at ``T`` and the channel count so that small
  presets build.
* Neurons are :class:`restoration.spiking.LIF` (SpikingJelly's ``LIFNode`` whose backend
  follows the input's device) with the ``LIFNode`` defaults the authors relied on:
  tau 2, hard reset to 0, sigmoid surrogate, ``v_threshold=0.15``, ``decay_input=False``.
* The input is padded (reflect) to a multiple of 4 and the output cropped back, so any
  size works; the authors' code needs sizes divisible by 4.
* Only image batches ``N,C,H,W`` are accepted (the authors also let a pre-repeated
  ``T,N,C,H,W`` through, whose global residual then broadcasts wrongly).
* The membrane state is reset at the start and at the end of every forward, so an
  output never depends on earlier calls (the authors call ``functional.reset_net``
  in their training loop after each step instead).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer

from restoration.registry import MODELS
from restoration.spiking import LIF, to_ann

from ._layers import pad_to_multiple

V_TH = 0.15  # firing threshold of every LIF neuron
TDBN_ALPHA = 1 / math.sqrt(2)  # tdBN alpha for blocks whose output adds two branches


def lif(v_threshold: float = V_TH, tau: float = 2.0) -> LIF:
    """The network's neuron: multi-step LIF, no input decay, as the authors' ``LIFNode``."""
    return LIF(tau=tau, v_threshold=v_threshold, v_reset=0.0, decay_input=False,
               surrogate_function="sigmoid", detach_reset=False, backend="auto", step_mode="m")


def conv(cin: int, cout: int, kernel_size: int = 3, stride: int = 1, bias: bool = False) -> layer.Conv2d:
    """Multi-step conv (applied to every time step), 'same' padding."""
    return layer.Conv2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2, bias=bias,
                        step_mode="m")


class ThresholdDependentBatchNorm2d(layer.ThresholdDependentBatchNorm2d):
    """SpikingJelly's tdBN (batch statistics over T,N,H,W; weight initialised to alpha*v_th).

    The 0.0.0.0.14 release leaves out the input check that ``BatchNorm`` calls, so its
    forward raises ``NotImplementedError``; later releases check for the ``T*N,C,H,W``
    view that this one checks for too.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() != 4:
            raise ValueError(f"tdBN expects a T,N,C,H,W tensor, got shape (after merging T and N) "
                             f"{tuple(input.shape)}")


def tdbn(channels: int, v_th: float = V_TH) -> ThresholdDependentBatchNorm2d:
    return ThresholdDependentBatchNorm2d(alpha=TDBN_ALPHA, v_th=v_th, num_features=channels, affine=True)


class _PooledGate(nn.Module):
    """sigmoid(MLP(avg-pool) + MLP(max-pool)) over every axis but the first two of an
    ``N,K,a,b,c`` tensor: one gate per (N, K). The MLP is two 1x1x1 Conv3d, as in
    SpikingJelly, so the weights have its shapes."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.sharedMLP = nn.Sequential(nn.Conv3d(channels, hidden, 1, bias=False), nn.ReLU(),
                                       nn.Conv3d(hidden, channels, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = x.mean(dim=(2, 3, 4), keepdim=True)
        peak = x.amax(dim=(2, 3, 4), keepdim=True)
        return torch.sigmoid(self.sharedMLP(avg) + self.sharedMLP(peak))


class _SpatialGate(nn.Module):
    """sigmoid(conv([mean, max] over time and channels)): one gate per pixel."""

    def __init__(self, kernel_size: int = 3):
        super().__init__()
        if kernel_size not in (3, 7):
            raise ValueError(f"spatial attention kernel_size must be 3 or 7, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: N,T,C,H,W
        flat = x.flatten(1, 2)
        pooled = torch.cat([flat.mean(dim=1, keepdim=True), flat.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled)).unsqueeze(1)  # N,1,1,H,W


class MultiDimensionalAttention(nn.Module):
    """MA-SNN attention on a ``T,N,C,H,W`` tensor: time gate, then channel gate, then
    spatial gate, each multiplying the features, then ReLU.

    Same computation and parameter names as SpikingJelly's
    ``layer.MultiDimensionalAttention`` in its fixed (post-0.0.0.0.14) form, which
    ``tests/test_models_esdnet.py`` compares against.
    """

    def __init__(self, T: int, C: int, reduction_t: int = 4, reduction_c: int = 16, kernel_size: int = 3):
        super().__init__()
        self.ta = _PooledGate(T, min(reduction_t, T))  # MLP over the T axis
        self.ca = _PooledGate(C, min(reduction_c, C))  # MLP over the C axis
        self.sa = _SpatialGate(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(0, 1)  # N,T,C,H,W
        out = self.ta(x) * x
        out = self.ca(out.transpose(1, 2)).transpose(1, 2) * out  # gate computed on N,C,T,H,W
        out = self.sa(out) * out
        return F.relu(out).transpose(0, 1)


class OverlapPatchEmbed(nn.Module):
    """3x3 conv from the image channels to ``dim``, per time step."""

    def __init__(self, in_channels: int, dim: int):
        super().__init__()
        self.proj = conv(in_channels, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class SpikingResidualBlock(nn.Module):
    def __init__(self, dim: int, T: int, tau: float = 2.0):
        super().__init__()
        # The last tdBN feeds a sum, not a neuron directly: the authors scale its v_th by 0.2.
        self.residual = nn.Sequential(lif(tau=tau), conv(dim, dim), tdbn(dim),
                                      lif(tau=tau), conv(dim, dim), tdbn(dim, V_TH * 0.2))
        self.shortcut = nn.Sequential(conv(dim, dim), tdbn(dim))
        self.attn = MultiDimensionalAttention(T=T, C=dim, reduction_t=4, reduction_c=16, kernel_size=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.residual(x) + self.shortcut(x)) + x


class DownSampling(nn.Module):
    """Halve H and W, double the channels: LIF, stride-2 3x3 conv, tdBN."""

    def __init__(self, dim: int, tau: float = 2.0):
        super().__init__()
        self.maxpool_conv = nn.Sequential(lif(tau=tau), conv(dim, dim * 2, stride=2), tdbn(dim * 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


class UpSampling(nn.Module):
    """Double H and W (bilinear), halve the channels: LIF, 3x3 conv, tdBN."""

    def __init__(self, dim: int, tau: float = 2.0):
        super().__init__()
        self.up = nn.Sequential(lif(tau=tau), conv(dim, dim // 2), tdbn(dim // 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        T, N = x.shape[:2]
        big = F.interpolate(x.flatten(0, 1), scale_factor=2, mode="bilinear", align_corners=False)
        return self.up(big.unflatten(0, (T, N)))


class FeatureRefinementBlock(nn.Module):
    """Non-spiking gate on the time-averaged features: out = (1 - t) * a + t * x with a
    channel gate ``a`` (squeeze-excitation) and a spatial gate ``t`` (three 3x3 convs)."""

    def __init__(self, channel: int, reduction: int = 8):
        super().__init__()
        self.ca = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channel, channel // reduction, 1, bias=True), nn.ReLU(inplace=True),
            nn.Conv2d(channel // reduction, channel, 1, bias=True), nn.Sigmoid())
        self.sa = nn.Sequential(
            nn.Conv2d(channel, channel, 3, padding=1),
            nn.Conv2d(channel, channel // 8, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(channel // 8, channel, 3, padding=1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.ca(x)
        t = self.sa(x)
        return (1 - t) * a + t * x


class ESDNet(nn.Module):
    """Efficient Spiking Deraining Network.

    ``dim``: channels of level 1 (levels 2 and 3 have 2*dim and 4*dim).
    ``encoder_blocks`` / ``decoder_blocks``: spiking residual blocks per level 1, 2, 3;
    a fourth entry is accepted and unused (the authors' configuration lists four, their
    network has three levels). ``T``: time steps the image is repeated over.
    ``tau``: LIF membrane time constant. Input ``N,C,H,W`` of any size; output same shape.
    """

    pad_multiple = 4  # two stride-2 down-samplings

    def __init__(self, in_channels: int = 3, out_channels: int = 3, dim: int = 48,
                 encoder_blocks: Sequence[int] = (4, 4, 8, 8), decoder_blocks: Sequence[int] = (2, 2, 2, 2),
                 T: int = 4, tau: float = 2.0, bias: bool = False):
        super().__init__()
        for name, blocks in (("encoder_blocks", encoder_blocks), ("decoder_blocks", decoder_blocks)):
            if len(blocks) not in (3, 4) or any(int(b) < 0 for b in blocks):
                raise ValueError(f"ESDNet {name} must list 3 (or 4, the last unused) non-negative block "
                                 f"counts for levels 1, 2, 3; got {list(blocks)}")
        if int(T) < 1:
            raise ValueError(f"ESDNet T (time steps) must be >= 1, got {T}")
        if int(dim) < 4:
            raise ValueError(f"ESDNet dim must be >= 4 (the refinement block divides 2*dim by 8), got {dim}")
        self.T, self.dim = int(T), int(dim)
        self.config = dict(in_channels=in_channels, out_channels=out_channels, dim=self.dim,
                           encoder_blocks=list(encoder_blocks), decoder_blocks=list(decoder_blocks),
                           T=self.T, tau=tau, bias=bias)
        d1, d2, d3 = self.dim, self.dim * 2, self.dim * 4

        def level(channels: int, n: int) -> nn.Sequential:
            return nn.Sequential(*[SpikingResidualBlock(channels, self.T, tau) for _ in range(int(n))])

        self.patch_embed = OverlapPatchEmbed(in_channels, d1)
        self.encoder_level1 = level(d1, encoder_blocks[0])
        self.down1_2 = DownSampling(d1, tau)
        self.encoder_level2 = level(d2, encoder_blocks[1])
        self.down2_3 = DownSampling(d2, tau)
        self.encoder_level3 = level(d3, encoder_blocks[2])
        self.decoder_level3 = level(d3, decoder_blocks[2])
        self.up3_2 = UpSampling(d3, tau)
        self.reduce_chan_level2 = nn.Sequential(lif(tau=tau), conv(d3, d2, kernel_size=1, bias=bias), tdbn(d2))
        self.decoder_level2 = level(d2, decoder_blocks[1])
        self.up2_1 = UpSampling(d2, tau)
        # Level 1 of the decoder keeps the 2*dim channels of the concatenation (no 1x1 reduction).
        self.decoder_level1 = level(d2, decoder_blocks[0])
        self.refinement = FeatureRefinementBlock(d2, reduction=8)
        self.output = nn.Sequential(nn.Conv2d(d2, out_channels, 3, padding=1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.dim() != 4:
            raise ValueError(f"ESDNet expects an image batch N,C,H,W, got shape {tuple(image.shape)}")
        # Start from rest whatever happened before (an interrupted forward, a neuron used alone).
        functional.reset_net(self)
        try:
            return self._forward(image)
        finally:
            # Hold no state between calls (the autograd graph keeps what backward needs).
            functional.reset_net(self)

    def _forward(self, image: torch.Tensor) -> torch.Tensor:
        H, W = image.shape[-2:]
        image = pad_to_multiple(image, self.pad_multiple)

        x = image.unsqueeze(0).repeat(self.T, 1, 1, 1, 1)  # T,N,C,H,W: the same frame every step
        enc1 = self.encoder_level1(self.patch_embed(x))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        dec3 = self.decoder_level3(self.encoder_level3(self.down2_3(enc2)))
        dec2 = self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], dim=2))
        dec2 = self.decoder_level2(dec2)
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], dim=2))
        out = self.output(self.refinement(dec1.mean(0))) + image  # global residual
        return out[..., :H, :W]


# -- registered presets ------------------------------------------------------------------
# The authors' configuration: 12,811,463 parameters.
DEFAULT = dict(dim=48, encoder_blocks=(4, 4, 8, 8), decoder_blocks=(2, 2, 2, 2), T=4)
# CPU-sized: 122,853 parameters, about 0.25 s per training iteration (forward, backward,
# AdamW step) at batch 8 of 64x64 crops on two CPU cores. Most of the time goes to the
# full-resolution level 1, so depth is spent at level 3, where it is cheap.
TINY = dict(dim=8, encoder_blocks=(1, 1, 2), decoder_blocks=(1, 1, 1), T=4)


@MODELS.register("esdnet")
def esdnet(**overrides) -> ESDNet:
    """ESDNet as published (dim 48, encoder [4,4,8,8], decoder [2,2,2,2], T 4)."""
    return ESDNet(**{**DEFAULT, **overrides})


@MODELS.register("esdnet_tiny")
def esdnet_tiny(**overrides) -> ESDNet:
    """A CPU-sized ESDNet (dim 8, encoder [1,1,2], decoder [1,1,1], T 4)."""
    return ESDNet(**{**TINY, **overrides})


@MODELS.register("esdnet_ann")
def esdnet_ann(**overrides) -> nn.Module:
    """ANN twin of ``esdnet``: every LIF replaced by ReLU, all weights the same."""
    return to_ann(esdnet(**overrides), activation=nn.ReLU, copy_model=False)


@MODELS.register("esdnet_tiny_ann")
def esdnet_tiny_ann(**overrides) -> nn.Module:
    """ANN twin of ``esdnet_tiny``."""
    return to_ann(esdnet_tiny(**overrides), activation=nn.ReLU, copy_model=False)
