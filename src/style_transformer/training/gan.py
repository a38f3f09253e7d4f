"""StyleGAN2 training: non-saturating logistic loss, lazy R1, optional path-length regularisation,
style mixing, an EMA generator, Adam(0, 0.99); checkpoints in the rosinality format.

Checkpoint ``RUN/checkpoint.pt`` (``torch.save``, loadable with ``weights_only=True``):
``g``, ``d``, ``g_ema``, ``g_optim``, ``d_optim``, ``latent_avg`` (rosinality keys), plus ``config``
(the training config as a dict), ``step`` and ``rng`` (the states that make ``resume`` exact).
It is written atomically (temp file + rename) every ``checkpoint_every`` steps, at the end and on
Ctrl-C; a non-finite loss stops training before anything is written, so the last good file stays.
Scalars (losses, kimg, img/s) and EMA sample grids go to TensorBoard event files in
``RUN/tensorboard``; the same scalars to ``RUN/log.jsonl`` and the grids to ``RUN/samples/``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.profiler import record_function

from ..config import ConfigError, GeneratorConfig, _ConfigMixin, generator_config_from_dict, model_preset
from ..data.datasets import item_image
from ..models import Discriminator, Generator
from .common import (RunLog, StopRequests, TrainingError, average_gradients, gather_from_ranks, rank_and_world,
                     read_checkpoint, tile, write_checkpoint)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GANTrainConfig(_ConfigMixin):
    """Everything that defines a GAN training run (saved as ``RUN/config.json``)."""

    generator: GeneratorConfig = field(default_factory=lambda: GeneratorConfig(size=64))
    batch_size: int = 16
    lr: float = 0.002
    r1_gamma: float = 10.0
    d_reg_every: int = 16
    g_reg_every: int = 4
    path_length_weight: float = 0.0
    mixing: float = 0.9
    ema_kimg: float = 10.0
    ema_rampup: float = 0.0  # > 0: EMA half-life at most this fraction of the images seen (StyleGAN2-ADA)
    kimg: float = 100.0
    checkpoint_every: int = 500
    sample_every: int = 500
    snapshot_kimg: float = 0.0  # > 0: keep the EMA generator every this many kimg (RUN/snapshots/)
    seed: int = 0
    # "bf16": G and D forward/backward under bfloat16 autocast (weights, optimiser, R1 and the EMA stay
    # float32); about twice the convolution throughput on CPUs with AVX512-BF16 and on GPUs
    amp: str = "off"
    # > 0: the first this many kimg train D alone (G and its EMA frozen): a fresh discriminator
    # against a warm-started generator first learns to tell its samples from real images, instead
    # of sending the generator random gradients
    d_warmup_kimg: float = 0.0
    # the discriminator's own widths for resolutions 4, 8, ..., size (empty: the generator's)
    d_channels: Tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.amp not in ("off", "bf16"):
            raise ConfigError(f"amp must be 'off' or 'bf16', got {self.amp!r}")
        n = self.generator.log_size - 1
        if self.d_channels and (len(self.d_channels) != n or min(self.d_channels) < 1):
            raise ConfigError(f"d_channels needs {n} positive widths (4..{self.generator.size} px), "
                              f"got {list(self.d_channels)}")


GAN_PRESETS: Dict[str, GANTrainConfig] = {
    "tiny-32": GANTrainConfig(generator=model_preset("tiny-32-generator"), batch_size=8),
    "small-64": GANTrainConfig(generator=model_preset("small-64-generator")),
    # the shipped default generator (faces-64): R1 gamma and the EMA ramp-up follow the
    # StyleGAN2-ADA heuristics for 64x64 (gamma = 2e-4 * res^2 / batch)
    "faces-64": GANTrainConfig(generator=model_preset("faces-64-generator"),
                               batch_size=32, lr=0.0025, r1_gamma=0.05, ema_kimg=10.0, ema_rampup=0.05,
                               checkpoint_every=200, sample_every=200, snapshot_kimg=10.0),
    "ffhq-256": GANTrainConfig(generator=model_preset("ffhq-256-generator"), path_length_weight=2.0),
}


def label_distribution(labels: torch.Tensor) -> torch.Tensor:
    """The joint distribution of label rows ``[N, c_dim]``: ``[K, c_dim + 1]``, each distinct row
    (sorted) followed by its frequency (what ``Generator.label_dist`` holds)."""
    rows, counts = torch.unique(labels.float(), dim=0, return_counts=True)
    return torch.cat([rows, (counts.float() / counts.sum())[:, None]], 1)


def conditional_generator(cfg: GeneratorConfig, names: List[str], labels: torch.Tensor) -> GeneratorConfig:
    """``cfg`` made conditional on ``labels`` ``[N, len(names)]`` (their columns and distinct rows)."""
    import dataclasses

    return dataclasses.replace(cfg, c_dim=len(names), label_names=tuple(names),
                               label_combos=int(len(torch.unique(labels.float(), dim=0))))


def gan_preset(name: str) -> GANTrainConfig:
    """Looks up a GAN training preset (``GAN_PRESETS``)."""
    try:
        return GAN_PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown GAN preset {name!r}; choose from {', '.join(sorted(GAN_PRESETS))}") from None


def _adam(params, lr: float, reg_every: int) -> torch.optim.Adam:
    # lazy regularisation: the reg term runs every k steps, so lr and betas are rescaled
    ratio = reg_every / (reg_every + 1) if reg_every > 0 else 1.0
    return torch.optim.Adam(params, lr=lr * ratio, betas=(0.0, 0.99 ** ratio))


class GANTrainer:
    """StyleGAN2 trainer: one process, or one of several under torchrun (each rank draws its own
    data, z and noise; gradients are averaged before each step).

    Args:
        cfg: training config.
        dataset: yields ``[3, size, size]`` tensors in [-1, 1].
        out: run folder.
        device: where the models train (weights are initialised on CPU first, so every device and
            every rank starts from the same numbers).
    """

    def __init__(self, cfg: GANTrainConfig, dataset, out: os.PathLike, device: Union[str, torch.device] = "cpu"):
        self.cfg, self.dataset, self.out = cfg, dataset, Path(out)
        self.device = torch.device(device)
        # multi-process (torchrun): every rank builds the same initial weights, draws its own data,
        # z and noise, and averages gradients before each optimiser step
        self.rank, self.world = rank_and_world()
        self.labels = self._dataset_labels(cfg, dataset)  # [N, c_dim] or None
        torch.manual_seed(cfg.seed)
        self.g = Generator(cfg.generator)
        self.d = Discriminator(cfg.generator, cfg.d_channels)
        self.g_ema = Generator(cfg.generator).eval().requires_grad_(False)
        if self.labels is not None and cfg.generator.label_combos:
            self.g.label_dist.copy_(label_distribution(self.labels))
        self.g_ema.load_state_dict(self.g.state_dict())
        for m in (self.g, self.d, self.g_ema):
            m.to(self.device)
        self.g_optim = _adam(self.g.parameters(), cfg.lr, cfg.g_reg_every if cfg.path_length_weight > 0 else 0)
        self.d_optim = _adam(self.d.parameters(), cfg.lr, cfg.d_reg_every)
        self.step = 0
        self.nimg = 0  # real images shown so far (all ranks); the batch size may change on --resume
        self.gen_data = torch.Generator().manual_seed(cfg.seed + 1 + 1000 * self.rank)
        self.gen_z = torch.Generator().manual_seed(cfg.seed + 2 + 1000 * self.rank)
        if self.rank:
            torch.manual_seed(cfg.seed + 3 + 1000 * self.rank)  # per-rank noise
        self.mean_path_length = torch.zeros(())

    @staticmethod
    def _dataset_labels(cfg: GANTrainConfig, dataset) -> Optional[torch.Tensor]:
        """All labels of a conditional run's dataset ``[N, c_dim]`` (fakes are labelled by drawing
        from them, i.e. from the data's joint label distribution), checked against the config."""
        g = cfg.generator
        if not g.conditional:
            return None
        table = getattr(dataset, "label_table", None)
        labels = table() if callable(table) else None
        if labels is None:
            raise TrainingError("a conditional generator needs a labelled dataset")
        if labels.ndim != 2 or labels.shape[1] != g.c_dim:
            raise TrainingError(f"the dataset has {labels.shape[-1]} label columns, the generator c_dim {g.c_dim}")
        names = getattr(dataset, "attribute_names", None)
        if g.label_names and names and tuple(names) != tuple(g.label_names):
            raise TrainingError(f"the dataset's label columns {list(names)} differ from the run's "
                                f"{list(g.label_names)}")
        combos = len(torch.unique(labels, dim=0)) if g.label_combos else 0
        if combos != g.label_combos:
            raise TrainingError(f"the dataset has {combos} distinct label rows, the run's config {g.label_combos}")
        return labels.float()

    @torch.no_grad()
    def init_generator(self, source: Generator) -> None:
        """Starts G and its EMA from another generator of the same synthesis architecture (a warm
        start; the discriminator and the optimisers start fresh). An unconditional source may start a
        conditional run: its mapping's first layer becomes the z half of the new one, whose label half
        starts at zero, so the new generator first draws exactly what the source drew."""
        own = self.g.state_dict()
        src = {k: v for k, v in source.state_dict().items() if k not in ("latent_avg", "label_dist")}
        if source.cfg.conditional and source.cfg.c_dim != self.cfg.generator.c_dim:
            raise TrainingError("the initial generator is conditioned on other labels than this run")
        missing = [k for k in own if k not in src and k not in ("latent_avg", "label_dist") and
                   not k.startswith("embed.")]
        unexpected = [k for k in src if k not in own]
        if missing or unexpected:
            raise TrainingError(f"the initial generator's layers differ from this run's: missing {missing[:4]}, "
                                f"unexpected {unexpected[:4]}")
        for key, value in src.items():
            target = own[key]
            if key == "style.1.weight" and value.shape[1] * 2 == target.shape[1] and value.shape[0] == target.shape[0]:
                # z half (rescaled: the equalized-lr gain 1/sqrt(fan_in) sees twice the fan-in); label half 0
                target.zero_()[:, :value.shape[1]].copy_(value * math.sqrt(target.shape[1] / value.shape[1]))
            elif value.shape != target.shape:
                raise TrainingError(f"the initial generator's {key} has shape {tuple(value.shape)}, this run's "
                                    f"{tuple(target.shape)}")
            else:
                target.copy_(value)
        self.g_ema.load_state_dict(own)  # ``own`` shares G's storage: G already holds the copy

    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    @property
    def global_batch(self) -> int:
        return self.cfg.batch_size * self.world

    @property
    def total_steps(self) -> int:
        """The step at which training ends, at the current batch size."""
        return self.step + max(0, math.ceil((self.cfg.kimg * 1000 - self.nimg) / self.global_batch))

    @property
    def kimg(self) -> float:
        return self.nimg / 1000

    def _optimize(self, optim: torch.optim.Optimizer, module: torch.nn.Module) -> None:
        average_gradients(module.parameters(), self.world)
        optim.step()

    # -- checkpoints ---------------------------------------------------------------------------
    def state(self) -> Dict:
        def rosinality(model):  # latent_avg lives at the top level in that format
            return {k: v for k, v in model.state_dict().items() if k != "latent_avg"}

        return {
            "g": rosinality(self.g), "d": self.d.state_dict(), "g_ema": rosinality(self.g_ema),
            "g_optim": self.g_optim.state_dict(), "d_optim": self.d_optim.state_dict(),
            # every checkpoint (periodic, Ctrl-C, final) carries the W mean of its own EMA generator,
            # so truncation works on whichever one a user picks up
            "latent_avg": self.g_ema.mean_latent(4096, seed=self.cfg.seed).detach().cpu(),
            "config": self.cfg.to_dict(), "step": self.step, "nimg": self.nimg,
            "rng": self._rng_states(), "world_size": self.world,
        }

    def _rng_states(self) -> List[Dict[str, torch.Tensor]]:
        mine = {"torch": torch.get_rng_state(), "data": self.gen_data.get_state(), "z": self.gen_z.get_state(),
                "mean_path_length": self.mean_path_length.detach().cpu().clone()}
        if self.device.type == "cuda":  # noise inputs are drawn on the device
            mine["cuda"] = torch.cuda.get_rng_state(self.device)
        return gather_from_ranks(mine, self.world)  # collective: every rank calls save()

    def save(self) -> Path:
        """Writes the checkpoint atomically (rank 0; in multi-process runs every rank must call it)."""
        return write_checkpoint(self.state(), self.checkpoint_path, self.rank, self.world)

    def load(self, path: Optional[os.PathLike] = None) -> Dict:
        """Restores the run from ``path`` (default RUN/checkpoint.pt); returns the checkpoint read."""
        path = Path(path) if path is not None else self.checkpoint_path
        ck = read_checkpoint(path, ("rng", "g_optim", "config"), "train-gan", self.world)
        try:  # compared as configs: fields added since the checkpoint was written take their defaults
            saved = generator_config_from_dict(ck["config"].get("generator") or {})
        except (ConfigError, TypeError) as e:
            raise TrainingError(f"{path}: the checkpoint's generator config is unreadable ({e})") from None
        if saved != self.cfg.generator:
            raise TrainingError(f"{path}: the checkpoint's generator config differs from this run's")
        latent_avg = ck["latent_avg"].reshape(-1)
        self.g.load_state_dict({**ck["g"], "latent_avg": self.g.latent_avg})
        self.d.load_state_dict(ck["d"])
        self.g_ema.load_state_dict({**ck["g_ema"], "latent_avg": latent_avg})
        self.g_optim.load_state_dict(ck["g_optim"])
        self.d_optim.load_state_dict(ck["d_optim"])
        self.step = int(ck["step"])
        # checkpoints from before the batch size could change count images as steps * batch
        self.nimg = int(ck.get("nimg", self.step * ck["config"]["batch_size"] * int(ck.get("world_size", 1))))
        rng = ck["rng"][self.rank]
        torch.set_rng_state(rng["torch"])
        self.gen_data.set_state(rng["data"])
        self.gen_z.set_state(rng["z"])
        self.mean_path_length = rng["mean_path_length"]
        if self.device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        return ck

    # -- one step ------------------------------------------------------------------------------
    def _real_batch(self) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Real images ``[B, 3, H, W]`` and, when conditional, their labels ``[B, c_dim]``."""
        idx = torch.randint(len(self.dataset), (self.cfg.batch_size,), generator=self.gen_data)
        img = torch.stack([item_image(self.dataset[int(i)]) for i in idx]).to(self.device, non_blocking=True)
        c = self.labels[idx].to(self.device) if self.labels is not None else None
        return img, c

    def _fake_labels(self, batch: int) -> Optional[torch.Tensor]:
        """Labels of fakes: rows of real labels drawn at random (the data's joint distribution)."""
        if self.labels is None:
            return None
        idx = torch.randint(len(self.labels), (batch,), generator=self.gen_z)
        return self.labels[idx].to(self.device)

    def _fake(self, batch: int, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        g = self.cfg.generator
        z = torch.randn(2, batch, self.g.z_dim, generator=self.gen_z).to(self.device)
        mix = torch.rand((), generator=self.gen_z).item() < self.cfg.mixing
        inject = int(torch.randint(1, g.num_ws, (), generator=self.gen_z))
        styles = [z[0], z[1]] if mix else [z[0]]
        img, _ = self.g(styles, inject_index=inject, randomize_noise=True, c=c)
        return img

    def train_step(self) -> Dict[str, float]:
        cfg = self.cfg
        self.g.train()
        self.d.train()
        logs: Dict[str, float] = {}
        with record_function("gan/data"):
            real, c_real = self._real_batch()
        # discriminator
        self.g.requires_grad_(False)
        self.d.requires_grad_(True)
        with torch.no_grad(), self._amp(), record_function("gan/d_step/g_forward"):
            c_fake = self._fake_labels(cfg.batch_size)
            fake = self._fake(cfg.batch_size, c_fake)
        with record_function("gan/d_step/d_forward"), self._amp():
            d_loss = (F.softplus(self.d(fake, c_fake).float()).mean()
                      + F.softplus(-self.d(real, c_real).float()).mean())
        self._check(d_loss, "discriminator loss")
        self.d.zero_grad(set_to_none=True)
        with record_function("gan/d_step/d_backward"):
            d_loss.backward()
        with record_function("gan/optimizer"):
            self._optimize(self.d_optim, self.d)
        logs["loss/d"] = d_loss.item()
        if cfg.d_reg_every > 0 and self.step % cfg.d_reg_every == 0:
            with record_function("gan/r1"):
                logs["loss/r1"] = self._r1_step(real, c_real)
        if self.nimg < cfg.d_warmup_kimg * 1000:  # D warm-up: G and its EMA stay as they are
            self.step += 1
            self.nimg += self.global_batch
            return logs
        # generator
        self.g.requires_grad_(True)
        self.d.requires_grad_(False)
        with record_function("gan/g_step/forward"), self._amp():
            c_fake = self._fake_labels(cfg.batch_size)
            g_loss = F.softplus(-self.d(self._fake(cfg.batch_size, c_fake), c_fake).float()).mean()
        self._check(g_loss, "generator loss")
        self.g.zero_grad(set_to_none=True)
        with record_function("gan/g_step/backward"):
            g_loss.backward()
        with record_function("gan/optimizer"):
            self._optimize(self.g_optim, self.g)
        logs["loss/g"] = g_loss.item()
        if cfg.path_length_weight > 0 and self.step % cfg.g_reg_every == 0:
            with record_function("gan/path_length"):
                logs["loss/path_length"] = self._path_length_step()
        with record_function("gan/ema"):
            self._update_ema()
        self.step += 1
        self.nimg += self.global_batch
        return logs

    def _amp(self):
        """bfloat16 autocast for G and D passes (``cfg.amp``); R1 and path length stay float32."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.amp == "bf16")

    def _r1_step(self, real: torch.Tensor, c_real: Optional[torch.Tensor]) -> float:
        """Lazy R1 on real images (float32: its double backward needs the precision)."""
        cfg = self.cfg
        real.requires_grad_(True)
        pred = self.d(real, c_real)
        grad, = torch.autograd.grad(pred.sum(), real, create_graph=True)
        r1 = grad.pow(2).flatten(1).sum(1).mean()
        self._check(r1, "R1 penalty")
        self.d.zero_grad(set_to_none=True)
        (cfg.r1_gamma / 2 * r1 * cfg.d_reg_every + 0 * pred[0, 0]).backward()
        self._optimize(self.d_optim, self.d)
        return r1.item()

    def _path_length_step(self) -> float:
        cfg = self.cfg
        batch = max(1, cfg.batch_size // 2)
        z = torch.randn(batch, self.g.z_dim, generator=self.gen_z).to(self.device)
        img, ws = self.g([z], randomize_noise=True, return_latents=True, c=self._fake_labels(batch))
        noise = torch.randn(img.shape, generator=self.gen_z).to(self.device) / math.sqrt(img.shape[2] * img.shape[3])
        grad, = torch.autograd.grad((img * noise).sum(), ws, create_graph=True)
        lengths = grad.pow(2).sum(2).mean(1).sqrt()
        prev = self.mean_path_length.to(lengths.device)
        mean = prev + 0.01 * (lengths.mean().detach() - prev)
        penalty = (lengths - mean).pow(2).mean()
        self._check(penalty, "path-length penalty")
        self.g.zero_grad(set_to_none=True)
        (cfg.path_length_weight * cfg.g_reg_every * penalty + 0 * img[0, 0, 0, 0]).backward()
        self._optimize(self.g_optim, self.g)
        self.mean_path_length = mean.cpu()
        return penalty.item()

    @torch.no_grad()
    def _update_ema(self) -> None:
        half_life = self.cfg.ema_kimg * 1000
        if self.cfg.ema_rampup > 0:
            half_life = min(half_life, (self.nimg + self.global_batch) * self.cfg.ema_rampup)
        decay = 0.5 ** (self.global_batch / max(half_life, 1e-8))
        for pe, p in zip(self.g_ema.parameters(), self.g.parameters()):
            pe.lerp_(p, 1 - decay)
        for be, b in zip(self.g_ema.buffers(), self.g.buffers()):
            be.copy_(b)

    @torch.no_grad()
    def sample_grid(self, n: int = 16) -> torch.Tensor:
        """EMA samples for fixed z (seeded by the config) as one grid ``[3, H, W]`` in [0, 1]."""
        gen = torch.Generator().manual_seed(self.cfg.seed)
        z = torch.randn(n, self.g.z_dim, generator=gen)
        w = self.g_ema.sample_w(z.to(self.device), generator=gen)
        img = self.g_ema.synthesis(w[:, None].expand(-1, self.g_ema.num_ws, -1))
        return tile(img.float().cpu(), int(math.ceil(math.sqrt(n))))

    def _snapshot_due(self) -> bool:
        every = self.cfg.snapshot_kimg * 1000
        if every <= 0:
            return False
        # crossed a multiple of the interval during this step
        return self.nimg // every > (self.nimg - self.global_batch) // every

    def save_snapshot(self) -> Path:
        """Writes the EMA generator (with its W mean) as ``RUN/snapshots/g_ema-NNNNNNNNN.safetensors``
        (NNNNNNNNN: real images shown so far), the files an FID curve is computed from."""
        from ..checkpoints.io import save_model

        self.g_ema.latent_avg.copy_(self.g_ema.mean_latent(4096, seed=self.cfg.seed))
        return save_model(self.g_ema, self.out / "snapshots" / f"g_ema-{self.nimg:09d}.safetensors")

    def _check(self, value: torch.Tensor, what: str) -> None:
        if not torch.isfinite(value).all():
            raise TrainingError(f"{what} became {value.item()} at step {self.step}; stopped. The last good "
                                f"checkpoint is {self.checkpoint_path}")

    # -- the loop ------------------------------------------------------------------------------
    def fit(self, progress: bool = True) -> Path:
        """Trains until ``cfg.kimg``; checkpoints periodically, at the end and on Ctrl-C or SIGTERM
        (single process; with several, the last periodic checkpoint is the resume point). Rank 0 logs."""
        lead = self.rank == 0
        self.out.mkdir(parents=True, exist_ok=True)
        stop = StopRequests() if self.world == 1 else None
        run = RunLog(self.out, self.cfg.to_dict(), self.step, lead,
                     ("train-gan", "kimg", round(self.cfg.kimg, 3), round(self.kimg, 3)) if progress else None)
        try:
            t0, start = time.perf_counter(), self.nimg
            while self.nimg < self.cfg.kimg * 1000:
                logs = self.train_step()
                if lead:
                    logs.update(kimg=self.kimg, img_per_s=(self.nimg - start) / max(time.perf_counter() - t0, 1e-9))
                    run.scalars(self.step, logs)
                    if self.step % self.cfg.sample_every == 0:
                        run.image("samples", self.sample_grid(), self.step)
                    run.progress(round(self.kimg, 3), {k.split("/")[-1]: f"{v:.3f}" for k, v in logs.items()
                                                       if k.startswith("loss")})
                if self.step % self.cfg.checkpoint_every == 0:
                    self.save()
                if lead and self._snapshot_due():
                    self.save_snapshot()
                if stop is not None and stop.requested:
                    log.warning("stopped at step %d: saving %s", self.step, self.checkpoint_path)
                    self.save()
                    raise KeyboardInterrupt
            self._check_ranks_agree()
            if lead:
                run.image("samples", self.sample_grid(), self.step)
            return self.save()
        except KeyboardInterrupt:
            if stop is not None and not stop.requested:  # a signal we did not handle: mid-step state
                log.warning("interrupted mid-step: %s keeps the last saved step", self.checkpoint_path)
            raise
        finally:
            if stop is not None:
                stop.restore()
            run.close()

    def _check_ranks_agree(self) -> None:
        """Multi-process runs must hold identical weights on every rank (same init, averaged grads)."""
        if self.world == 1:
            return
        total = torch.stack([p.detach().double().sum() for p in self.g_ema.parameters()]).sum().view(1)
        everyone = [torch.zeros_like(total) for _ in range(self.world)]
        dist.all_gather(everyone, total)
        if not all(torch.equal(everyone[0], t) for t in everyone):
            raise TrainingError(f"ranks diverged: generator checksums {[t.item() for t in everyone]}")

