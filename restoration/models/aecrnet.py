"""AECR-Net (CVPR 2021, "Contrastive Learning for Compact Single Image Dehazing"): the ANN
dehazing baseline. Its contrastive regularisation loss is in restoration/losses/contrast.py.

Network (facts from the authors' release, GlassyWu/AECR-Net)::

    FastDeconv (3x3, whitens input patches) -> 7x7 conv (64) -> 3x3/2 conv (128)
    -> 3x3/2 conv (256) -> one FFA DehazeBlock applied 6 times (shared weights)
    -> one DCN block applied twice (shared weights) -> mix with the 256-ch skip
    -> transposed conv (128) -> mix with the 128-ch skip -> transposed conv (64)
    -> 7x7 conv to RGB -> Tanh

Attribute names and shapes equal the authors' (``tests/fixtures/aecrnet_keys.json``), so
their checkpoints load through ``restoration.models.load_official('aecrnet', path)``.
The modulated deformable convolution (DCNv2) is written in plain torch here (bilinear
sampling by ``grid_sample``), with the parameter layout of DCNv2's ``DCN`` module.

One addition: the authors' network needs H and W divisible by 4 (the skip mixes fail
otherwise); ours reflect-pads to a multiple of 4 and crops back, which changes nothing
for sizes that already are.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.utils import _pair

from ..registry import MODELS
from ._layers import pad_to_multiple


# --------------------------------------------------------------------------------------
# Modulated deformable convolution (DCNv2)
# --------------------------------------------------------------------------------------
def deform_conv2d(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                  bias: Optional[torch.Tensor] = None, stride=1, padding=0, dilation=1) -> torch.Tensor:
    """Modulated deformable convolution, vectorised.

    For output pixel p and kernel tap k (row-major over the kernel)::

        out[p] = bias + sum_k weight[:, :, k] . mask[k, p] * x(p*stride - padding + k*dilation + offset[k, p])

    where ``x(.)`` is bilinear interpolation with zeros outside the image (DCNv2's rule).
    ``offset``: ``N, 2*G*K, Ho, Wo`` with (dy, dx) pairs per tap, as DCNv2 and
    torchvision; ``mask``: ``N, G*K, Ho, Wo``; G deformable groups split the input channels.
    """
    n, c, h, w = x.shape
    c_out, c_w, kh, kw = weight.shape
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    k = kh * kw
    groups = offset.shape[1] // (2 * k)
    if c_w != c or groups < 1 or c % groups or offset.shape != (n, 2 * groups * k, ho, wo) \
            or mask.shape != (n, groups * k, ho, wo):
        raise ValueError(f"deform_conv2d shapes do not fit: input {tuple(x.shape)}, weight {tuple(weight.shape)}, "
                         f"offset {tuple(offset.shape)} (want N, 2*G*{k}, {ho}, {wo}), mask {tuple(mask.shape)} "
                         f"(want N, G*{k}, {ho}, {wo})")
    # Sampling positions in input pixel coordinates, shape (N, G, K, Ho, Wo).
    ar = dict(dtype=x.dtype, device=x.device)
    tap_y = (torch.arange(kh, **ar) * dh).repeat_interleave(kw).view(1, 1, k, 1, 1)
    tap_x = (torch.arange(kw, **ar) * dw).repeat(kh).view(1, 1, k, 1, 1)
    off = offset.view(n, groups, k, 2, ho, wo)
    py = (torch.arange(ho, **ar) * sh - ph).view(1, 1, 1, ho, 1) + tap_y + off[:, :, :, 0]
    px = (torch.arange(wo, **ar) * sw - pw).view(1, 1, 1, 1, wo) + tap_x + off[:, :, :, 1]
    # grid_sample with align_corners=False maps normalised g to pixel ((g + 1) * size - 1) / 2;
    # zeros padding drops every corner outside the image, exactly as DCNv2's sampler.
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1)
    sampled = F.grid_sample(x.reshape(n * groups, c // groups, h, w), grid.view(n * groups, k * ho, wo, 2),
                            mode="bilinear", padding_mode="zeros", align_corners=False)
    cols = sampled.view(n, groups, c // groups, k, ho * wo) * mask.view(n, groups, 1, k, ho * wo)
    out = weight.reshape(c_out, c * k) @ cols.reshape(n, c * k, ho * wo)  # (c, k) order = weight's
    out = out.view(n, c_out, ho, wo)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


class DCN(nn.Module):
    """DCNv2's ``DCN`` module: a conv (``conv_offset_mask``, zero-initialised) predicts
    per-pixel offsets and a sigmoid modulation mask, then the deformable conv runs with
    ``weight`` and ``bias``. At initialisation offsets are 0 and the mask 0.5."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size=3, stride=1, padding=1, dilation=1,
                 deformable_groups: int = 1):
        super().__init__()
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        bound = 1.0 / math.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.weight, -bound, bound)  # DCNv2's init
        taps = self.kernel_size[0] * self.kernel_size[1]
        self.conv_offset_mask = nn.Conv2d(in_channels, deformable_groups * 3 * taps, self.kernel_size,
                                          stride=self.stride, padding=self.padding, dilation=self.dilation)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def forward(self, x):
        # DCNv2 splits the prediction in three equal chunks: two of offsets, one of mask logits.
        o1, o2, mask_logits = torch.chunk(self.conv_offset_mask(x), 3, dim=1)
        return deform_conv2d(x, torch.cat((o1, o2), dim=1), torch.sigmoid(mask_logits), self.weight, self.bias,
                             self.stride, self.padding, self.dilation)


class DCNBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.dcn = DCN(in_channels, out_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x):
        return self.dcn(x)


# --------------------------------------------------------------------------------------
# FastDeconv: network deconvolution (Ye et al., ICLR 2020) as input pre-processing
# --------------------------------------------------------------------------------------
def isqrt_newton_schulz(a: torch.Tensor, n_iter: int) -> torch.Tensor:
    """A^(-1/2) of a symmetric positive-definite matrix by the coupled Newton-Schulz
    iteration (differentiable; converges for the Frobenius-normalised matrix)."""
    norm = a.norm()
    eye = torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
    y, z = a / norm, eye
    for _ in range(n_iter):
        t = 0.5 * (3.0 * eye - z @ y)
        y, z = y @ t, t @ z
    return z / norm.sqrt()


class FastDeconv(nn.Module):
    """A conv whose input patches are whitened first: with patch mean m and covariance C,
    ``conv(D (patch - m))`` where D = C^(-1/2). The whitening is folded into the kernel,
    so it costs one ordinary conv: W' = W D, b' = b - W D m.

    Training: m and C come from every ``sampling_stride``-th patch of the batch (D by
    Newton-Schulz, gradients flow through it) and update running averages; eval uses the
    running values. Patch columns are whitened in blocks of ``block`` channels.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, dilation: int = 1, eps: float = 1e-5, n_iter: int = 5, momentum: float = 0.1,
                 block: int = 64, sampling_stride: int = 3):
        super().__init__()
        if block > in_channels:
            block = in_channels
        elif in_channels % block:
            block = math.gcd(block, in_channels)
        self.in_channels, self.out_channels, self.block = in_channels, out_channels, block
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.eps, self.n_iter, self.momentum = eps, n_iter, momentum
        self.sampling_stride = sampling_stride * self.stride[0]
        self.num_features = self.kernel_size[0] * self.kernel_size[1] * block
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's init
        bound = 1.0 / math.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        nn.init.uniform_(self.bias, -bound, bound)
        self.register_buffer("running_mean", torch.zeros(self.num_features))
        self.register_buffer("running_deconv", torch.eye(self.num_features))

    def _to_blocks(self, cols: torch.Tensor) -> torch.Tensor:
        """(rows, C*kh*kw) patch columns -> (rows * C/block, num_features), the layout the
        statistics are taken in (the authors' interleaved split of the columns)."""
        n_blocks = self.in_channels // self.block
        return cols.reshape(-1, self.num_features, n_blocks).transpose(1, 2).reshape(-1, self.num_features)

    def whitening(self, x: torch.Tensor):
        """(mean, D) to use for ``x``: batch statistics in training, running ones in eval."""
        if not self.training:
            return self.running_mean, self.running_deconv
        cols = F.unfold(x, self.kernel_size, self.dilation, self.padding, self.sampling_stride)
        rows = self._to_blocks(cols.transpose(1, 2))
        mean = rows.mean(0)
        centred = rows - mean
        eye = torch.eye(self.num_features, dtype=x.dtype, device=x.device)
        cov = centred.t() @ centred / rows.shape[0] + self.eps * eye
        deconv = isqrt_newton_schulz(cov, self.n_iter)
        with torch.no_grad():
            self.running_mean.lerp_(mean.detach(), self.momentum)
            self.running_deconv.lerp_(deconv.detach(), self.momentum)
        return mean, deconv

    def forward(self, x):
        if x.shape[1] != self.in_channels:
            raise ValueError(f"FastDeconv expects {self.in_channels} input channels, got {tuple(x.shape)}")
        mean, deconv = self.whitening(x)
        w = self._to_blocks(self.weight.reshape(self.out_channels, -1)) @ deconv
        b = self.bias - (w @ mean).view(self.out_channels, -1).sum(1)
        n_blocks = self.in_channels // self.block
        w = w.view(-1, n_blocks, self.num_features).transpose(1, 2).reshape(self.weight.shape)
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation)


