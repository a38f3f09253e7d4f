"""Optimisation-based inversion and PTI: the baselines, and a refinement for any encoder's result.

``optimize_latents``: the StyleGAN2 projector's recipe on CPU-sized budgets: Adam on the code (W: one
w per image repeated over the rows; W+: every row free) and, optionally, on per-image noise maps,
minimising ``mse_lambda * MSE + lpips_lambda * LPIPS + noise_lambda * noise autocorrelation``; the
learning rate ramps up over the first 5% of the steps and down (cosine) over the last 25%; noise maps
are renormalised to zero mean and unit variance after each step (Karras et al. 2020, Appendix D).
Start: the encoder's codes when given (refinement), else ``latent_avg``.

``pivotal_tuning``: PTI (Roich et al. 2022): with the code fixed (the pivot), fine-tune a copy of the
generator's synthesis weights on ``MSE + LPIPS`` so the pivot reproduces the image; one tuned
generator for the batch.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

from .config import _ConfigMixin
from .data.images import pool_to_size


@dataclass(frozen=True)
class OptimizeConfig(_ConfigMixin):
    """Settings of ``optimize_latents`` and ``pivotal_tuning``.

    Attributes:
        space: ``"wplus"`` (every row free) or ``"w"`` (one w per image).
        steps: optimisation steps on the code.
        lr: Adam's peak learning rate for the code.
        mse_lambda, lpips_lambda: image loss weights.
        optimize_noise: also fit per-image noise maps (with the autocorrelation penalty).
        noise_lambda: weight of the noise regulariser.
        pti_steps: PTI steps after the code is fixed (0: none).
        pti_lr: Adam learning rate for the generator's weights in PTI.
    """

    space: str = "wplus"
    steps: int = 200
    lr: float = 0.05
    mse_lambda: float = 1.0
    lpips_lambda: float = 1.0
    optimize_noise: bool = True
    noise_lambda: float = 1e5
    pti_steps: int = 0
    pti_lr: float = 3e-4

    def __post_init__(self):
        if self.space not in ("w", "wplus"):
            raise ValueError(f"space must be 'w' or 'wplus', got {self.space!r}")
        if self.steps < 0 or self.pti_steps < 0:
            raise ValueError("steps must be >= 0")


def noise_regularization(noises: List[torch.Tensor]) -> torch.Tensor:
    """StyleGAN2 projector's penalty: squared autocorrelation at one-pixel shifts, at every scale down to 8x8."""
    loss = noises[0].new_zeros(()) if noises else torch.zeros(())
    for n in noises:
        while True:
            loss = loss + (n * torch.roll(n, 1, dims=3)).mean().pow(2) + (n * torch.roll(n, 1, dims=2)).mean().pow(2)
            if n.shape[-1] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return loss


def _lr_at(step: int, steps: int, peak: float) -> float:
    """The projector's schedule: linear ramp-up over the first 5%, cosine ramp-down over the last 25%."""
    t = (step + 0.5) / max(steps, 1)
    down = min(1.0, (1.0 - t) / 0.25)
    return peak * (0.5 - 0.5 * math.cos(down * math.pi)) * min(1.0, t / 0.05)


def _image_loss(generator, ws, noises, target, cfg: OptimizeConfig, lpips) -> Tuple[torch.Tensor, torch.Tensor]:
    img = pool_to_size(generator.synthesis(ws, noise=noises), tuple(target.shape[-2:]))
    loss = cfg.mse_lambda * (img - target).pow(2).flatten(1).mean(1)
    if lpips is not None and cfg.lpips_lambda > 0:
        loss = loss + cfg.lpips_lambda * lpips(img, target)
    return loss, img


def optimize_latents(generator, target: torch.Tensor, cfg: OptimizeConfig = OptimizeConfig(),
                     init_ws: Optional[torch.Tensor] = None, lpips=None, progress: bool = False
                     ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
    """Fits codes (and noise) so that the generator reproduces ``target``.

    Args:
        generator: frozen StyleGAN2 (its weights are not changed).
        target: ``[N, 3, S, S]`` in [-1, 1] (S may be smaller than the generator's size: outputs are pooled).
        cfg: settings.
        init_ws: ``[N, num_ws, w_dim]`` start (e.g. the encoder's codes); default ``latent_avg``.
        lpips: an ``LPIPS`` module (None: MSE only).
        progress: progress bar.

    Returns:
        (ws ``[N, num_ws, w_dim]``, per-layer noise maps ``[N, 1, H, W]``), detached, on the target's device.
    """
    from tqdm import tqdm

    n, dev = target.shape[0], target.device
    g = generator
    if init_ws is None:
        init_ws = g.latent_avg.detach().to(dev).view(1, 1, -1).expand(n, g.num_ws, -1)
    init_ws = init_ws[:, : g.num_ws].detach().to(dev)
    w = (init_ws.mean(1, keepdim=True) if cfg.space == "w" else init_ws).clone().requires_grad_(True)
    # StyleGAN3 has no noise inputs: the list is empty
    noises = [t.detach().to(dev).expand(n, -1, -1, -1).clone() for t in g.stored_noise()]
    params = [w]
    if cfg.optimize_noise:
        for t in noises:
            t.requires_grad_(True)
        params += noises
    opt = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999))
    req = [p.requires_grad for p in g.parameters()]
    g.requires_grad_(False)
    try:
        for step in tqdm(range(cfg.steps), desc="optimise", unit="step", disable=not progress):
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, cfg.steps, cfg.lr)
            ws = w.expand(-1, g.num_ws, -1) if cfg.space == "w" else w
            loss, _ = _image_loss(g, ws, noises, target, cfg, lpips)
            total = loss.sum()
            if cfg.optimize_noise and cfg.noise_lambda > 0:
                total = total + cfg.noise_lambda * noise_regularization(noises)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            if cfg.optimize_noise:
                with torch.no_grad():
                    for t in noises:
                        t.sub_(t.mean(dim=(1, 2, 3), keepdim=True))
                        t.div_(t.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-8))
    finally:
        for p, r in zip(g.parameters(), req):
            p.requires_grad_(r)
    ws = (w.expand(-1, g.num_ws, -1) if cfg.space == "w" else w).detach()
    return ws.contiguous(), [t.detach() for t in noises]


def pivotal_tuning(generator, target: torch.Tensor, ws: torch.Tensor, noises: Optional[List[torch.Tensor]] = None,
                   cfg: OptimizeConfig = OptimizeConfig(pti_steps=100), lpips=None, progress: bool = False):
    """PTI: a copy of ``generator`` whose synthesis weights are tuned so that ``ws`` renders ``target``.

    Returns:
        The tuned generator (eval mode, no gradients); ``generator`` itself is unchanged.
    """
    from tqdm import tqdm

    tuned = copy.deepcopy(generator).to(target.device).train()
    tuned.requires_grad_(False)
    params = [p for name, p in tuned.named_parameters() if not name.startswith("style.")]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.pti_lr)
    ws = ws[:, : tuned.num_ws].detach().to(target.device)
    for _ in tqdm(range(cfg.pti_steps), desc="pti", unit="step", disable=not progress):
        loss, _ = _image_loss(tuned, ws, noises, target, cfg, lpips)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
    return tuned.eval().requires_grad_(False)
