"""Image quality metrics on ``N,C,H,W`` tensors in [0, 1], one value per image.

``psnr`` and ``ssim`` reproduce scikit-image's ``peak_signal_noise_ratio`` and
``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=1, channel_axis=...)``, the MATLAB-compatible setting restoration papers
report (tests compare them to 1e-4). Both accept ``y_channel=True`` (the Y of
ITU-R BT.601 YCbCr as MATLAB's rgb2ycbcr, the deraining protocol of ESDNet) and
``crop_border`` (pixels removed from every side before measuring).

Metrics are computed in float64 without gradient; the differentiable versions used
as losses live in :mod:`restoration.losses` and share :func:`ssim_map` and
:func:`ms_ssim` here.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

# MATLAB rgb2ycbcr (BT.601, studio swing), inputs in [0, 1], output Y in [16/255, 235/255].
_Y_COEF = (65.481, 128.553, 24.966)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """``N,3,H,W`` RGB in [0, 1] -> ``N,1,H,W`` luma in [0, 1] (MATLAB's rgb2ycbcr Y)."""
    if x.shape[-3] != 3:
        raise ValueError(f"rgb_to_y needs 3 channels (RGB) in dim -3, got shape {tuple(x.shape)}")
    w = x.new_tensor(_Y_COEF).view(3, 1, 1)
    return ((x * w).sum(dim=-3, keepdim=True) + 16.0) / 255.0


def _prepare(x: torch.Tensor, y: torch.Tensor, y_channel: bool, crop_border: int, dtype=torch.float64):
    if x.shape != y.shape:
        raise ValueError(f"metric inputs differ in shape: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.dim() == 3:
        x, y = x.unsqueeze(0), y.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"metrics take N,C,H,W (or C,H,W) tensors, got shape {tuple(x.shape)}")
    x, y = x.detach().to(dtype), y.detach().to(dtype)
    if y_channel:
        x, y = rgb_to_y(x), rgb_to_y(y)
    if crop_border:
        c = int(crop_border)
        if 2 * c >= min(x.shape[-2:]):
            raise ValueError(f"crop_border={c} removes the whole {tuple(x.shape[-2:])} image")
        x, y = x[..., c:-c, c:-c], y[..., c:-c, c:-c]
    return x, y


@torch.no_grad()
def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, y_channel: bool = False,
         crop_border: int = 0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per image (MSE over all channels and pixels).

    Identical images give ``inf``, as scikit-image does.
    """
    x, y = _prepare(x, y, y_channel, crop_border)
    mse = ((x - y) ** 2).flatten(1).mean(1)
    return 10.0 * torch.log10(data_range ** 2 / mse)


def gaussian_window(sigma: float = 1.5, truncate: float = 3.5, dtype=torch.float64, device=None) -> torch.Tensor:
    """1-D normalised Gaussian as scipy.ndimage.gaussian_filter builds it (radius
    ``int(truncate*sigma+0.5)``, 11 taps for sigma 1.5)."""
    r = int(truncate * sigma + 0.5)
    t = torch.arange(-r, r + 1, dtype=dtype, device=device)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def _filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of every channel, 'valid' region only."""
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, sigma: float = 1.5,
             k1: float = 0.01, k2: float = 0.03, return_cs: bool = False):
    """SSIM (and contrast-structure) maps over the valid region, ``N,C,h,w``.

    scikit-image filters the whole image and then crops ``(win-1)/2`` pixels from each
    side before averaging; a 'valid' convolution gives exactly those values.
    Differentiable; used by the SSIM and MS-SSIM losses.
    """
    g = gaussian_window(sigma, dtype=x.dtype, device=x.device)
    if min(x.shape[-2:]) < g.numel():
        raise ValueError(f"SSIM needs images of at least {g.numel()}x{g.numel()} pixels "
                         f"(after border crop), got {tuple(x.shape[-2:])}")
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    # one grouped conv pass for the five filtered quantities
    n, c = x.shape[:2]
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    f = _filter_valid(stack, g)
    mx, my, mxx, myy, mxy = f.split(c, dim=1)
    vx, vy, cxy = mxx - mx * mx, myy - my * my, mxy - mx * my
    cs = (2 * cxy + c2) / (vx + vy + c2)
    s = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs
    return (s, cs) if return_cs else s


