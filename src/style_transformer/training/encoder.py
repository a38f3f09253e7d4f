"""Style Transformer encoder training, as in the paper (with pSp's losses).

The generator's synthesis network is frozen; the encoder and the mapping MLP that turns the learned
``z`` tokens into queries are trained (the paper fine-tunes that MLP). Loss per image:
``l2_lambda * MSE + lpips_lambda * LPIPS + id_lambda * (1 - cos(ArcFace(x), ArcFace(y)))``.
Optimiser: Ranger (RAdam + Lookahead), lr 1e-4.

Run folder ``RUN/``:
  ``checkpoint.pt``      resume state (``torch.save``, ``weights_only``-loadable): the model (encoder,
                         mapping, frozen synthesis), optimiser, step, RNG states, best validation loss;
                         written atomically every ``checkpoint_every`` steps, at the end and on Ctrl-C.
  ``best.safetensors``   the model with the lowest validation loss so far (a native Style Transformer
                         checkpoint: ``invert --checkpoint RUN/best.safetensors``).
  ``config.json``, ``log.jsonl``, ``tensorboard/`` (scalars and input | reconstruction grids),
  ``samples/`` (the same grids as PNG).
"""

from __future__ import annotations

import dataclasses

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Union

import torch
import torch.nn.functional as F

from ..config import (ConfigError, EncoderConfig, PSPConfig, StyleTransformerConfig, _ConfigMixin,
                      generator_config_from_dict, model_preset)
from ..data.datasets import item_image
from ..data.images import pool_to_size
from ..metrics.inversion import psnr_db
from ..models import Generator, PSPModel, StyleTransformer
from .common import (RunLog, StopRequests, TrainingError, average_gradients, gather_from_ranks, rank_and_world,
                     read_checkpoint, tile, write_checkpoint)
from .ranger import ranger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncoderTrainConfig(_ConfigMixin):
    """Everything that defines an encoder training run (saved as ``RUN/config.json``).

    Attributes:
        encoder: encoder architecture (``n_styles`` must cover the generator's W+ rows and
            ``d_model`` equal its ``style_dim``).
        batch_size: images per step and process.
        lr: Ranger learning rate.
        l2_lambda, lpips_lambda, id_lambda: loss weights (pSp: 1.0, 0.8, 0.1).
        lpips_net: ``alex-st`` (shift-tolerant AlexNet shipped by a PyPI wheel), ``alex`` or ``vgg``.
        train_mapping: fine-tune the mapping MLP that makes the queries (the paper does; Style Transformer only).
        arch: ``style_transformer`` (the paper's encoder) or a peer trained with the same losses and data:
            ``psp`` or ``e4e``.
        coarse_ind, middle_ind: pSp/e4e head split (heads below ``coarse_ind`` read 1/16 features, below
            ``middle_ind`` 1/8, the rest 1/4).
        delta_lambda: e4e's delta regulariser, ``sum_i |w_i - w_0|^2`` over the active rows.
        progressive_every: e4e's progressive training: one more row gets its own offset every this many
            steps (0: every row from the start).
        w_disc_lambda: e4e's latent discriminator: weight of the encoder's adversarial loss on its codes
            (0: off); the discriminator (an MLP on single w rows) learns real w = mapping(z) against
            the codes, non-saturating loss, R1 (gamma ``w_disc_r1``) on the real ones, lr ``w_disc_lr``.
        steps: optimiser steps in total.
        val_every: steps between validations (the best model is kept).
        val_images: validation images (a fixed prefix of the validation split).
        checkpoint_every: steps between resume checkpoints.
        image_every: steps between input | reconstruction grids.
        seed: initialisation and data order.
    """

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    batch_size: int = 8
    lr: float = 1e-4
    l2_lambda: float = 1.0
    lpips_lambda: float = 0.8
    id_lambda: float = 0.0
    lpips_net: str = "alex-st"
    train_mapping: bool = True
    arch: str = "style_transformer"
    coarse_ind: int = 3
    middle_ind: int = 7
    delta_lambda: float = 0.0
    progressive_every: int = 0
    w_disc_lambda: float = 0.0
    w_disc_lr: float = 2e-5
    w_disc_r1: float = 10.0
    steps: int = 100000
    val_every: int = 1000
    val_images: int = 500
    checkpoint_every: int = 500
    image_every: int = 500
    seed: int = 0


