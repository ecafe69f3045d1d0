"""The authors' DHF-JSCC network, checkpoint-compatible, and the seed's SNN conversion of it.

``Image_coding(M=256, N2=25)`` of SunnyYoshimitsu/DHF-JSCC (``model_d_fusion2.py``, the
model its ``main22.py`` trains), rewritten with the same parameter names and shapes: 64
tensors, 21,380,152 parameters. Registered as

* ``dhf_jscc_authors``: the CNN (ReLU). ``load_official("dhf_jscc", path)`` loads the
  authors' ``{'model_state_dict': ..., 'optimizer_state_dict': ...}`` files (``main22.py``),
  with or without ``module.`` (``DataParallel``), strictly;
* ``dhf_jscc_authors_snn``: the DHF-JSCC-SNN seed's conversion as its README describes it,
  every activation replaced by a multi-step LIF (tau 2.0, ATan surrogate, T = 4 by default;
  the seed also tried 8), the rest unchanged, same parameter names (a CNN checkpoint loads
  strictly);
* ``dhf_jscc_authors_snn_ann``: the SNN's ANN twin (``restoration.spiking.to_ann``).

The network, per view (facts from the authors' code)::

    encoder_l/_r: conv1 5x5/2 (3->256) ReLU, conv2 5x5/2 ReLU, conv3 5x5/2 ReLU  (1/8 scale)
                  conv4: Conv1d k3 (256->25) over the H*W pixels flattened row by row
    channel:      AWGN, SNR 5 dB in their code (Channel(5))
    decoder:      per view conv1 5x5/2 transposed (25->256) ReLU, conv2, conv3 (x2 each)
                  conv4: Conv1d k3 (256->3) over the flattened pixels, no output activation

Their activations are ``nn.ReLU`` modules named ``gdn*`` (the GDN layers are commented
out), so they hold no parameters. ``conv3p`` (encoders and decoder), ``conv3pr`` and the
stereo ``fusion1``/``fusion2`` (cross-attention: ``Wq, Wv, Wk, Wo``, two LayerNorms, two
Conv1d) are built and saved by their code but not used in its forward: they are here with
the same names and shapes so that their files load strictly, and unused here too. The
decoders of the two views do not exchange anything: the authors' model is two separate
JSCC links. The Conv1d heads run along the flattened pixel sequence, so the last pixel of
a row and the first of the next are neighbours (kept exactly: the weights depend on it).

Differences from the authors' code, each deliberate:

* **Interface**: ``model(pair)`` takes the toolkit's stereo pair ``N x 2 x 3 x H x W`` in
  [0, 1] and returns ``{'recon': N x 2 x 3 x H x W, 'rate': None}`` (their ``forward(x_l,
  x_r)`` returns two tensors). Sizes that are not a multiple of 8 are padded (replicate)
  and the output cropped back, as ``dhf_jscc_cnn`` does; their code only sees 128 x 128.
* **Output range**: their decoder ends on a linear Conv1d and their loss and PSNR use the
  raw output. Here training returns the raw output (their gradient), evaluation clamps it
  to [0, 1] (the toolkit's image range; clamping never increases the error to a [0, 1]
  target).
* **Channel** (``channel=``): ``'awgn'`` (default) is the toolkit's
  :class:`~restoration.models.dhf_jscc.AWGNChannel` (per-image power normalisation, the
  receiver gets the normalised symbols); ``'authors'`` is their ``Channel``: power
  averaged over the whole batch and over the non-zero reals only, and the received symbols
  multiplied back by the transmit power (which a real receiver does not know). Weights
  trained with one channel expect its output scale: evaluate the authors' checkpoints with
  ``channel='authors'``. Both add noise in training and evaluation, like theirs, and take
  ``snr_db`` (theirs: 5 dB fixed), a ``generator`` and ``noise_seed`` like ``dhf_jscc_cnn``.
* Loss and optimiser live in the recipes (configs/stereo_jscc/dhf_jscc_authors*.yaml):
  theirs is ``255^2 * (MSE(left) + MSE(right))`` with Adam (amsgrad); the toolkit's MSE is
  the mean over both views, a constant factor that Adam ignores.

The SNN (``neuron='lif'``), where the seed's source is not public, follows its README
(``layer.Conv2d``/``layer.ConvTranspose2d`` + ``neuron.LIFNode``, tau 2, ATan, T 4 or 8);
the choices it does not state are the plain ones, documented here:

* input: direct encoding, the analog image enters conv1 at every step (SpikingJelly's
  usual ``x.repeat(T, ...)``; conv1's output is computed once);
* convs run on all T steps folded into the batch (what ``layer.Conv2d`` in multi-step mode
  does); plain ``nn.Conv*`` modules keep the authors' parameter names;
* channel symbols: the time average of the encoder's conv4 (real values, one set per
  image, bandwidth independent of T); the decoder gets the received symbols at every step;
* output: the time average of the decoder's conv4 over spikes (no spiking output layer).
"""
from __future__ import annotations