@torch.no_grad()
def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, y_channel: bool = False,
         crop_border: int = 0) -> torch.Tensor:
    """Structural similarity per image (mean over channels and valid pixels)."""
    x, y = _prepare(x, y, y_channel, crop_border)
    return ssim_map(x, y, data_range).flatten(1).mean(1)


MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0,
            weights: Optional[Sequence[float]] = None) -> torch.Tensor:
    """Multi-scale SSIM per image (Wang et al. 2003), differentiable.

    Five scales with the standard weights; images too small for five scales (each
    scale halves the size and needs 11 pixels) use as many scales as fit, with the
    weights renormalised, so small test images still get a value.
    """
    w = list(weights or MS_SSIM_WEIGHTS)
    min_side = min(x.shape[-2:])
    levels = max(1, min(len(w), int(math.floor(math.log2(min_side / 11))) + 1)) if min_side >= 11 else 0
    if levels == 0:
        raise ValueError(f"MS-SSIM needs images of at least 11x11 pixels, got {tuple(x.shape[-2:])}")
    w = torch.tensor(w[:levels], dtype=x.dtype, device=x.device)
    w = w / w.sum()
    vals = []
    for i in range(levels):
        s, cs = ssim_map(x, y, data_range, return_cs=True)
        if i < levels - 1:
            vals.append(torch.relu(cs.flatten(2).mean(2)))
            x = F.avg_pool2d(x, 2, ceil_mode=False)
            y = F.avg_pool2d(y, 2, ceil_mode=False)
        else:
            vals.append(torch.relu(s.flatten(2).mean(2)))
    v = torch.stack(vals, dim=0)  # levels, N, C
    return torch.prod(v ** w.view(-1, 1, 1), dim=0).mean(1)


@torch.no_grad()
def ms_ssim_metric(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, y_channel: bool = False,
                   crop_border: int = 0) -> torch.Tensor:
    x, y = _prepare(x, y, y_channel, crop_border)
    return ms_ssim(x, y, data_range)


@torch.no_grad()
def ciede2000(x: torch.Tensor, y: torch.Tensor, crop_border: int = 0) -> torch.Tensor:
    """Mean CIEDE2000 colour difference per image (scikit-image; lower is better)."""
    from skimage.color import deltaE_ciede2000, rgb2lab

    x, y = _prepare(x, y, False, crop_border)
    if x.shape[1] != 3:
        raise ValueError(f"CIEDE2000 needs RGB images, got {x.shape[1]} channels")
    out = []
    for a, b in zip(x.clamp(0, 1).cpu().numpy(), y.clamp(0, 1).cpu().numpy()):
        la, lb = rgb2lab(np.moveaxis(a, 0, -1)), rgb2lab(np.moveaxis(b, 0, -1))
        out.append(float(deltaE_ciede2000(la, lb).mean()))
    return torch.tensor(out, dtype=torch.float64)


def compute_metrics(pred: torch.Tensor, target: torch.Tensor, y_channel: bool = False, crop_border: int = 0,
                    with_ms_ssim: bool = True, with_ciede2000: bool = True) -> dict:
    """All metrics per image as a dict of ``N`` tensors (keys psnr, ssim, ms_ssim, ciede2000).

    MS-SSIM and CIEDE2000 are left out (NaN) where the image cannot give them.
    """
    pred, target = pred.clamp(0, 1), target.clamp(0, 1)
    out = {"psnr": psnr(pred, target, y_channel=y_channel, crop_border=crop_border),
           "ssim": ssim(pred, target, y_channel=y_channel, crop_border=crop_border)}
    n = pred.shape[0]
    if with_ms_ssim:
        try:
            out["ms_ssim"] = ms_ssim_metric(pred, target, y_channel=y_channel, crop_border=crop_border)
        except ValueError:
            out["ms_ssim"] = torch.full((n,), float("nan"), dtype=torch.float64)
    if with_ciede2000:
        if pred.shape[1] == 3:
            out["ciede2000"] = ciede2000(pred, target, crop_border=crop_border)
        else:
            out["ciede2000"] = torch.full((n,), float("nan"), dtype=torch.float64)
    return out