_FACES64_RUN = dict(batch_size=16, steps=20000, val_every=500, checkpoint_every=250, image_every=250)
# pSp and e4e read the backbone fields only (their heads replace the query blocks)
_FACES64_PEER = dataclasses.replace(model_preset("faces-64").encoder, ffn_dim=1024)

ENCODER_PRESETS: Dict[str, EncoderTrainConfig] = {
    # the shipped default (model preset faces-64): ~6 M encoder parameters
    "faces-64": EncoderTrainConfig(encoder=model_preset("faces-64").encoder, **_FACES64_RUN),
    # the peers on the default domain, same backbone, data, losses and optimiser as faces-64
    "psp-faces-64": EncoderTrainConfig(encoder=_FACES64_PEER, arch="psp", coarse_ind=3, middle_ind=6, **_FACES64_RUN),
    "e4e-faces-64": EncoderTrainConfig(encoder=_FACES64_PEER, arch="e4e", coarse_ind=3, middle_ind=6, delta_lambda=2e-4,
                                       progressive_every=1000, w_disc_lambda=0.1, **_FACES64_RUN),
    # the paper's FFHQ setting: IR-SE50 on 256x256 inputs, 18 queries, identity loss (needs ArcFace weights)
    "ffhq-256": EncoderTrainConfig(encoder=model_preset("official-ffhq").encoder, batch_size=8, id_lambda=0.1,
                                   steps=300000, val_every=5000, checkpoint_every=5000, image_every=1000),
    # tests and smoke runs
    "tiny": EncoderTrainConfig(encoder=model_preset("tiny").encoder, batch_size=4, steps=20, val_every=10,
                               val_images=8, checkpoint_every=10, image_every=10),
}


def encoder_preset(name: str) -> EncoderTrainConfig:
    """Looks up an encoder training preset (``ENCODER_PRESETS``)."""
    try:
        return ENCODER_PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown encoder preset {name!r}; choose from {', '.join(sorted(ENCODER_PRESETS))}") from None


class LatentDiscriminator(torch.nn.Module):
    """e4e's latent-code discriminator: an MLP (leaky ReLU 0.2) from one w row to a logit."""

    def __init__(self, w_dim: int, n_layers: int = 4):
        super().__init__()
        layers = []
        for _ in range(n_layers - 1):
            layers += [torch.nn.Linear(w_dim, w_dim), torch.nn.LeakyReLU(0.2)]
        layers.append(torch.nn.Linear(w_dim, 1))
        self.mlp = torch.nn.Sequential(*layers)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.mlp(w)


def build_inversion_model(cfg: "EncoderTrainConfig", generator: Generator):
    """A fresh Style Transformer, pSp or e4e (``cfg.arch``) for ``generator``'s architecture."""
    if cfg.arch == "style_transformer":
        return StyleTransformer(StyleTransformerConfig(encoder=cfg.encoder, generator=generator.cfg))
    if cfg.arch in ("psp", "e4e"):
        return PSPModel(PSPConfig(arch=cfg.arch, encoder=cfg.encoder, generator=generator.cfg,
                                  coarse_ind=cfg.coarse_ind, middle_ind=cfg.middle_ind))
    raise TrainingError(f"unknown encoder arch {cfg.arch!r} (style_transformer, psp or e4e)")


