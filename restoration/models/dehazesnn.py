"""DehazeSNN (IJCNN 2025): a U-Net-like spiking network for single-image dehazing.

Layout (facts from the authors' release, HaoranLiu507/DehazeSNN)::

    3x3 patch embed (24) -> stage1 (24) -> 2x2 strided merge -> stage2 (48) -> merge
    -> stage3 (96) -> 1x1 conv + pixel shuffle -> SK fusion with stage2 skip -> stage4 (48)
    -> split -> SK fusion with stage1 skip -> stage5 (24) -> 3x3 conv to RGB

Every stage is a stack of :class:`OLIFBlock`: GroupNorm, the OLIF mixer (1x1 conv,
depthwise 3x3, then orthogonal LIF along H and along W in two branches that are summed),
a residual, and a 1x1-conv MLP with a second residual. The input is reflect-padded to a
multiple of 4 and the output cropped back.

Attribute names and parameter shapes equal the authors' so that their checkpoints load
with ``strict=True`` (``tests/fixtures/dehazesnn_*_keys.json`` holds their names and
shapes; ``restoration.models.load_official`` reads their files). The orthogonal LIF is
the shared core's :class:`restoration.spiking.OLIF` (params ``tau`` and ``Vth``, as theirs).

OLIF is a pure function of its input (no membrane state survives a forward), so no reset
is needed between forwards.
"""
from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn as nn

from ..registry import MODELS
from ..spiking import OLIF, to_ann
from ._layers import DropPath, pad_to_multiple

NORM_GROUPS = 24  # the authors' norm is GroupNorm(24, dim) everywhere


def group_norm(dim: int) -> nn.GroupNorm:
    return nn.GroupNorm(NORM_GROUPS, dim)


