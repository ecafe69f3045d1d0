"""DHF-JSCC: deep joint source-channel coding of stereo image pairs.

One architecture, two neuron kinds, registered as

* ``dhf_jscc_cnn``: the CNN (ReLU), after DHF-JSCC (SunnyYoshimitsu/DHF-JSCC);
* ``dhf_jscc_snn``: the spiking network, LIF neurons (tau 2, ATan surrogate) over T time
  steps in place of every activation, SpikingJelly multi-step layers;
* ``dhf_jscc_snn_ann``: the ANN twin of the SNN (``restoration.spiking.to_ann``).

The CNN and the SNN have the same modules and parameter names, so a CNN checkpoint loads
into the SNN (and into the twin) with ``strict=True``.

Data flow, per stereo pair ``N x 2 x 3 x H x W`` in [0, 1] (left, right)::

    left  -> encoder_l -> power norm -> AWGN --\\
                                               decoder (both views, cross-view fusion
    right -> encoder_r -> power norm -> AWGN --/  at 1/8, 1/4, 1/2 scale) -> left', right'

* Encoders (one per view, no exchange between them: each image is sent on its own, the
  other view only helps at the receiver): 5x5 stride-2 convs, three times (1/8 scale),
  a residual block per scale, then a 3x3 conv to ``latent_channels`` real values.
* Channel: consecutive real pairs are the (real, imaginary) parts of complex symbols, as
  in DHF-JSCC's channel; each image is scaled to unit average symbol power, then complex
  Gaussian noise of power ``10 ** (-snr_db / 10)`` is added.
* Bandwidth ratio: complex channel symbols per source value (3 H W per image)
  = ``latent_channels * (H/8) * (W/8) / 2 / (3 H W) = latent_channels / 384``;
  the constructor takes the ratio (default 1/6) and ``model.bandwidth_ratio`` reports the
  one the built layers give. Inputs are padded (replicate) to a multiple of 8 and the
  output is cropped back; :meth:`DHFJSCC.symbols_per_image` counts the padded case.
* Decoder: per view a 3x3 conv, then per scale a residual block, the stereo cross-view
  fusion (row-wise cross attention, DHF-JSCC's SCAM) and a 5x5 stride-2 transposed conv;
  a final 3x3 conv and a sigmoid.
* Optional ``entropy=True``: the latent is quantised (uniform noise in training, rounding
  in eval) and a per-channel Gaussian entropy model gives a rate term (bits per source
  pixel) for the rate-distortion loss ``MSE + lambda * rate`` (:func:`rate_distortion_loss`).

Why the seed's SNN stalled at ~10 dB and what this design does instead (docs/JSCC.md):
the image enters the first conv as analog values (direct encoding, no rate coding); a
channel LayerNorm in front of every neuron keeps its input at unit scale so no layer
goes silent (no batch statistics, so train and eval agree); the residual stream between
neurons is real valued (membrane-shortcut residuals), so information and gradients do not
have to squeeze through binary spikes at every layer; the channel symbols are the
time-average of a conv over spikes (real values, one set per image, not T binary sets),
and the image is read out from the time-averaged real-valued stream by a non-spiking conv
and a sigmoid (no spiking output layer, whose T+1 levels would quantise the image).

Output of ``model(pair)``: a dict ``{'recon': N x 2 x 3 x H x W in [0, 1], 'rate': scalar
tensor or None}`` (``rate`` only with ``entropy=True``).
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, layer

from ..registry import MODELS
from ..spiking import LIF, to_ann
from ._layers import pad_to_multiple

NUM_DOWN = 3                 # stride-2 stages in each encoder (DHF-JSCC: three)
FACTOR = 2 ** NUM_DOWN       # inputs are padded to a multiple of this
REALS_PER_SYMBOL = 2         # a complex channel symbol = (real, imaginary)
SOURCE_CHANNELS = 3          # RGB
# complex symbols per source value for one latent channel
RATIO_PER_LATENT_CHANNEL = 1.0 / (REALS_PER_SYMBOL * SOURCE_CHANNELS * FACTOR * FACTOR)  # 1/384

NEURONS = ("relu", "lif")


# --------------------------------------------------------------------------------------
# channel
# --------------------------------------------------------------------------------------
def power_normalize(y: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Scale each image's symbols (first axis = image) to unit average complex-symbol power.

    A complex symbol is a pair of consecutive reals, so its power is re^2 + im^2 and the
    average over an image's symbols is ``2 * mean(y ** 2)``.
    """
    power = y.flatten(1).pow(2).mean(1) * REALS_PER_SYMBOL
    return y / power.clamp_min(eps).sqrt().view(-1, *([1] * (y.dim() - 1)))


