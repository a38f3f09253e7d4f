"""Training the image attribute classifier on a labelled image folder."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Dict

import torch
import torch.nn.functional as F

from ..config import AttributeClassifierConfig, _ConfigMixin
from ..models.classifier import AttributeClassifier
from .common import TrainingError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassifierTrainConfig(_ConfigMixin):
    """Classifier training run.

    Attributes:
        model: the architecture (its ``attributes`` are filled from the label file).
        batch_size, lr, weight_decay, epochs: AdamW with a cosine schedule.
        noise_std: Gaussian pixel noise added to training images (robustness to generator artefacts).
        max_shift: random translation in pixels (circular), for the same reason.
        seed: shuffling and augmentation.
    """

    model: AttributeClassifierConfig = field(default_factory=lambda: AttributeClassifierConfig(attributes=("a",)))
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    epochs: float = 2.0
    noise_std: float = 0.05
    max_shift: int = 2
    seed: int = 0


def _batch(dataset, idx) -> tuple:
    items = [dataset[int(i)] for i in idx]
    return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])


@torch.no_grad()
def evaluate_classifier(model: AttributeClassifier, dataset, batch_size: int = 256) -> Dict[str, float]:
    """Per-attribute accuracy (threshold 0.5) on a labelled dataset yielding ``(img, labels)``."""
    correct = torch.zeros(len(model.attributes))
    n = 0
    for i in range(0, len(dataset), batch_size):
        img, y = _batch(dataset, range(i, min(i + batch_size, len(dataset))))
        pred = model.predict(img) > 0.5
        correct += (pred == (y > 0.5)).float().sum(0)
        n += len(y)
    return {a: float(c / max(n, 1)) for a, c in zip(model.attributes, correct)}


def train_classifier(cfg: ClassifierTrainConfig, train_set, val_set=None, progress: bool = True
                     ) -> tuple:
    """Trains an ``AttributeClassifier``.

    Args:
        cfg: run config; ``cfg.model.attributes`` must match the datasets' label columns.
        train_set, val_set: datasets yielding ``(img [3, H, W] in [-1, 1], labels [A] in {0, 1})``.
        progress: show a progress bar.

    Returns:
        (model in eval mode, validation accuracy per attribute or ``{}``).
    """
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = AttributeClassifier(cfg.model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = max(1, math.ceil(cfg.epochs * len(train_set) / cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.1)
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=steps, desc="train-classifier", unit="step")
    model.train()
    order = torch.empty(0, dtype=torch.long)
    for step in range(steps):
        if len(order) < cfg.batch_size:
            order = torch.cat([order, torch.randperm(len(train_set), generator=gen)])
        idx, order = order[:cfg.batch_size], order[cfg.batch_size:]
        img, y = _batch(train_set, idx)
        if cfg.max_shift > 0:
            dx, dy = torch.randint(-cfg.max_shift, cfg.max_shift + 1, (2,), generator=gen).tolist()
            img = torch.roll(img, shifts=(dy, dx), dims=(2, 3))
        if cfg.noise_std > 0:
            img = img + cfg.noise_std * torch.randn(img.shape, generator=gen)
        loss = F.binary_cross_entropy_with_logits(model(img), y)
        if not torch.isfinite(loss):
            raise TrainingError(f"classifier loss became {loss.item()} at step {step}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}")
    if bar is not None:
        bar.close()
    model.eval().requires_grad_(False)
    return model, (evaluate_classifier(model, val_set) if val_set is not None else {})