def psnr(img: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image of ``[N, 3, H, W]`` images in [-1, 1] (peak-to-peak 2), after clamping."""
    return psnr_db((img.clamp(-1, 1) - target.clamp(-1, 1)).pow(2).flatten(1).mean(1))


class EncoderTrainer:
    """Trains a ``StyleTransformer`` encoder against a frozen generator.

    Args:
        cfg: training config.
        generator: the StyleGAN2 to invert into (its weights are copied; its W mean is the offset).
        train_set, val_set: yield ``[3, S, S]`` tensors in [-1, 1] (or tuples whose first item is one),
            ``S = cfg.encoder.input_size``; ``val_set`` may be None (no validation, no best model).
        out: run folder.
        device: where to train.
        lpips: the perceptual network (default: ``LPIPS.load(cfg.lpips_net)``).
        id_loss: identity network for ``id_lambda > 0`` (``losses.IDLoss``).
    """

    def __init__(self, cfg: EncoderTrainConfig, generator: Generator, train_set, val_set, out: os.PathLike,
                 device: Union[str, torch.device] = "cpu", lpips=None, id_loss=None):
        from ..losses import LPIPS

        self.cfg, self.train_set, self.val_set, self.out = cfg, train_set, val_set, Path(out)
        self.device = torch.device(device)
        self.rank, self.world = rank_and_world()
        if cfg.encoder.n_styles < generator.num_ws:
            raise TrainingError(f"the encoder makes {cfg.encoder.n_styles} W+ rows but the generator needs "
                                f"{generator.num_ws}")
        if cfg.id_lambda > 0 and id_loss is None:
            raise TrainingError("id_lambda > 0 needs an identity network (ArcFace IR-SE50 weights)")
        torch.manual_seed(cfg.seed)
        self.model = build_inversion_model(cfg, generator)
        self.model.decoder.load_state_dict(generator.state_dict())
        self.model.to(self.device)
        self.model.decoder.requires_grad_(False).eval()  # noise buffers fixed: deterministic renders
        self.params = list(self.model.encoder.parameters())
        if cfg.train_mapping and cfg.arch == "style_transformer":
            self.model.decoder.style.requires_grad_(True)
            self.params += list(self.model.decoder.style.parameters())
        self.optim = ranger(self.params, lr=cfg.lr)
        self.w_disc = self.w_disc_optim = None
        if cfg.w_disc_lambda > 0:
            self.w_disc = LatentDiscriminator(generator.style_dim).to(self.device)
            self.w_disc_optim = torch.optim.Adam(self.w_disc.parameters(), lr=cfg.w_disc_lr, betas=(0.9, 0.999))
        self.lpips = (lpips if lpips is not None else LPIPS.load(cfg.lpips_net)).to(self.device)
        self.id_loss = id_loss.to(self.device) if id_loss is not None else None
        self.step = 0
        self.best = math.inf
        self.gen_data = torch.Generator().manual_seed(cfg.seed + 1 + 1000 * self.rank)

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    @property
    def best_path(self) -> Path:
        return self.out / "best.safetensors"

    # -- losses --------------------------------------------------------------------------------
    def _batch(self) -> torch.Tensor:
        idx = torch.randint(len(self.train_set), (self.cfg.batch_size,), generator=self.gen_data)
        return torch.stack([item_image(self.train_set[int(i)]) for i in idx]).to(self.device)

    def _progressive_rows(self) -> int:
        """e4e: rows that have their own offset at this step (the rest copy w0)."""
        n = self.cfg.encoder.n_styles
        if self.cfg.arch != "e4e" or self.cfg.progressive_every <= 0:
            return n
        return min(n, 1 + self.step // self.cfg.progressive_every)

    def losses(self, x: torch.Tensor):
        """x ``[N, 3, S, S]`` -> (total loss, logged floats, reconstruction at the input size)."""
        cfg = self.cfg
        if cfg.arch == "e4e":  # training: the progressive stage; validation and grids: every row, as inference
            self.model.encoder.n_active = self._progressive_rows() if self.model.encoder.training \
                else cfg.encoder.n_styles
        ws = self.model.encode(x)
        y = pool_to_size(self.model.decoder.synthesis(ws[:, : self.model.decoder.num_ws]), x.shape[-1])
        l2 = F.mse_loss(y, x)
        lp = self.lpips(y, x).mean()
        total = cfg.l2_lambda * l2 + cfg.lpips_lambda * lp
        logs = {"loss/l2": l2.item(), "loss/lpips": lp.item()}
        if self.id_loss is not None and cfg.id_lambda > 0:
            ident = self.id_loss(y, x).mean()
            total = total + cfg.id_lambda * ident
            logs["loss/id"] = ident.item()
        if self.w_disc is not None and self.model.encoder.training:
            self.w_disc.requires_grad_(False)
            adv = F.softplus(-self.w_disc(ws[:, : self._progressive_rows()].reshape(-1, ws.shape[-1]))).mean()
            total = total + cfg.w_disc_lambda * adv
            logs["loss/w_adv"] = adv.item()
            self._codes = ws.detach()
        if cfg.arch == "e4e" and cfg.delta_lambda > 0:
            delta = (ws[:, 1:] - ws[:, :1]).pow(2).sum(-1).sum(-1).mean()
            total = total + cfg.delta_lambda * delta
            logs["loss/delta"] = delta.item()
        logs["loss/total"] = total.item()
        return total, logs, y

    def train_step(self) -> Dict[str, float]:
        self.model.encoder.train()
        x = self._batch()
        loss, logs, _ = self.losses(x)
        if not torch.isfinite(loss):
            raise TrainingError(f"encoder loss became {loss.item()} at step {self.step}; stopped. The last good "
                                f"checkpoint is {self.checkpoint_path}")
        self.optim.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self.params, self.world)
        self.optim.step()
        if self.w_disc is not None:
            logs.update(self._w_disc_step(self._codes))
        self.step += 1
        return logs

    def _w_disc_step(self, codes: torch.Tensor) -> Dict[str, float]:
        """e4e's latent discriminator: real w = mapping(z) against the encoder's (active) code rows."""
        cfg, d = self.cfg, self.w_disc
        d.requires_grad_(True)
        fake = codes[:, : self._progressive_rows()].reshape(-1, codes.shape[-1])
        with torch.no_grad():
            z = torch.randn(fake.shape[0], codes.shape[-1], generator=self.gen_data).to(self.device)
            real = self.model.decoder.sample_w(z, generator=self.gen_data)
        real.requires_grad_(True)
        pred_real = d(real)
        loss = F.softplus(-pred_real).mean() + F.softplus(d(fake)).mean()
        grad, = torch.autograd.grad(pred_real.sum(), real, create_graph=True)
        r1 = grad.pow(2).sum(1).mean()
        total = loss + cfg.w_disc_r1 / 2 * r1
        self.w_disc_optim.zero_grad(set_to_none=True)
        total.backward()
        average_gradients(d.parameters(), self.world)
        self.w_disc_optim.step()
        return {"loss/w_disc": loss.item(), "loss/w_disc_r1": r1.item()}

    def _val_batches(self, batch_size: int = 32):
        n = min(len(self.val_set), self.cfg.val_images)
        for i in range(0, n, batch_size):
            yield torch.stack([item_image(self.val_set[j]) for j in range(i, min(i + batch_size, n))]).to(self.device)

    @torch.no_grad()
    def validate(self) -> Dict[str, float]:
        """Mean losses and PSNR over the validation images (``val/...``)."""
        self.model.encoder.eval()
        sums: Dict[str, float] = {}
        n = 0
        for x in self._val_batches():
            _, logs, y = self.losses(x)
            logs["loss/psnr"] = psnr(y, x).mean().item()
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v * len(x)
            n += len(x)
        return {k.replace("loss/", "val/"): v / max(n, 1) for k, v in sums.items()}

    @torch.no_grad()
    def recon_grid(self, n: int = 8) -> torch.Tensor:
        """Input | reconstruction pairs of the first ``n`` validation (else training) images, ``[3, H, W]``."""
        self.model.encoder.eval()
        source = self.val_set if self.val_set is not None else self.train_set
        x = torch.stack([item_image(source[i]) for i in range(min(n, len(source)))]).to(self.device)
        _, _, y = self.losses(x)
        return tile(torch.stack([x, y], 1).flatten(0, 1).float().cpu(), 4)  # two pairs per row

    # -- checkpoints ---------------------------------------------------------------------------
    def state(self) -> Dict:
        rng = {"torch": torch.get_rng_state(), "data": self.gen_data.get_state()}
        state = {"model": self.model.state_dict(), "optim": self.optim.state_dict(), "config": self.cfg.to_dict(),
                 "generator_config": self.model.cfg.generator.to_dict(), "step": self.step, "best": self.best,
                 "rng": gather_from_ranks(rng, self.world), "world_size": self.world}
        if self.w_disc is not None:
            state["w_disc"], state["w_disc_optim"] = self.w_disc.state_dict(), self.w_disc_optim.state_dict()
        return state

    def save(self) -> Path:
        """Writes the resume checkpoint atomically (every rank must call it in multi-process runs)."""
        return write_checkpoint(self.state(), self.checkpoint_path, self.rank, self.world)

    def load(self, path: Optional[os.PathLike] = None) -> None:
        """Restores a ``save`` state: continues exactly where it stopped."""
        path = Path(path) if path is not None else self.checkpoint_path
        ck = read_checkpoint(path, ("model", "optim", "rng", "config"), "train-encoder", self.world)
        try:
            saved_gen = generator_config_from_dict(ck.get("generator_config") or {})
        except (ConfigError, TypeError):
            saved_gen = None
        if saved_gen != self.model.cfg.generator:
            raise TrainingError(f"{path}: trained against another generator architecture than the one given")
        try:  # compared as configs: fields added since the checkpoint was written take their defaults
            saved = EncoderConfig.from_dict(ck["config"].get("encoder") or {})
        except (ConfigError, TypeError) as e:
            raise TrainingError(f"{path}: the checkpoint's encoder config is unreadable ({e})") from None
        if saved != self.cfg.encoder:
            raise TrainingError(f"{path}: the checkpoint's encoder config differs from this run's")
        self.model.load_state_dict(ck["model"])
        self.optim.load_state_dict(ck["optim"])
        if self.w_disc is not None:
            if "w_disc" not in ck:
                raise TrainingError(f"{path}: has no latent discriminator state to resume")
            self.w_disc.load_state_dict(ck["w_disc"])
            self.w_disc_optim.load_state_dict(ck["w_disc_optim"])
        self.step, self.best = int(ck["step"]), float(ck["best"])
        rng = ck["rng"][self.rank]
        torch.set_rng_state(rng["torch"])
        self.gen_data.set_state(rng["data"])

    def save_best(self) -> Path:
        from ..checkpoints.io import save_model

        return save_model(self.model, self.best_path)

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, progress: bool = True) -> Path:
        """Trains to ``cfg.steps``; validates every ``val_every`` steps (and at the end), keeping the best
        model in ``best.safetensors``; saves the resume state periodically, at the end and on Ctrl-C.

        Returns:
            The best model's path (the resume checkpoint when there is no validation set).
        """
        lead = self.rank == 0
        self.out.mkdir(parents=True, exist_ok=True)
        stop = StopRequests() if self.world == 1 else None
        run = RunLog(self.out, self.cfg.to_dict(), self.step, lead,
                     ("train-encoder", "step", self.cfg.steps, self.step) if progress else None)
        try:
            t0, start = time.perf_counter(), self.step
            while self.step < self.cfg.steps:
                logs = self.train_step()
                logs["img_per_s"] = ((self.step - start) * self.cfg.batch_size * self.world
                                     / max(time.perf_counter() - t0, 1e-9))
                last = self.step == self.cfg.steps
                if self.val_set is not None and (self.step % self.cfg.val_every == 0 or last):
                    val = self.validate()  # every rank: identical weights, identical numbers
                    logs.update(val)
                    if val["val/total"] < self.best:
                        self.best = val["val/total"]
                        if lead:
                            self.save_best()
                run.scalars(self.step, logs)
                if lead and (self.step % self.cfg.image_every == 0 or last):
                    run.image("input|reconstruction", self.recon_grid(), self.step)
                run.progress(self.step, {k.split("/")[-1]: f"{v:.4f}" for k, v in logs.items()
                                         if k in ("loss/l2", "loss/lpips", "val/psnr")})
                if self.step % self.cfg.checkpoint_every == 0:
                    self.save()
                if stop is not None and stop.requested:
                    log.warning("stopped at step %d: saving %s", self.step, self.checkpoint_path)
                    self.save()
                    raise KeyboardInterrupt
            self.save()
            return self.best_path if self.val_set is not None else self.checkpoint_path
        finally:
            if stop is not None:
                stop.restore()
            run.close()

