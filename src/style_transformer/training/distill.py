"""A generator distilled from the procedural renderer: G(z, c) regressed onto render(factors(z, c)).

The renderer (``data/synthetic.py``) is a deterministic function of its factors, so a generator can
learn it directly instead of from a folder of images: every step draws labels ``c`` with the
renderer's exact rates (the binary attributes, the hair category one-hot) and ``z ~ N(0, I)``, maps
them to the renderer's factors (``synthetic.factors_from_code``: the continuous ones from the first
coordinates of the normalised z), renders the targets on the fly and trains the conditional generator
to draw them. The result is a standard conditional StyleGAN2 ``Generator`` file that every command
loads, whose samples come with their exact factors.

Losses (``DistillConfig.loss``):

- ``l1``: L1 at full and at half scale;
- ``pyramid``: L1 on the levels of a Laplacian pyramid, the finest weighted most (``pyramid_weights``),
  so that small parts (eyes, glasses, mouths: a few pixels of a 64 px face) are not drowned by the
  large flat areas;

plus, with ``adv_weight > 0``, a conditional adversarial term trained together with the regression
from the first step (as pix2pix pairs L1 with a GAN loss): the renders are the real images, the
discriminator sees the label, with lazy R1 on the renders.

Everything else is ``GANTrainer``'s: checkpoints (exact resume, kill -9 safe), EMA, snapshots,
log.jsonl/TensorBoard, torchrun, CUDA and bf16 autocast.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch.profiler import record_function

from ..config import ConfigError, GeneratorConfig
from ..data import synthetic
from ..data.synthetic import draw_codes, render_codes
from .common import tile
from .gan import GANTrainConfig, GANTrainer, gan_preset

DISTILL_LOSSES = ("l1", "pyramid")


@dataclass(frozen=True)
class DistillConfig(GANTrainConfig):
    """A distillation run (``RUN/config.json``): ``GANTrainConfig``'s fields (the generator made
    conditional on ``synthetic.LABEL_NAMES``; ``mixing`` unused) plus the regression's own."""

    loss: str = "pyramid"
    # finest level first; the last weight is the low-pass residual's
    pyramid_weights: Tuple[float, ...] = (4.0, 2.0, 1.0, 1.0, 1.0)
    # conditional adversarial term (0: regression alone); pix2pix weighs L1 100 : GAN 1
    adv_weight: float = 0.0
    # Adam's first moment for G (the regression wants momentum; a GAN's G uses 0)
    beta1: float = 0.9
    # the mapping network's learning-rate multiplier is 0.01 (equalized lr); the regression trains it
    # at this multiple of that rate (100: the same rate as the synthesis network)
    mapping_lr_scale: float = 100.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.loss not in DISTILL_LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(DISTILL_LOSSES)}, got {self.loss!r}")
        if self.loss == "pyramid" and (not self.pyramid_weights or min(self.pyramid_weights) < 0):
            raise ConfigError("pyramid_weights needs at least one weight, none negative")
        if self.adv_weight < 0 or self.mapping_lr_scale <= 0:
            raise ConfigError("adv_weight must be >= 0 and mapping_lr_scale > 0")
        g = self.generator
        if g.c_dim != len(synthetic.LABEL_NAMES) or tuple(g.label_names) != synthetic.LABEL_NAMES:
            raise ConfigError(f"a distilled generator is conditioned on the renderer's labels "
                              f"{', '.join(synthetic.LABEL_NAMES)}")
        if (g.z_dim or g.style_dim) < len(synthetic.CONTINUOUS_FACTORS):
            raise ConfigError(f"z needs at least {len(synthetic.CONTINUOUS_FACTORS)} coordinates")


def renderer_generator(cfg: GeneratorConfig) -> GeneratorConfig:
    """``cfg`` conditioned on the renderer's binary attributes (and their joint distribution)."""
    return dataclasses.replace(cfg, c_dim=len(synthetic.LABEL_NAMES), label_names=synthetic.LABEL_NAMES,
                               label_combos=len(synthetic.label_distribution()))


def distill_preset(name: str) -> DistillConfig:
    """The distillation config for a GAN preset's architecture (``GAN_PRESETS``): batch 32, Adam
    (0.9, 0.99) at lr 2e-3, the Laplacian-pyramid loss, no adversarial term, no style mixing."""
    base = gan_preset(name)
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(GANTrainConfig)}
    fields.update(generator=renderer_generator(base.generator), batch_size=32, lr=0.002, mixing=0.0,
                  checkpoint_every=200, sample_every=200, snapshot_kimg=base.snapshot_kimg or 10.0)
    return DistillConfig(**fields)


def is_distill_config(data: Dict) -> bool:
    """Whether a run's config dict (``RUN/config.json``) is a distillation run's."""
    return "pyramid_weights" in data and "adv_weight" in data


def laplacian_pyramid(img: torch.Tensor, levels: int) -> list:
    """``levels`` band-pass images (finest first, each ``x - up(down(x))``), then the low-pass
    residual: ``levels + 1`` tensors whose upsampled sum is ``img`` again."""
    out, x = [], img
    for _ in range(levels):
        if min(x.shape[-2:]) < 2:
            break
        low = F.avg_pool2d(x, 2)
        out.append(x - F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=False))
        x = low
    out.append(x)
    return out


def reconstruction_loss(img: torch.Tensor, target: torch.Tensor, cfg: DistillConfig) -> torch.Tensor:
    """The regression term of ``cfg.loss`` between images ``[N, 3, H, W]`` in [-1, 1]."""
    if cfg.loss == "l1":
        return (img - target).abs().mean() + (F.avg_pool2d(img, 2) - F.avg_pool2d(target, 2)).abs().mean()
    weights = cfg.pyramid_weights
    bands = zip(laplacian_pyramid(img, len(weights) - 1), laplacian_pyramid(target, len(weights) - 1))
    return sum(w * (a - b).abs().mean() for w, (a, b) in zip(weights, bands)) / sum(weights)