class AWGNChannel(nn.Module):
    """Per-image power normalisation, then additive white Gaussian noise at ``snr_db``.

    Consecutive reals pair into complex symbols (DHF-JSCC's ``channel_in[::2] + 1j *
    channel_in[1::2]``); with unit signal power the complex noise has power
    ``10 ** (-snr_db / 10)``, i.e. ``std = sqrt(1 / (2 * 10 ** (snr_db / 10)))`` per real.
    ``snr_db = inf`` is the noiseless channel. The receiver gets the normalised noisy
    symbols (the transmit power is not sent back to it).

    ``generator``: a ``torch.Generator`` for reproducible noise. The noise is drawn on the
    generator's device and moved to the data, so a CPU generator gives the same noise for
    a model on any device.
    """

    def forward(self, y: torch.Tensor, snr_db: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        tx = power_normalize(y)
        if math.isinf(snr_db) and snr_db > 0:
            return tx
        symbols = tx.reshape(tx.shape[0], -1, REALS_PER_SYMBOL)  # N, symbols, (re, im)
        std = math.sqrt(10.0 ** (-snr_db / 10.0) / REALS_PER_SYMBOL)
        if generator is None:
            noise = torch.randn(symbols.shape, dtype=tx.dtype, device=tx.device)
        else:
            noise = torch.randn(symbols.shape, dtype=tx.dtype, device=generator.device,
                                generator=generator).to(tx.device)
        return (symbols + std * noise).reshape(tx.shape)


# --------------------------------------------------------------------------------------
# optional quantisation + entropy model (rate term)
# --------------------------------------------------------------------------------------
class GaussianRate(nn.Module):
    """Quantisation with a factorised zero-mean Gaussian entropy model (learnt scale per
    latent channel), as DHF-JSCC's conditional entropy bottleneck without the hyperprior.

    Training: ``y + U(-0.5, 0.5)`` (differentiable proxy of rounding); eval: ``round(y)``.
    Returns the quantised latent and its total information content in bits.
    """

    SCALE_MIN = 0.11      # DHF-JSCC's lower bound on the Gaussian scale
    LIKELIHOOD_MIN = 1e-9

    def __init__(self, channels: int):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(channels))

    def forward(self, y: torch.Tensor):
        y_hat = y + (torch.rand_like(y) - 0.5) if self.training else torch.round(y)
        scale = self.log_scale.exp().clamp_min(self.SCALE_MIN).view(-1, 1, 1)
        mag = y_hat.abs()  # the density is symmetric: use the tail on the left, more precise
        cdf = lambda v: 0.5 * torch.erfc(-v / math.sqrt(2.0))  # noqa: E731
        likelihood = (cdf((0.5 - mag) / scale) - cdf((-0.5 - mag) / scale)).clamp_min(self.LIKELIHOOD_MIN)
        return y_hat, -torch.log2(likelihood).sum()