import math
from typing import Callable, Dict, Optional

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional

from ..registry import MODELS
from ..spiking import LIF, to_ann
from ._layers import pad_to_multiple
from .dhf_jscc import AWGNChannel, _check_pair, _check_snr

M1 = 256          # feature channels (their Image_coding(M=256): the decoder's width is M)
N2 = 25           # latent channels per view (their N2)
FACTOR = 8        # three stride-2 stages
CHANNELS = ("awgn", "authors")
NEURONS = ("relu", "lif")


def _steps(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A 2-d (transposed) conv on every time step: ``T, N, C, H, W`` folded into the batch."""
    return conv(x.flatten(0, 1)).unflatten(0, x.shape[:2])


def _pixel_line(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """The authors' Conv1d over the pixels flattened row by row (``T, N, C, H, W``)."""
    t, n, c, h, w = x.shape
    y = conv(x.reshape(t * n, c, h * w))
    return y.reshape(t, n, y.shape[1], h, w)


def _down(cin: int, cout: int) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=5, stride=2, padding=2)


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, kernel_size=5, stride=2, padding=2, output_padding=1)


class Encoder(nn.Module):
    """The authors' ``Enc_l`` / ``Enc_r`` (same names; ``gdn*`` are the activations)."""

    def __init__(self, make_act: Callable[[], nn.Module], in_channels: int = 3, width: int = M1,
                 latent: int = N2):
        super().__init__()
        self.conv1, self.gdn1 = _down(in_channels, width), make_act()
        self.conv2, self.gdn2 = _down(width, width), make_act()
        self.conv3, self.gdn3 = _down(width, width), make_act()
        self.conv3p, self.gdn3p = _down(width, width), make_act()  # built, unused (as theirs)
        self.conv4 = nn.Conv1d(width, latent, kernel_size=3, stride=1, padding=1)

    def forward(self, image: torch.Tensor, time_steps: int) -> torch.Tensor:
        x = self.conv1(image).unsqueeze(0)  # the same analog input at every step: run conv1 once
        x = self.gdn1(x.expand(time_steps, *x.shape[1:]))
        x = self.gdn2(_steps(self.conv2, x))
        x = self.gdn3(_steps(self.conv3, x))
        return _pixel_line(self.conv4, x).mean(0)  # real channel symbols, one set per image


class Fusion(nn.Module):
    """Parameters of the authors' stereo cross-attention ``Fusion`` (unused in their forward
    and here; kept so that their checkpoints load strictly). Their initialisation:
    Kaiming normal (a = sqrt(5)) for the four matrices, PyTorch defaults for the rest."""

    def __init__(self, channels: int = M1, dim: int = 256):
        super().__init__()
        self.Wq = nn.Parameter(torch.zeros(dim, dim))
        self.Wv = nn.Parameter(torch.zeros(dim, dim))
        self.Wk = nn.Parameter(torch.zeros(dim, dim))
        self.Wo = nn.Parameter(torch.zeros(dim, dim))
        for w in (self.Wq, self.Wv, self.Wk, self.Wo):
            nn.init.kaiming_normal_(w, a=math.sqrt(5))
        self.ln1 = nn.LayerNorm(dim)
        self.ln2 = nn.LayerNorm(dim)
        self.conv1r = nn.Conv1d(channels, dim, kernel_size=3, stride=1, padding=1)
        self.conv1l = nn.Conv1d(channels, dim, kernel_size=3, stride=1, padding=1)