class MLP(nn.Module):
    """Pointwise feed-forward: 1x1 conv, LeakyReLU(0.1), 1x1 conv."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.LeakyReLU(0.1)
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class OLIFMixer(nn.Module):
    """The spatial mixer of a block (the authors' ``LIFModule``).

    1x1 conv and depthwise 3x3 conv (each followed by GroupNorm + LeakyReLU) prepare the
    features; OLIF along H (``lif1``) and along W (``lif2``) each feed a 1x1 conv branch;
    the two branches are summed, normalised and projected by a last 1x1 conv.
    """

    def __init__(self, dim: int, bias: bool = True, lif: int = 4, fix_tau: bool = False,
                 fix_vth: bool = False, init_tau: float = 0.25, init_vth: float = 0.25,
                 backend: str = "auto"):
        super().__init__()
        # (attributes are created in the authors' order, so state dicts list keys alike)
        self.conv1 = nn.Conv2d(dim, dim, 1, bias=bias)
        self.conv2_1 = nn.Conv2d(dim, dim, 1, bias=bias)  # after OLIF along H
        self.conv2_2 = nn.Conv2d(dim, dim, 1, bias=bias)  # after OLIF along W
        self.conv3 = nn.Conv2d(dim, dim, 1, bias=bias)
        self.actn = nn.LeakyReLU(0.1)
        # norm1: after conv1, norm2: after dw1, norm4/norm5: the H/W branches, norm3: their sum
        self.norm1, self.norm2, self.norm3 = group_norm(dim), group_norm(dim), group_norm(dim)
        self.norm4, self.norm5 = group_norm(dim), group_norm(dim)
        neuron = dict(lif=lif, init_tau=init_tau, init_vth=init_vth, fix_tau=fix_tau, fix_vth=fix_vth,
                      backend=backend)
        self.lif1 = OLIF(dim=2, **neuron)  # along H
        self.lif2 = OLIF(dim=3, **neuron)  # along W
        self.dw1 = nn.Conv2d(dim, dim, 3, padding=1, groups=dim, bias=bias)  # depthwise 3x3

    def forward(self, x):
        x = self.actn(self.norm1(self.conv1(x)))
        x = self.actn(self.norm2(self.dw1(x)))
        along_h = self.actn(self.norm4(self.conv2_1(self.lif1(x))))
        along_w = self.actn(self.norm5(self.conv2_2(self.lif2(x))))
        return self.conv3(self.norm3(along_h + along_w))


class OLIFBlock(nn.Module):
    """Pre-norm residual block: x + mixer(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0, drop_path: float = 0.0, **mixer):
        super().__init__()
        self.norm1 = group_norm(dim)
        self.lif_module = OLIFMixer(dim, **mixer)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.norm2 = group_norm(dim)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.drop_path(self.lif_module(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class Stage(nn.Module):
    """A stack of blocks at one scale (the authors' ``BasicLayer``)."""

    def __init__(self, dim: int, depth: int, mlp_ratio: float, drop_paths: Sequence[float], **mixer):
        super().__init__()
        self.blocks = nn.ModuleList(OLIFBlock(dim, mlp_ratio, drop_paths[i], **mixer) for i in range(depth))

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class PatchEmbed(nn.Module):
    """Strided conv with reflect padding (stride ``patch``); optional GroupNorm."""

    def __init__(self, in_ch: int, out_ch: int, patch: int, kernel: int, norm: bool = False):
        super().__init__()
        self.proj = nn.Conv2d(in_ch, out_ch, kernel, stride=patch, padding=(kernel - patch + 1) // 2,
                              padding_mode="reflect")
        self.norm = group_norm(out_ch) if norm else None

    def forward(self, x):
        x = self.proj(x)
        return x if self.norm is None else self.norm(x)


class PatchUnembed(nn.Module):
    """Conv to ``out_ch * patch**2`` channels then pixel shuffle (up-sampling by ``patch``)."""

    def __init__(self, in_ch: int, out_ch: int, patch: int, kernel: int = 1):
        super().__init__()
        self.proj = nn.Sequential(
            nn.Conv2d(in_ch, out_ch * patch ** 2, kernel, padding=kernel // 2, padding_mode="reflect"),
            nn.PixelShuffle(patch))

    def forward(self, x):
        return self.proj(x)


class SKFusion(nn.Module):
    """Selective-kernel fusion of ``height`` same-shape feature maps: a softmax over the
    branches, per channel, computed from the pooled sum of the branches."""

    def __init__(self, dim: int, height: int = 2, reduction: int = 8):
        super().__init__()
        self.height = height
        hidden = max(dim // reduction, 4)
        self.mlp = nn.Sequential(nn.Conv2d(dim, hidden, 1, bias=False), nn.ReLU(),
                                 nn.Conv2d(hidden, dim * height, 1, bias=False))

    def forward(self, feats):
        stacked = torch.stack(feats, dim=1)  # B, height, C, H, W
        b, _, c = stacked.shape[:3]
        pooled = stacked.sum(dim=1).mean(dim=(2, 3), keepdim=True)
        weights = self.mlp(pooled).view(b, self.height, c, 1, 1).softmax(dim=1)
        return (stacked * weights).sum(dim=1)


class DehazeSNN(nn.Module):
    """DehazeSNN; see the module docstring. ``mlp_ratio`` is one number or one per stage."""

    pad_multiple = 4  # two 2x down-samplings, and the authors pad to 4

    def __init__(self, in_chans: int = 3, embed_dims: Sequence[int] = (24, 48, 96, 48, 24),
                 depths: Sequence[int] = (2, 4, 8, 4, 2), mlp_ratio: Union[float, Sequence[float]] = 4.0,
                 lif_bias: bool = True, drop_path_rate: float = 0.1, patch_norm: bool = True,
                 lif: int = 4, lif_fix_tau: bool = False, lif_fix_vth: bool = False,
                 lif_init_tau: float = 0.25, lif_init_vth: float = 0.25, backend: str = "auto",
                 signed_io: bool = True, global_residual: bool = False):
        super().__init__()
        # The authors train and test on images scaled to [-1, 1] (their loader's `* 2 - 1`,
        # their test's `* 0.5 + 0.5`). With signed_io the model does that mapping itself, so
        # it takes and returns [0, 1] images like every model here, and their checkpoints
        # behave as they did for them. signed_io=False exposes the raw [-1, 1] network.
        self.signed_io = signed_io
        # global_residual (not in the authors' network, off by default): add the input to
        # the output, as ESDNet does, so the network learns the haze to remove and an
        # untouched image is its zero output. The shipped CPU weights use it: trained for
        # minutes instead of 1500 epochs, the plain network re-draws every pixel and shifts
        # the brightness of light-haze photographs (docs/PRETRAINED.md). No new parameters.
        self.global_residual = global_residual
        dims, depths = list(embed_dims), list(depths)
        if len(dims) != 5 or len(depths) != 5:
            raise ValueError(f"DehazeSNN needs 5 embed_dims and 5 depths (one per stage), "
                             f"got embed_dims={dims}, depths={depths}")
        if any(d % NORM_GROUPS for d in dims):
            raise ValueError(f"DehazeSNN embed_dims must be multiples of {NORM_GROUPS} (GroupNorm with "
                             f"{NORM_GROUPS} groups), got {dims}")
        if dims[1] != dims[3] or dims[0] != dims[4]:
            raise ValueError(f"DehazeSNN skips need embed_dims[3] == embed_dims[1] and embed_dims[4] == "
                             f"embed_dims[0], got {dims}")
        ratios = [float(mlp_ratio)] * 5 if isinstance(mlp_ratio, (int, float)) else [float(r) for r in mlp_ratio]
        self.embed_dims, self.depths, self.mlp_ratio = dims, depths, ratios
        mixer = dict(bias=lif_bias, lif=lif, fix_tau=lif_fix_tau, fix_vth=lif_fix_vth, init_tau=lif_init_tau,
                     init_vth=lif_init_vth, backend=backend)
        # stochastic depth grows linearly over all blocks of the network
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        starts = [sum(depths[:i]) for i in range(5)]

        def stage(i):
            return Stage(dims[i], depths[i], ratios[i], rates[starts[i]:starts[i] + depths[i]], **mixer)

        self.patch_embed = PatchEmbed(in_chans, dims[0], patch=1, kernel=3, norm=patch_norm)
        self.layer1 = stage(0)
        self.patch_merge1 = PatchEmbed(dims[0], dims[1], patch=2, kernel=2)
        self.skip1 = nn.Conv2d(dims[0], dims[0], 1)
        self.layer2 = stage(1)
        self.patch_merge2 = PatchEmbed(dims[1], dims[2], patch=2, kernel=2)
        self.skip2 = nn.Conv2d(dims[1], dims[1], 1)
        self.layer3 = stage(2)
        self.patch_split1 = PatchUnembed(dims[2], dims[3], patch=2)
        self.fusion1 = SKFusion(dims[3])
        self.layer4 = stage(3)
        self.patch_split2 = PatchUnembed(dims[3], dims[4], patch=2)
        self.fusion2 = SKFusion(dims[4])
        self.layer5 = stage(4)
        self.patch_unembed = PatchUnembed(dims[4], 3, patch=1, kernel=3)
        # Default PyTorch init for the convs, GroupNorm weight 1 / bias 0: as the authors.

    def forward_features(self, x):
        x = self.layer1(self.patch_embed(x))
        skip1 = x
        x = self.layer2(self.patch_merge1(x))
        skip2 = x
        x = self.layer3(self.patch_merge2(x))
        x = self.patch_split1(x)
        x = x + self.fusion1([x, self.skip2(skip2)])
        x = self.patch_split2(self.layer4(x))
        x = x + self.fusion2([x, self.skip1(skip1)])
        return self.patch_unembed(self.layer5(x))

    def forward(self, x):
        h, w = x.shape[-2:]
        if self.signed_io:
            x = x * 2 - 1
        x = pad_to_multiple(x, self.pad_multiple)
        y = self.forward_features(x)[..., :h, :w]
        if self.global_residual:
            y = y + x[..., :h, :w]
        return y * 0.5 + 0.5 if self.signed_io else y


# Depths of the authors' S / M / L builders; everything else is shared.
DEPTHS = {"s": (2, 4, 8, 4, 2), "m": (8, 12, 16, 12, 8), "l": (8, 16, 32, 16, 8)}

# The ANN twin's activation. OLIF outputs y = u if u > Vth else Vth, i.e. max(u, Vth),
# where u integrates the input with a leak along H or W. Removing spiking keeps the
# gate and drops the integration: max(x, Vth) = ReLU(x - Vth) + Vth, which is a ReLU
# up to constant shifts that the following 1x1 conv's bias absorbs. nn.Identity would
# drop the gate as well and leave the mixer's two branches linear in x, so the twin
# would measure "no OLIF non-linearity" rather than "no spiking"; hence ReLU.
ANN_ACTIVATION = nn.ReLU


def _register(size: str) -> None:
    def build(**overrides) -> DehazeSNN:
        return DehazeSNN(**{"depths": DEPTHS[size], **overrides})

    def build_ann(activation=ANN_ACTIVATION, **overrides) -> nn.Module:
        return to_ann(build(**overrides), activation=activation)

    build.__doc__ = f"DehazeSNN-{size.upper()} (depths {list(DEPTHS[size])}); keyword overrides go to DehazeSNN."
    build_ann.__doc__ = f"The ANN twin of DehazeSNN-{size.upper()}: every OLIF replaced by ``activation`` (ReLU)."
    MODELS.register(f"dehazesnn_{size}", build)
    MODELS.register(f"dehazesnn_{size}_ann", build_ann)


for _size in DEPTHS:
    _register(_size)
