"""Quick evidence run for DHF-JSCC: does the model learn real images over a noisy channel?

A minimal standalone training loop (plain torch, Adam, no engine) on 64x64 crops of the
photos bundled with scikit-image, made into pseudo-stereo pairs by shifting the right
crop a few pixels; evaluation on fixed crops of a real stereo pair
(``skimage.data.stereo_motorcycle``, never trained on) over the AWGN channel with a
fixed noise seed. Prints PSNR over wall time for each model and a summary table.

Models: ``cnn`` (dhf_jscc_cnn), ``snn`` (dhf_jscc_snn), ``twin`` (dhf_jscc_snn_ann) and
``naive``: a straight conversion of the seed's CNN (DHF-JSCC model_d_fusion2: strided
convs, every ReLU replaced by a LIF, no normalisation, Bernoulli rate-coded input, the
image read out as the firing rate of a final spiking layer), to reproduce the seed's
failure.

    python -m restoration.benchmark.jscc_probe --models cnn,snn,naive --seconds 240

CPU only, one thread by default (the machine is shared). Numbers go to docs/JSCC.md. A research
probe, not part of the product: its loop is plain torch on purpose (no engine, no recipe),
so that what it shows does not depend on the trainer.
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import layer

from .. import metrics
from ..atomic import write_text
from ..models.dhf_jscc import AWGNChannel, dhf_jscc_cnn, dhf_jscc_snn, dhf_jscc_snn_ann
from ..runtime import set_threads
from ..spiking import LIF, FiringRateMonitor, reset_state

TRAIN_IMAGES = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry")


# ---------------------------------------------------------------------------- data
def load_train_images():
    from skimage import data
    return [torch.from_numpy(np.ascontiguousarray(getattr(data, n)())).permute(2, 0, 1).float() / 255
            for n in TRAIN_IMAGES]


def pseudo_stereo_batch(images, batch, crop, max_shift, rng: np.random.Generator):
    """Left = crop at (y, x + d), right = crop at (y, x): a horizontal disparity d."""
    pairs = []
    for _ in range(batch):
        img = images[rng.integers(len(images))]
        _, h, w = img.shape
        d = int(rng.integers(1, max_shift + 1))
        y = int(rng.integers(0, h - crop + 1))
        x = int(rng.integers(0, w - crop - d + 1))
        pair = torch.stack([img[:, y:y + crop, x + d:x + d + crop], img[:, y:y + crop, x:x + crop]])
        if rng.random() < 0.5:  # a vertical flip keeps the geometry of a stereo pair
            pair = pair.flip(-2)
        pairs.append(pair)
    return torch.stack(pairs)


def motorcycle_eval_set(n, crop, seed=123):
    """Fixed crops at the same place in the two views of a real stereo pair (Middlebury)."""
    from skimage import data
    left, right, _ = data.stereo_motorcycle()
    left = torch.from_numpy(np.ascontiguousarray(left)).permute(2, 0, 1).float() / 255
    right = torch.from_numpy(np.ascontiguousarray(right)).permute(2, 0, 1).float() / 255
    rng = np.random.default_rng(seed)
    _, h, w = left.shape
    out = []
    for _ in range(n):
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        out.append(torch.stack([left[:, y:y + crop, x:x + crop], right[:, y:y + crop, x:x + crop]]))
    return torch.stack(out)


def psnr(x, y) -> float:
    """Mean PSNR (dB) of the images of ``x`` (clamped to [0, 1]) against ``y``."""
    return metrics.psnr(x.clamp(0, 1), y).mean().item()


# ------------------------------------------------------------------ the seed-like SNN
class NaiveSNN(nn.Module):
    """A straight conversion of the seed CNN (no norm, LIF for every ReLU, spiking output)."""

    def __init__(self, width=32, latent=64, time_steps=4, snr_db=10.0, tau=2.0):
        super().__init__()
        self.time_steps, self.snr_db = time_steps, snr_db

        def enc():
            mods = []
            cin = 3
            for _ in range(3):
                mods += [layer.SeqToANNContainer(nn.Conv2d(cin, width, 5, 2, 2)), LIF(tau=tau)]
                cin = width
            return nn.Sequential(*mods, layer.SeqToANNContainer(nn.Conv2d(width, latent, 3, 1, 1)))

        def dec():
            mods = []
            cin = latent
            for _ in range(3):
                mods += [layer.SeqToANNContainer(nn.ConvTranspose2d(cin, width, 5, 2, 2, output_padding=1)),
                         LIF(tau=tau)]
                cin = width
            return nn.Sequential(*mods, layer.SeqToANNContainer(nn.Conv2d(width, 3, 3, 1, 1)), LIF(tau=tau))

        self.enc_l, self.enc_r, self.dec_l, self.dec_r = enc(), enc(), dec(), dec()
        self.channel = AWGNChannel()

    def forward(self, pair, snr_db=None, generator=None):
        T = self.time_steps
        snr = self.snr_db if snr_db is None else snr_db
        try:
            outs = []
            for v, (enc, dec) in enumerate(((self.enc_l, self.dec_l), (self.enc_r, self.dec_r))):
                img = pair[:, v]
                spikes_in = (torch.rand((T,) + img.shape, device=img.device) < img).float()  # rate coding
                y = enc(spikes_in).mean(0)
                rx = self.channel(y, snr, generator)
                outs.append(dec(rx.unsqueeze(0).expand(T, *rx.shape)).mean(0))  # firing rate = pixel
        finally:
            reset_state(self)
        return {"recon": torch.stack(outs, 1), "rate": None}


# --------------------------------------------------------------------------- probe
def build(name, args):
    common = dict(width=args.width, snr_db=args.snr)
    if name == "cnn":
        return dhf_jscc_cnn(**common)
    if name == "snn":
        return dhf_jscc_snn(time_steps=args.time_steps, **common)
    if name == "twin":
        return dhf_jscc_snn_ann(time_steps=args.time_steps, **common)
    if name == "naive":
        return NaiveSNN(width=args.width, latent=64, time_steps=args.time_steps, snr_db=args.snr, tau=args.naive_tau)
    raise SystemExit(f"unknown model {name!r}; choose from cnn, snn, twin, naive")


@torch.no_grad()
def evaluate(model, eval_pairs, snr, seed=0):
    model.eval()
    g = torch.Generator().manual_seed(seed)
    recon = torch.cat([model(eval_pairs[i:i + 8], snr_db=snr, generator=g)["recon"]
                       for i in range(0, len(eval_pairs), 8)])
    model.train()
    flat_r, flat_t = recon.flatten(0, 1), eval_pairs.flatten(0, 1)
    levels = torch.unique((recon.clamp(0, 1) * 255).round()).numel()
    return psnr(flat_r, flat_t), levels


def run_one(name, args, images, eval_pairs):
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = build(name, args)
    n_params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    fr = None
    if name in ("snn", "naive"):
        with FiringRateMonitor(model) as mon, torch.no_grad():
            model(eval_pairs[:4], generator=torch.Generator().manual_seed(0))
        fr = mon.rates()
        print(f"[{name}] firing rate at init: mean {mon.mean_rate():.3f}, "
              f"first {list(fr.values())[0]:.3f}, last {list(fr.values())[-1]:.3f}")
    p0, lv0 = evaluate(model, eval_pairs, args.snr)
    print(f"[{name}] params {n_params:,}  init eval PSNR {p0:.2f} dB ({lv0} output levels)", flush=True)
    history = [(0, 0.0, p0)]
    start = time.perf_counter()
    next_eval, step, run_mse = args.eval_every, 0, None
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= args.seconds:
            break
        pair = pseudo_stereo_batch(images, args.batch, args.crop, args.max_shift, rng)
        out = model(pair)
        loss = F.mse_loss(out["recon"], pair)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        run_mse = loss.item() if run_mse is None else 0.95 * run_mse + 0.05 * loss.item()
        if time.perf_counter() - start >= next_eval:
            next_eval += args.eval_every
            p, lv = evaluate(model, eval_pairs, args.snr)
            t = time.perf_counter() - start
            history.append((step, t, p))
            print(f"[{name}] {t:6.0f}s step {step:5d}  train PSNR {-10 * math.log10(run_mse):5.2f}  "
                  f"eval PSNR {p:5.2f} dB ({lv} levels)", flush=True)
    wall = time.perf_counter() - start
    p, lv = evaluate(model, eval_pairs, args.snr)
    p_clean, _ = evaluate(model, eval_pairs, float("inf"))
    history.append((step, wall, p))
    res = dict(model=name, params=n_params, steps=step, wall_s=round(wall, 1), eval_psnr=round(p, 2),
               eval_psnr_noiseless=round(p_clean, 2), best_eval_psnr=round(max(h[2] for h in history), 2),
               output_levels=lv, init_eval_psnr=round(p0, 2), sec_per_step=round(wall / max(step, 1), 3),
               bandwidth_ratio=getattr(model, "bandwidth_ratio", 64 / 384),
               history=[(s, round(t, 1), round(q, 2)) for s, t, q in history])
    if fr is not None:
        res["init_firing_rate_first_last"] = [round(list(fr.values())[0], 4), round(list(fr.values())[-1], 4)]
    print(f"[{name}] done: {step} steps in {wall:.0f}s, eval PSNR {p:.2f} dB at {args.snr} dB "
          f"({p_clean:.2f} dB noiseless), {lv} output levels", flush=True)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m restoration.benchmark.jscc_probe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="cnn,snn,naive", help="comma list of cnn, snn, twin, naive")
    ap.add_argument("--seconds", type=float, default=240, help="training wall time per model")
    ap.add_argument("--width", type=int, default=32, help="feature channels (the library default is 64)")
    ap.add_argument("--time-steps", type=int, default=4)
    ap.add_argument("--naive-tau", type=float, default=2.0, help="LIF tau of the naive model (the seed tried 2 and 8)")
    ap.add_argument("--snr", type=float, default=10.0, help="channel SNR in dB (train and eval)")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--max-shift", type=int, default=8, help="largest pseudo-stereo disparity in pixels")
    ap.add_argument("--lr", type=float, default=2e-4,
                    help="Adam step (1e-3 leaves the CNN on the mean-colour plateau here)")
    ap.add_argument("--eval-every", type=float, default=30.0, help="seconds between evaluations")
    ap.add_argument("--eval-crops", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the results here (atomically)")
    args = ap.parse_args(argv)
    set_threads(args.threads)

    images = load_train_images()
    eval_pairs = motorcycle_eval_set(args.eval_crops, args.crop)
    mean_colour = torch.stack([im.mean((1, 2)) for im in images]).mean(0).view(1, 3, 1, 1)
    grey = psnr(mean_colour.expand_as(eval_pairs.flatten(0, 1)), eval_pairs.flatten(0, 1))
    print(f"reference: constant mean-colour output on the eval crops: {grey:.2f} dB")
    # What a seed-style SNN could at best see / say: a Bernoulli rate code of the input over
    # T steps, and an output read as the firing rate of a spiking layer (T + 1 levels).
    T, flat = args.time_steps, eval_pairs.flatten(0, 1)
    coded = (torch.rand((T,) + flat.shape, generator=torch.Generator().manual_seed(0)) < flat).float().mean(0)
    rate_code = psnr(coded, flat)
    levels = psnr((flat * T).round() / T, flat)
    print(f"reference: {T}-step rate-coded input {rate_code:.2f} dB; output limited to {T + 1} levels "
          f"{levels:.2f} dB")
    results = [run_one(name.strip(), args, images, eval_pairs) for name in args.models.split(",") if name.strip()]

    print("\nmodel   params     steps  wall_s  s/step  eval PSNR  (noiseless)  best   levels")
    for r in results:
        print(f"{r['model']:7s} {r['params']:9,d} {r['steps']:6d} {r['wall_s']:7.0f} {r['sec_per_step']:7.3f} "
              f"{r['eval_psnr']:9.2f}  ({r['eval_psnr_noiseless']:6.2f})   {r['best_eval_psnr']:5.2f}  "
              f"{r['output_levels']:5d}")
    if args.json:
        write_text(args.json, json.dumps(dict(args=vars(args), grey_reference_psnr=round(grey, 2),
                                              rate_coded_input_psnr=round(rate_code, 2),
                                              spike_count_output_psnr=round(levels, 2), results=results), indent=1))


if __name__ == "__main__":
    main()