class DistillTrainer(GANTrainer):
    """Trains a conditional generator to draw the renderer (no dataset: targets rendered per step).

    Args:
        cfg: the run's config (``distill_preset``).
        out: run folder.
        device: where the models train.
    """

    def __init__(self, cfg: DistillConfig, out, device="cpu"):
        super().__init__(cfg, None, out, device=device)
        table = torch.from_numpy(synthetic.label_distribution()).float()
        for g in (self.g, self.g_ema):
            g.label_dist.copy_(table)
        # Adam (beta1, 0.99); the mapping network (lr multiplier 0.01) at mapping_lr_scale x the lr
        mapping = [p for n, p in self.g.named_parameters() if n.startswith("style.")]
        rest = [p for n, p in self.g.named_parameters() if not n.startswith("style.")]
        self.g_optim = torch.optim.Adam([{"params": mapping, "lr": cfg.lr * cfg.mapping_lr_scale},
                                         {"params": rest, "lr": cfg.lr}], betas=(cfg.beta1, 0.99))
        self.cpu_s = 0.0  # process CPU seconds spent training, over every resumed part
        self._cpu0 = time.process_time()

    @staticmethod
    def _dataset_labels(cfg, dataset) -> Optional[torch.Tensor]:
        return None  # labels come from the renderer's distribution, not a dataset

    def _fake_labels(self, batch: int) -> Optional[torch.Tensor]:
        table = self.g.label_dist.detach().float().cpu()
        rows = torch.multinomial(table[:, -1], batch, replacement=True, generator=self.gen_z)
        return table[rows, :-1].to(self.device)

    def state(self) -> Dict:
        state = super().state()
        state["cpu_s"] = self._cpu_seconds()
        return state

    def load(self, path=None) -> Dict:
        ck = super().load(path)
        self.cpu_s = float(ck.get("cpu_s", 0.0))
        self._cpu0 = time.process_time()
        return ck

    def _cpu_seconds(self) -> float:
        return self.cpu_s + time.process_time() - self._cpu0

    def _draw(self, batch: int) -> Tuple[torch.Tensor, torch.Tensor]:
        c = self._fake_labels(batch).cpu()
        z = torch.randn(batch, self.g.z_dim, generator=self.gen_z)
        return z, c

    def train_step(self) -> Dict[str, float]:
        cfg = self.cfg
        self.g.train()
        self.d.train()
        logs: Dict[str, float] = {}
        with record_function("distill/render"):
            z, c = self._draw(cfg.batch_size)
            target = render_codes(z, c, cfg.generator.size).to(self.device, non_blocking=True)
            z, c = z.to(self.device), c.to(self.device)
        adversarial = cfg.adv_weight > 0
        if adversarial:
            self.g.requires_grad_(False)
            self.d.requires_grad_(True)
            with torch.no_grad(), self._amp():
                fake, _ = self.g([z], randomize_noise=True, c=c)
            with self._amp():
                d_loss = F.softplus(self.d(fake, c).float()).mean() + F.softplus(-self.d(target, c).float()).mean()
            self._check(d_loss, "discriminator loss")
            self.d.zero_grad(set_to_none=True)
            d_loss.backward()
            self._optimize(self.d_optim, self.d)
            logs["loss/d"] = d_loss.item()
            if cfg.d_reg_every > 0 and self.step % cfg.d_reg_every == 0:
                logs["loss/r1"] = self._r1_step(target.clone(), c)
        self.g.requires_grad_(True)
        self.d.requires_grad_(False)
        with record_function("distill/g_step"), self._amp():
            img, _ = self.g([z], randomize_noise=True, c=c)
            rec = reconstruction_loss(img.float(), target, cfg)
            loss = rec
            if adversarial:
                adv = F.softplus(-self.d(img, c).float()).mean()
                loss = rec + cfg.adv_weight * adv
                logs["loss/g_adv"] = adv.item()
        self._check(loss, "generator loss")
        self.g.zero_grad(set_to_none=True)
        loss.backward()
        self._optimize(self.g_optim, self.g)
        with torch.no_grad():
            mse = (img.detach().float().clamp(-1, 1) - target).pow(2).mean().item()
        logs["loss/rec"] = rec.item()
        logs["train/psnr"] = 10 * math.log10(4.0 / max(mse, 1e-12))
        logs["cpu_s"] = self._cpu_seconds()
        self._update_ema()
        self.step += 1
        self.nimg += self.global_batch
        return logs

    @torch.no_grad()
    def sample_grid(self, n: int = 16) -> torch.Tensor:
        """Fixed draws (seeded by the config): rows of renders above rows of the EMA generator's images."""
        gen = torch.Generator().manual_seed(self.cfg.seed)
        z, c = draw_codes(n, self.g.z_dim, gen)
        target = render_codes(z, c, self.cfg.generator.size)
        img, _ = self.g_ema([z.to(self.device)], randomize_noise=False, c=c.to(self.device))
        cols = int(math.ceil(math.sqrt(n)))
        rows = []
        for i in range(0, n, cols):
            rows += [target[i:i + cols], img[i:i + cols].float().cpu()]
        return tile(torch.cat(rows), cols)


__all__ = ["DISTILL_LOSSES", "DistillConfig", "DistillTrainer", "distill_preset", "draw_codes", "is_distill_config",
           "laplacian_pyramid", "reconstruction_loss", "render_codes", "renderer_generator"]