# --------------------------------------------------------------------------------------
# building blocks; every tensor inside is T, N, C, H, W (T = 1 for the CNN)
# --------------------------------------------------------------------------------------
class ChannelNorm(nn.Module):
    """LayerNorm over the channel axis at every pixel (DHF-JSCC's LayerNorm2d), for
    ``..., C, H, W`` tensors. No batch statistics: train and eval behave alike and the
    small T*N batches of an SNN do not matter."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(-3, keepdim=True)
        var = (x - mu).pow(2).mean(-3, keepdim=True)
        return (x - mu) * torch.rsqrt(var + self.eps) * self.weight.view(-1, 1, 1) + self.bias.view(-1, 1, 1)


class NormActConv(nn.Module):
    """Pre-activation unit: channel norm -> neuron -> conv (over every time step).

    In the SNN the norm sets the neuron's input to unit scale at any depth (neither dead
    nor saturated layers) and the conv only ever sees spikes.
    """

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, make_act: Callable[[], nn.Module],
                 transpose: bool = False):
        super().__init__()
        self.norm = ChannelNorm(cin)
        self.act = make_act()
        if transpose:  # exact x2 up-sampling: (h - 1) * 2 - 2 * (k // 2) + k + 1 = 2 h for odd k
            conv = nn.ConvTranspose2d(cin, cout, kernel, stride, kernel // 2, output_padding=stride - 1)
        else:
            conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2)
        self.conv = layer.SeqToANNContainer(conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.act(self.norm(x)))


class ResBlock(nn.Module):
    """``x + unit(unit(x))``: the stream ``x`` stays real valued (membrane shortcut)."""

    def __init__(self, channels: int, make_act: Callable[[], nn.Module]):
        super().__init__()
        self.body = nn.Sequential(NormActConv(channels, channels, 3, 1, make_act),
                                  NormActConv(channels, channels, 3, 1, make_act))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class StereoFusion(nn.Module):
    """Cross-view fusion (DHF-JSCC's stereo cross-attention module, SCAM).

    Stereo disparity is horizontal, so for every image row each left pixel attends over
    the same row of the right view and vice versa, with one attention matrix
    ``Q_l Q_r^T / sqrt(C)`` (softmax along its rows for right->left, along its columns
    for left->right). The exchanged features are added with per-channel gains that start
    at 0 (each view alone at initialisation). Queries and values are 1x1 convs of the
    neurons' outputs (spikes in the SNN); the softmax and the products are real valued.
    """

    def __init__(self, channels: int, make_act: Callable[[], nn.Module]):
        super().__init__()
        self.norm_l, self.norm_r = ChannelNorm(channels), ChannelNorm(channels)
        self.act_l, self.act_r = make_act(), make_act()
        self.query_l = layer.SeqToANNContainer(nn.Conv2d(channels, channels, 1))
        self.query_r = layer.SeqToANNContainer(nn.Conv2d(channels, channels, 1))
        self.value_l = layer.SeqToANNContainer(nn.Conv2d(channels, channels, 1))
        self.value_r = layer.SeqToANNContainer(nn.Conv2d(channels, channels, 1))
        self.beta = nn.Parameter(torch.zeros(channels, 1, 1))   # right -> left gain
        self.gamma = nn.Parameter(torch.zeros(channels, 1, 1))  # left -> right gain
        self.scale = channels ** -0.5

    def forward(self, x_l: torch.Tensor, x_r: torch.Tensor):
        s_l, s_r = self.act_l(self.norm_l(x_l)), self.act_r(self.norm_r(x_r))
        rows = lambda t: t.flatten(0, 1).permute(0, 2, 3, 1)  # noqa: E731  (T*N, H, W, C)
        q_l, q_r = rows(self.query_l(s_l)), rows(self.query_r(s_r))
        v_l, v_r = rows(self.value_l(s_l)), rows(self.value_r(s_r))
        attn = torch.matmul(q_l, q_r.transpose(-1, -2)) * self.scale  # T*N, H, W_left, W_right
        r2l = torch.matmul(torch.softmax(attn, dim=-1), v_r)
        l2r = torch.matmul(torch.softmax(attn.transpose(-1, -2), dim=-1), v_l)
        back = lambda t: t.permute(0, 3, 1, 2).reshape(x_l.shape)  # noqa: E731
        return x_l + self.beta * back(r2l), x_r + self.gamma * back(l2r)


def _over_time(x: torch.Tensor, time_steps: int) -> torch.Tensor:
    """Direct (analog) encoding: the same real-valued input at every time step."""
    return x.unsqueeze(0).expand(time_steps, *x.shape)


class Encoder(nn.Module):
    """One view: 5x5 stride-2 stem on the analog image, a residual block per scale, two
    more 5x5 stride-2 units (1/8 scale), a 3x3 unit to the latent; time-averaged."""

    def __init__(self, width: int, latent_channels: int, blocks: int, make_act: Callable[[], nn.Module]):
        super().__init__()
        self.stem = nn.Conv2d(SOURCE_CHANNELS, width, 5, 2, 2)
        body = []
        for scale in range(NUM_DOWN):
            body += [ResBlock(width, make_act) for _ in range(blocks)]
            if scale < NUM_DOWN - 1:
                body.append(NormActConv(width, width, 5, 2, make_act))
        self.body = nn.Sequential(*body)
        self.head = NormActConv(width, latent_channels, 3, 1, make_act)

    def forward(self, image: torch.Tensor, time_steps: int) -> torch.Tensor:
        x = _over_time(self.stem(image), time_steps)  # the stem's output is the same at every step: run it once
        # Channel symbols: the time average of a conv over spikes, i.e. real values, one
        # set per image (sending every step's binary map would cost T times the bandwidth).
        return self.head(self.body(x)).mean(0)


class Decoder(nn.Module):
    """Both views: 3x3 stem per view on the received symbols, then per scale (1/8, 1/4,
    1/2) a residual block per view, the cross-view fusion and a x2 transposed conv; the
    image is read out from the time-averaged real-valued stream (norm, 3x3 conv, sigmoid)."""

    def __init__(self, width: int, latent_channels: int, blocks: int, make_act: Callable[[], nn.Module]):
        super().__init__()
        self.stem_l = nn.Conv2d(latent_channels, width, 3, 1, 1)
        self.stem_r = nn.Conv2d(latent_channels, width, 3, 1, 1)
        self.stages_l = nn.ModuleList(nn.Sequential(*[ResBlock(width, make_act) for _ in range(blocks)])
                                      for _ in range(NUM_DOWN))
        self.stages_r = nn.ModuleList(nn.Sequential(*[ResBlock(width, make_act) for _ in range(blocks)])
                                      for _ in range(NUM_DOWN))
        self.fusions = nn.ModuleList(StereoFusion(width, make_act) for _ in range(NUM_DOWN))
        self.ups_l = nn.ModuleList(NormActConv(width, width, 5, 2, make_act, transpose=True) for _ in range(NUM_DOWN))
        self.ups_r = nn.ModuleList(NormActConv(width, width, 5, 2, make_act, transpose=True) for _ in range(NUM_DOWN))
        self.head_norm_l, self.head_norm_r = ChannelNorm(width), ChannelNorm(width)
        self.head_l = nn.Conv2d(width, SOURCE_CHANNELS, 3, 1, 1)
        self.head_r = nn.Conv2d(width, SOURCE_CHANNELS, 3, 1, 1)

    def forward(self, y_l: torch.Tensor, y_r: torch.Tensor, time_steps: int):
        x_l = _over_time(self.stem_l(y_l), time_steps)
        x_r = _over_time(self.stem_r(y_r), time_steps)
        for i in range(NUM_DOWN):
            x_l, x_r = self.fusions[i](self.stages_l[i](x_l), self.stages_r[i](x_r))
            x_l, x_r = self.ups_l[i](x_l), self.ups_r[i](x_r)
        # Non-spiking read-out of the time-averaged stream: a spiking output layer would
        # give only T + 1 levels per pixel.
        out_l = torch.sigmoid(self.head_l(self.head_norm_l(x_l.mean(0))))
        out_r = torch.sigmoid(self.head_r(self.head_norm_r(x_r.mean(0))))
        return out_l, out_r


# --------------------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------------------
def latent_channels_for(bandwidth_ratio: float) -> int:
    """Latent channels that give ``bandwidth_ratio`` (complex symbols per source value)."""
    k = float(bandwidth_ratio) / RATIO_PER_LATENT_CHANNEL
    k_int = int(round(k))
    if not (k_int >= 2 and k_int % 2 == 0 and abs(k - k_int) < 1e-6 * max(1.0, k)):
        raise ValueError(
            f"bandwidth_ratio={bandwidth_ratio!r} cannot be built: it must be k/384 with k an even integer "
            f">= 2 (k latent channels at 1/8 scale, two reals per complex symbol), e.g. 1/6, 1/12, 1/24, 1/48; "
            f"it gives k={k:.4g}")
    return k_int


class DHFJSCC(nn.Module):
    """Stereo deep JSCC. ``neuron='relu'`` is the CNN, ``neuron='lif'`` the SNN.

    Arguments: ``width`` feature channels; ``blocks`` residual blocks per scale;
    ``bandwidth_ratio`` complex channel symbols per source value (k/384, k even);
    ``snr_db`` channel SNR (an attribute, settable; ``forward(..., snr_db=)`` overrides it
    for one call); ``time_steps`` T; ``tau``, ``surrogate``, ``backend`` of the LIF
    neurons; ``entropy`` adds quantisation and the rate term; ``noise_seed``: when set, an
    eval-mode forward without a ``generator`` draws its noise from a generator freshly
    seeded with it (reproducible evaluation; training keeps fresh noise);
    ``neuron_input_gain``: initial gain of the norms in front of the neurons (default 2
    for LIF, 1 for ReLU).
    """

    def __init__(self, neuron: str = "relu", width: int = 64, blocks: int = 1, bandwidth_ratio: float = 1 / 6,
                 snr_db: float = 10.0, time_steps: int = 1, tau: float = 2.0, surrogate: str = "atan",
                 backend: str = "auto", entropy: bool = False, noise_seed: Optional[int] = None,
                 neuron_input_gain: Optional[float] = None):
        super().__init__()
        if neuron not in NEURONS:
            raise ValueError(f"neuron={neuron!r} is unknown; choose one of {NEURONS}")
        if int(time_steps) < 1:
            raise ValueError(f"time_steps must be >= 1, got {time_steps}")
        if int(width) < 1 or int(blocks) < 0:
            raise ValueError(f"width must be >= 1 and blocks >= 0, got width={width}, blocks={blocks}")
        latent = latent_channels_for(bandwidth_ratio)
        if neuron == "lif":
            make_act = lambda: LIF(tau=tau, surrogate_function=surrogate, backend=backend)  # noqa: E731
        else:
            make_act = nn.ReLU
        self.time_steps = int(time_steps)
        self.snr_db = snr_db
        self.noise_seed = noise_seed
        self.encoder_l = Encoder(width, latent, blocks, make_act)
        self.encoder_r = Encoder(width, latent, blocks, make_act)
        self.rate_model = GaussianRate(latent) if entropy else None
        self.channel = AWGNChannel()
        self.decoder = Decoder(width, latent, blocks, make_act)
        if neuron_input_gain is None:
            neuron_input_gain = 2.0 if neuron == "lif" else 1.0
        self._init_neuron_input_gain(float(neuron_input_gain))

    def _init_neuron_input_gain(self, gain: float) -> None:
        # A LIF (threshold 1, input divided by tau = 2) fed unit-scale inputs fires ~4% of
        # the time; starting the norms in front of the neurons at gain 2 gives ~18%, and
        # the SNN learns faster (docs/JSCC.md). ReLU is scale-free: gain 1 for the CNN.
        for m in self.modules():
            norms = ((m.norm,) if isinstance(m, NormActConv) else
                     (m.norm_l, m.norm_r) if isinstance(m, StereoFusion) else ())
            for norm in norms:
                nn.init.constant_(norm.weight, gain)

    # -- configuration reported by the model ----------------------------------------
    @property
    def snr_db(self) -> float:
        return self._snr_db

    @snr_db.setter
    def snr_db(self, value: float) -> None:
        self._snr_db = _check_snr(value)

    @property
    def latent_channels(self) -> int:
        return self.encoder_l.head.conv[0].out_channels

    @property
    def bandwidth_ratio(self) -> float:
        """Complex channel symbols per source value (3 H W per image), from the layers."""
        return self.latent_channels * RATIO_PER_LATENT_CHANNEL

    def symbols_per_image(self, height: int, width: int) -> int:
        """Complex channel symbols sent for one H x W image (after padding to a multiple of 8)."""
        return self.latent_channels * math.ceil(height / FACTOR) * math.ceil(width / FACTOR) // REALS_PER_SYMBOL

    def extra_repr(self) -> str:
        return (f"bandwidth_ratio={self.bandwidth_ratio:.5g} (1/{1 / self.bandwidth_ratio:.4g}), "
                f"snr_db={self.snr_db}, time_steps={self.time_steps}, entropy={self.rate_model is not None}")

    # -- forward --------------------------------------------------------------------
    def forward(self, pair: torch.Tensor, snr_db: Optional[float] = None,
                generator: Optional[torch.Generator] = None) -> Dict[str, Optional[torch.Tensor]]:
        _check_pair(pair)
        n, _, _, h, w = pair.shape
        snr = self.snr_db if snr_db is None else _check_snr(snr_db)
        if generator is None and self.noise_seed is not None and not self.training:
            generator = torch.Generator().manual_seed(int(self.noise_seed))
        views = pad_to_multiple(pair, FACTOR, mode="replicate")
        T = self.time_steps
        try:
            y_l = self.encoder_l(views[:, 0], T)
            y_r = self.encoder_r(views[:, 1], T)
            rate = None
            if self.rate_model is not None:
                y_l, bits_l = self.rate_model(y_l)
                y_r, bits_r = self.rate_model(y_r)
                rate = (bits_l + bits_r) / (n * 2 * h * w)  # bits per source pixel
            out_l, out_r = self.decoder(self.channel(y_l, snr, generator), self.channel(y_r, snr, generator), T)
        finally:
            functional.reset_net(self)  # membrane state must not leak into the next forward
        recon = torch.stack([out_l, out_r], dim=1)[..., :h, :w]
        return {"recon": recon, "rate": rate}


def _check_snr(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"snr_db must be a number in dB (float('inf') for a noiseless channel), got {value!r}") from None
    if math.isnan(v) or v == -math.inf:
        raise ValueError(f"snr_db must be a finite number of dB or +inf (noiseless), got {value!r}")
    return v


def _check_pair(pair) -> None:
    if not isinstance(pair, torch.Tensor) or pair.dim() != 5 or pair.shape[1] != 2 or pair.shape[2] != 3:
        shape = tuple(pair.shape) if isinstance(pair, torch.Tensor) else type(pair).__name__
        raise ValueError(f"DHF-JSCC expects a stereo pair tensor N x 2 x 3 x H x W (left, right), got {shape}; "
                         f"build it with torch.stack([left, right], dim=1) from two N x 3 x H x W images")
    if not pair.is_floating_point():
        raise TypeError(f"DHF-JSCC expects a float image pair in [0, 1], got dtype {pair.dtype}; "
                        f"convert with pair.float() / 255")


# --------------------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------------------
@MODELS.register("dhf_jscc_cnn")
def dhf_jscc_cnn(**kwargs) -> DHFJSCC:
    """The CNN: ReLU activations, one pass (T = 1)."""
    kwargs.setdefault("time_steps", 1)
    return DHFJSCC(neuron="relu", **kwargs)


@MODELS.register("dhf_jscc_snn")
def dhf_jscc_snn(**kwargs) -> DHFJSCC:
    """The SNN: multi-step LIF (tau 2, ATan surrogate) over T = 4 steps by default."""
    kwargs.setdefault("time_steps", 4)
    return DHFJSCC(neuron="lif", **kwargs)


@MODELS.register("dhf_jscc_snn_ann")
def dhf_jscc_snn_ann(activation=nn.ReLU, **kwargs) -> DHFJSCC:
    """ANN twin of ``dhf_jscc_snn``: every LIF replaced by ``activation``, weights kept.

    Without neuron state every time step computes the same thing, so the twin runs one
    step (same output as T steps, T times cheaper); set ``twin.time_steps`` to change it.
    """
    twin = to_ann(dhf_jscc_snn(**kwargs), activation=activation, copy_model=False)
    twin.time_steps = 1
    return twin