# --------------------------------------------------------------------------------------
# The network
# --------------------------------------------------------------------------------------
class PALayer(nn.Module):
    """Pixel attention: a one-channel sigmoid map multiplies every channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.pa = nn.Sequential(nn.Conv2d(channels, channels // 8, 1), nn.ReLU(),
                                nn.Conv2d(channels // 8, 1, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.pa(x)


class CALayer(nn.Module):
    """Channel attention from the global average of each channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.ca = nn.Sequential(nn.Conv2d(channels, channels // 8, 1), nn.ReLU(),
                                nn.Conv2d(channels // 8, channels, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.ca(x.mean(dim=(2, 3), keepdim=True))


class DehazeBlock(nn.Module):
    """FFA-Net's block: conv-ReLU with a local residual, conv, channel then pixel
    attention, and a residual over the whole block."""

    def __init__(self, dim: int, kernel_size: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2)
        self.calayer = CALayer(dim)
        self.palayer = PALayer(dim)

    def forward(self, x):
        res = self.act1(self.conv1(x)) + x
        res = self.palayer(self.calayer(self.conv2(res)))
        return res + x


class Mix(nn.Module):
    """Adaptive mixup: ``s * a + (1 - s) * b`` with ``s = sigmoid(w)``, ``w`` learned."""

    def __init__(self, init: float):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([float(init)]))

    def forward(self, a, b):
        s = torch.sigmoid(self.w)
        return a * s + b * (1 - s)


class AECRNet(nn.Module):
    """AECR-Net's dehazing autoencoder (the authors' ``Dehaze(3, 3)``); see the module docstring.

    ``n_block_repeats`` and ``n_dcn_repeats``: how often the shared DehazeBlock and the
    shared DCN block are applied (6 and 2 in the paper's code).
    """

    pad_multiple = 4

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_block_repeats: int = 6,
                 n_dcn_repeats: int = 2, mix_init: Sequence[float] = (-1.0, -0.6)):
        super().__init__()
        self.n_block_repeats, self.n_dcn_repeats = n_block_repeats, n_dcn_repeats
        self.down1 = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), nn.ReLU())
        self.down2 = nn.Sequential(nn.Conv2d(ngf, ngf * 2, 3, stride=2, padding=1), nn.ReLU())
        self.down3 = nn.Sequential(nn.Conv2d(ngf * 2, ngf * 4, 3, stride=2, padding=1), nn.ReLU())
        self.block = DehazeBlock(ngf * 4, 3)
        self.up1 = nn.Sequential(nn.ConvTranspose2d(ngf * 4, ngf * 2, 3, stride=2, padding=1, output_padding=1),
                                 nn.ReLU())
        self.up2 = nn.Sequential(nn.ConvTranspose2d(ngf * 2, ngf, 3, stride=2, padding=1, output_padding=1),
                                 nn.ReLU())
        self.up3 = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, out_channels, 7), nn.Tanh())
        self.dcn_block = DCNBlock(ngf * 4, ngf * 4)
        self.deconv = FastDeconv(in_channels, in_channels, kernel_size=3, stride=1, padding=1)
        self.mix1 = Mix(mix_init[0])
        self.mix2 = Mix(mix_init[1])

    def forward(self, x):
        h, w = x.shape[-2:]
        x = pad_to_multiple(x, self.pad_multiple)
        x = self.deconv(x)
        skip1 = self.down1(x)
        skip2 = self.down2(skip1)
        skip3 = self.down3(skip2)
        y = skip3
        for _ in range(self.n_block_repeats):
            y = self.block(y)
        for _ in range(self.n_dcn_repeats):
            y = self.dcn_block(y)
        y = self.up1(self.mix1(skip3, y))
        y = self.up2(self.mix2(skip2, y))
        return self.up3(y)[..., :h, :w]


@MODELS.register("aecrnet")
def aecrnet(**overrides) -> AECRNet:
    """AECR-Net as in the authors' code (2,614,229 parameters); keyword overrides go to AECRNet."""
    return AECRNet(**overrides)

