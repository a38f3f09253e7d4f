"""Image attribute classifier: the project's judge of what an image shows.

A small CNN trained on labelled images (by default the rendered faces and their ground-truth
attributes). Metrics use it to score generators (attribute frequencies of samples), encoders
(attribute agreement of reconstructions) and edits, independently of any latent code.
"""

from __future__ import annotations

from typing import List

import torch
import torch.nn.functional as F
from torch import nn

from ..config import AttributeClassifierConfig


class AttributeClassifier(nn.Module):
    """``img [N, 3, H, W]`` in [-1, 1] -> logits ``[N, len(cfg.attributes)]``."""

    def __init__(self, cfg: AttributeClassifierConfig):
        super().__init__()
        self.cfg = cfg
        layers: List[nn.Module] = []
        cin = 3
        for c in cfg.channels:
            layers += [nn.Conv2d(cin, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.Conv2d(c, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            cin = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, len(cfg.attributes))

    @property
    def attributes(self) -> List[str]:
        return list(self.cfg.attributes)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f"images must be [N, 3, H, W], got {tuple(img.shape)}")
        return self.head(self.embed(img))

    def embed(self, img: torch.Tensor) -> torch.Tensor:
        """The pooled penultimate features ``[N, channels[-1]]`` (what the logits are a linear map of)."""
        if img.shape[-2:] != (self.cfg.size, self.cfg.size):
            img = F.interpolate(img, size=(self.cfg.size, self.cfg.size), mode="bilinear", align_corners=False,
                                antialias=True)
        return self.features(img).mean(dim=(2, 3))

    @torch.no_grad()
    def predict(self, img: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Probabilities ``[N, A]`` in [0, 1] (eval mode, no gradients, batched)."""
        was_training = self.training
        self.eval()
        device = next(self.parameters()).device
        out = [torch.sigmoid(self(img[i:i + batch_size].to(device).float())).cpu()
               for i in range(0, len(img), batch_size)]
        self.train(was_training)
        return torch.cat(out) if out else torch.empty(0, len(self.cfg.attributes))