class Decoder(nn.Module):
    """The authors' ``Dec``: a separate decoder per view (``*r`` modules for the right)."""

    def __init__(self, make_act: Callable[[], nn.Module], latent: int = N2, width: int = M1, out_channels: int = 3):
        super().__init__()
        self.conv1, self.gdn1 = _up(latent, width), make_act()
        self.conv2, self.gdn2 = _up(width, width), make_act()
        self.conv3, self.gdn3 = _up(width, width), make_act()
        self.conv3p, self.gdn3p = _up(width, width), make_act()  # built, unused (as theirs)
        self.conv4 = nn.Conv1d(width, out_channels, kernel_size=3, stride=1, padding=1)
        self.conv1r, self.gdn1r = _up(latent, width), make_act()
        self.conv2r, self.gdn2r = _up(width, width), make_act()
        self.conv3r, self.gdn3r = _up(width, width), make_act()
        self.conv3pr, self.gdn3pr = _up(width, width), make_act()  # built, unused
        self.conv4r = nn.Conv1d(width, out_channels, kernel_size=3, stride=1, padding=1)
        self.fusion1 = Fusion(width)  # built, unused (their fusion calls are commented out)
        self.fusion2 = Fusion(width)

    def _view(self, y: torch.Tensor, time_steps: int, suffix: str) -> torch.Tensor:
        m = lambda name: getattr(self, name + suffix)  # noqa: E731
        x = m("conv1")(y).unsqueeze(0)  # the same received symbols at every step
        x = m("gdn1")(x.expand(time_steps, *x.shape[1:]))
        x = m("gdn2")(_steps(m("conv2"), x))
        x = m("gdn3")(_steps(m("conv3"), x))
        return _pixel_line(m("conv4"), x).mean(0)

    def forward(self, y_l: torch.Tensor, y_r: torch.Tensor, time_steps: int):
        return self._view(y_l, time_steps, ""), self._view(y_r, time_steps, "r")


def authors_channel(y: torch.Tensor, snr_db: float, generator: Optional[torch.Generator] = None,
                    eps: float = 1e-12) -> torch.Tensor:
    """The authors' ``Channel.forward`` (AWGN): one average power for the whole batch over
    the non-zero reals, ``tx = y / sqrt(2 P)``, complex noise of std ``sqrt(1 / (2 snr))``
    per real, and the received symbols multiplied back by ``sqrt(2 P)``."""
    nonzero = (y != 0).sum().clamp_min(1)
    scale = (y.pow(2).sum() / nonzero * 2).clamp_min(eps).sqrt()
    tx = y / scale
    if math.isinf(snr_db) and snr_db > 0:
        return tx * scale
    std = math.sqrt(1.0 / (2 * 10 ** (snr_db / 10)))
    if generator is None:
        noise = torch.randn(tx.shape, dtype=tx.dtype, device=tx.device)
    else:
        noise = torch.randn(tx.shape, dtype=tx.dtype, device=generator.device, generator=generator).to(tx.device)
    return (tx + std * noise) * scale


