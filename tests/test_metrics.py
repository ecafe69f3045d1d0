"""Metrics against scikit-image (the MATLAB-compatible setting papers report) to 1e-4."""
import numpy as np
import pytest
import torch
from skimage import data as skdata
from skimage.color import deltaE_ciede2000, rgb2lab, rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from restoration import metrics as M

SK_SSIM = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)


def sk_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """a, b: C,H,W arrays."""
    if a.shape[0] == 1:
        return structural_similarity(a[0], b[0], **SK_SSIM)
    return structural_similarity(np.moveaxis(a, 0, -1), np.moveaxis(b, 0, -1), channel_axis=-1, **SK_SSIM)


def sk_y(a: np.ndarray) -> np.ndarray:
    """C,H,W RGB in [0,1] -> 1,H,W Y in [0,1] by scikit-image's rgb2ycbcr (Y in 16..235)."""
    return (rgb2ycbcr(np.moveaxis(a, 0, -1))[..., 0] / 255.0)[None]


def pairs_random():
    g = torch.Generator().manual_seed(0)
    out = []
    for shape in [(2, 3, 37, 45), (1, 1, 19, 23), (3, 3, 64, 64)]:
        x = torch.rand(*shape, generator=g, dtype=torch.float64)
        y = (x + 0.1 * torch.randn(*shape, generator=g, dtype=torch.float64)).clamp(0, 1)
        out.append((x, y))
    return out


def pair_real():
    """A real photograph and a blurred, noisy version of it."""
    img = torch.from_numpy(skdata.astronaut()[::4, ::4].astype(np.float64) / 255.0).permute(2, 0, 1)[None]
    g = torch.Generator().manual_seed(1)
    k = torch.ones(3, 1, 3, 3, dtype=torch.float64) / 9
    blur = torch.nn.functional.conv2d(torch.nn.functional.pad(img, (1, 1, 1, 1), mode="replicate"), k, groups=3)
    noisy = (blur + 0.03 * torch.randn(blur.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    return img, noisy


@pytest.mark.parametrize("idx", range(4))
@pytest.mark.parametrize("y_channel,crop", [(False, 0), (True, 0), (False, 3), (True, 4)])
def test_psnr_ssim_match_skimage(idx, y_channel, crop):
    x, y = (pairs_random() + [pair_real()])[idx]
    if y_channel and x.shape[1] != 3:
        pytest.skip("Y channel needs RGB")
    p = M.psnr(x, y, y_channel=y_channel, crop_border=crop)
    s = M.ssim(x, y, y_channel=y_channel, crop_border=crop)
    assert p.shape == s.shape == (x.shape[0],)
    for i in range(x.shape[0]):
        a, b = x[i].numpy(), y[i].numpy()
        if y_channel:
            a, b = sk_y(a), sk_y(b)
        if crop:
            a, b = a[:, crop:-crop, crop:-crop], b[:, crop:-crop, crop:-crop]
        assert abs(float(p[i]) - peak_signal_noise_ratio(a, b, data_range=1.0)) < 1e-4
        assert abs(float(s[i]) - sk_ssim(a, b)) < 1e-4


def test_float32_inputs_match_too():
    x, y = pair_real()
    s = M.ssim(x.float(), y.float())
    ref = sk_ssim(x[0].float().double().numpy(), y[0].float().double().numpy())
    assert abs(float(s[0]) - ref) < 1e-4


def test_rgb_to_y_is_matlab_rgb2ycbcr():
    x, _ = pair_real()
    assert torch.allclose(M.rgb_to_y(x)[0], torch.from_numpy(sk_y(x[0].numpy())), atol=1e-10)


def test_identical_images():
    x, _ = pair_real()
    assert torch.isinf(M.psnr(x, x)).all()
    assert torch.allclose(M.ssim(x, x), torch.ones(1, dtype=torch.float64))
    assert torch.allclose(M.ms_ssim(x, x), torch.ones(1, dtype=torch.float64))
    assert float(M.ciede2000(x, x)[0]) == 0.0


def test_ms_ssim_one_level_is_ssim_and_more_noise_scores_lower():
    x, y = pair_real()
    one = M.ms_ssim(x, y, weights=[1.0])
    assert torch.allclose(one, M.ssim(x, y), atol=1e-12)
    g = torch.Generator().manual_seed(2)
    worse = (x + 0.2 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert float(M.ms_ssim(x, worse)[0]) < float(M.ms_ssim(x, y)[0]) < 1.0


def test_ms_ssim_is_product_over_scales_of_contrast_structure_then_ssim():
    """Reference computed here from ssim_map at each scale (two scales)."""
    x, y = pair_real()
    w = [0.3, 0.7]
    _, cs = M.ssim_map(x, y, return_cs=True)
    x2, y2 = torch.nn.functional.avg_pool2d(x, 2), torch.nn.functional.avg_pool2d(y, 2)
    s2 = M.ssim_map(x2, y2)
    ref = (cs.flatten(2).mean(2) ** w[0] * s2.flatten(2).mean(2) ** w[1]).mean(1)
    assert torch.allclose(M.ms_ssim(x, y, weights=w), ref, atol=1e-12)


def test_ciede2000_matches_skimage():
    x, y = pair_real()
    ref = deltaE_ciede2000(rgb2lab(np.moveaxis(x[0].numpy(), 0, -1)), rgb2lab(np.moveaxis(y[0].numpy(), 0, -1)))
    assert abs(float(M.ciede2000(x, y)[0]) - float(ref.mean())) < 1e-8


def test_errors_are_clear():
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(ValueError, match="differ in shape"):
        M.psnr(x, torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match="at least 11x11"):
        M.ssim(x, x)
    with pytest.raises(ValueError, match="crop_border"):
        M.psnr(x, x, crop_border=4)


def test_compute_metrics_keys_and_small_images():
    x, y = torch.rand(2, 3, 12, 12), torch.rand(2, 3, 12, 12)
    m = M.compute_metrics(x, y)
    assert set(m) == {"psnr", "ssim", "ms_ssim", "ciede2000"}
    assert all(v.shape == (2,) for v in m.values())
