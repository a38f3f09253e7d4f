"""The peer encoders in this framework: pSp (Richardson et al. 2021) and e4e (Tov et al. 2021).

Both share the Style Transformer's IR-SE backbone and FPN laterals (same key names) and map features
to codes with ``GradualStyleBlock`` heads (stride-2 3x3 convs with leaky ReLU down to 1x1, then an
equalized linear layer), three coarse heads on c3 (1/16), four middle heads on p2 (1/8), the rest on
p1 (1/4):

* pSp (``GradualStyleEncoder``): one head per W+ row, ``codes[:, i] = head_i(features)``;
* e4e (``Encoder4Editing``): a single w from head 0, repeated, plus per-row offsets
  ``codes[:, i] = head_0(c3) + head_i(features)`` for i >= 1 (all rows at inference).

Parameter names follow the official checkpoints (``encoder.*``, ``decoder.*``; ``latent_avg`` added
to the codes as with ``start_from_latent_avg``).
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from ..config import PSPConfig
from .encoder import backbone_features, ir_se_backbone
from .stylegan2 import EqualLinear
from .stylegan3 import build_generator


class GradualStyleBlock(nn.Module):
    """``[N, C, s, s]`` -> ``[N, out]``: log2(s) stride-2 convs (leaky ReLU 0.01) to 1x1, then EqualLinear."""

    def __init__(self, in_ch: int, out_ch: int, spatial: int):
        super().__init__()
        n_pools = int(math.log2(spatial))
        layers: List[nn.Module] = [nn.Conv2d(in_ch, out_ch, 3, 2, 1), nn.LeakyReLU()]
        for _ in range(n_pools - 1):
            layers += [nn.Conv2d(out_ch, out_ch, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_ch, out_ch, lr_mul=1.0)
        self.out_ch = out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).reshape(-1, self.out_ch))


class GradualStyleEncoder(nn.Module):
    """pSp / e4e encoder: img ``[N, 3, S, S]`` -> codes ``[N, n_styles, d]`` (before ``latent_avg``)."""

    def __init__(self, cfg: PSPConfig):
        super().__init__()
        e = cfg.encoder
        self.cfg, self.progressive = cfg, cfg.arch == "e4e"
        self.input_layer, self.body = ir_se_backbone(e)
        self.coarse_ind, self.middle_ind = cfg.coarse_ind, cfg.middle_ind
        sizes = (e.input_size // 16, e.input_size // 8, e.input_size // 4)
        self.styles = nn.ModuleList([
            GradualStyleBlock(e.d_model, e.d_model,
                              sizes[0] if i < self.coarse_ind else sizes[1] if i < self.middle_ind else sizes[2])
            for i in range(e.n_styles)])
        self.latlayer1 = nn.Conv2d(e.stage_channels[2], e.d_model, 1)
        self.latlayer2 = nn.Conv2d(e.stage_channels[1], e.d_model, 1)
        self.n_active = e.n_styles  # e4e progressive training: rows past this copy w0 (inference: all rows)

    @staticmethod
    def _upsample_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        c1, c2, c3 = backbone_features(self.input_layer, self.body, self.cfg.encoder.feature_indices, img)
        p2 = self._upsample_add(c3, self.latlayer1(c2))
        p1 = self._upsample_add(p2, self.latlayer2(c1))
        feats = [c3 if i < self.coarse_ind else p2 if i < self.middle_ind else p1 for i in range(len(self.styles))]
        if not self.progressive:
            return torch.stack([head(f) for head, f in zip(self.styles, feats)], 1)
        w0 = self.styles[0](c3)
        deltas = [torch.zeros_like(w0)] + [head(f) if i < self.n_active else torch.zeros_like(w0)
                                           for i, (head, f) in enumerate(zip(self.styles[1:], feats[1:]), start=1)]
        return w0[:, None] + torch.stack(deltas, 1)

    def deltas(self, img: torch.Tensor) -> torch.Tensor:
        """e4e: the per-row offsets ``[N, n_styles - 1, d]`` from w0 (what the delta regulariser penalises)."""
        codes = self(img)
        return codes[:, 1:] - codes[:, :1]


class PSPModel(nn.Module):
    """pSp or e4e inversion model: encoder + StyleGAN2 decoder (``latent_avg`` in the decoder).

    Args:
        cfg: ``arch`` (``psp`` / ``e4e``), encoder backbone and generator.
    """

    def __init__(self, cfg: PSPConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = GradualStyleEncoder(cfg)
        self.decoder = build_generator(cfg.generator)

    def encode(self, img: torch.Tensor) -> torch.Tensor:
        """img ``[N, C, S, S]`` in [-1, 1] -> ws ``[N, n_styles, w_dim]`` (``latent_avg`` added)."""
        e = self.cfg.encoder
        if img.ndim != 4 or tuple(img.shape[1:]) != (e.input_nc, *e.input_shape):
            raise ValueError(f"encoder input must be [N, {e.input_nc}, {e.input_shape[0]}, {e.input_shape[1]}], "
                             f"got {tuple(img.shape)}")
        return self.encoder(img) + self.decoder.latent_avg

    def forward(self, img: torch.Tensor, randomize_noise: bool = False,
                noise: Optional[list] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        ws = self.encode(img)
        return self.decoder.synthesis(ws[:, : self.decoder.num_ws], noise=noise, randomize_noise=randomize_noise), ws