class DHFJSCCAuthors(nn.Module):
    """The authors' ``Image_coding(M=256, N2=25)``; ``neuron='lif'`` is the seed's SNN.

    ``snr_db`` (their 5 dB; settable; ``forward(..., snr_db=)`` for one call),
    ``channel`` ``'awgn'`` (toolkit) or ``'authors'``, ``time_steps`` T (1 for the CNN),
    ``tau`` / ``surrogate`` / ``backend`` of the LIFs, ``noise_seed`` as ``dhf_jscc_cnn``.
    """

    def __init__(self, neuron: str = "relu", snr_db: float = 5.0, channel: str = "awgn", time_steps: int = 1,
                 tau: float = 2.0, surrogate: str = "atan", backend: str = "auto",
                 noise_seed: Optional[int] = None):
        super().__init__()
        if neuron not in NEURONS:
            raise ValueError(f"neuron={neuron!r} is unknown; choose one of {NEURONS}")
        if channel not in CHANNELS:
            raise ValueError(f"channel={channel!r} is unknown; choose 'awgn' (the toolkit's) or 'authors' "
                             f"(DHF-JSCC's channel.py)")
        if int(time_steps) < 1:
            raise ValueError(f"time_steps must be >= 1, got {time_steps}")
        if neuron == "lif":
            make_act = lambda: LIF(tau=tau, surrogate_function=surrogate, backend=backend)  # noqa: E731
        else:
            make_act = nn.ReLU
        self.time_steps = int(time_steps)
        self.snr_db = snr_db
        self.channel_kind = channel
        self.noise_seed = noise_seed
        self.encoder_l = Encoder(make_act)
        self.encoder_r = Encoder(make_act)
        self.decoder = Decoder(make_act)
        self.awgn = AWGNChannel()  # no parameters: the state dict stays the authors'

    @property
    def snr_db(self) -> float:
        return self._snr_db

    @snr_db.setter
    def snr_db(self, value: float) -> None:
        self._snr_db = _check_snr(value)

    @property
    def bandwidth_ratio(self) -> float:
        """Complex channel symbols per source value: 25 / 384 (about 1/15)."""
        return N2 / (2 * 3 * FACTOR * FACTOR)

    def symbols_per_image(self, height: int, width: int) -> int:
        """Complex channel symbols sent for one H x W image (after padding to a multiple of 8)."""
        return N2 * math.ceil(height / FACTOR) * math.ceil(width / FACTOR) // 2

    def extra_repr(self) -> str:
        return f"channel={self.channel_kind!r}, snr_db={self.snr_db}, time_steps={self.time_steps}"

    def _channel(self, y, snr, generator):
        if self.channel_kind == "authors":
            return authors_channel(y, snr, generator)
        return self.awgn(y, snr, generator)

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
            out_l, out_r = self.decoder(self._channel(y_l, snr, generator), self._channel(y_r, snr, generator), T)
        finally:
            functional.reset_net(self)  # membrane state must not leak into the next forward
        recon = torch.stack([out_l, out_r], dim=1)[..., :h, :w]
        if not self.training:
            recon = recon.clamp(0, 1)  # the toolkit's image range; training keeps their raw output
        return {"recon": recon, "rate": None}


@MODELS.register("dhf_jscc_authors")
def dhf_jscc_authors(**kwargs) -> DHFJSCCAuthors:
    """The authors' CNN (``Image_coding(M=256, N2=25)``), ReLU, one pass."""
    kwargs.setdefault("time_steps", 1)
    return DHFJSCCAuthors(neuron="relu", **kwargs)


@MODELS.register("dhf_jscc_authors_snn")
def dhf_jscc_authors_snn(**kwargs) -> DHFJSCCAuthors:
    """The seed's SNN: every ReLU a multi-step LIF (tau 2, ATan), T = 4 by default."""
    kwargs.setdefault("time_steps", 4)
    return DHFJSCCAuthors(neuron="lif", **kwargs)


@MODELS.register("dhf_jscc_authors_snn_ann")
def dhf_jscc_authors_snn_ann(activation=nn.ReLU, **kwargs) -> DHFJSCCAuthors:
    """ANN twin of ``dhf_jscc_authors_snn``: every LIF replaced by ``activation``.

    Without neuron state every step computes the same thing, so the twin runs one step
    (same output as T steps); set ``twin.time_steps`` to change it.
    """
    twin = to_ann(dhf_jscc_authors_snn(**kwargs), activation=activation, copy_model=False)
    twin.time_steps = 1
    return twin
