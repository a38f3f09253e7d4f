"""Inversion quality on labelled images: PSNR, MSE, LPIPS and attribute agreement.

Reconstructions are judged as the 8-bit images a user gets (quantised like the written PNGs),
against the inputs at the encoder's input size. Attribute agreement: the image attribute
classifier's verdict on each reconstruction (probability > 0.5) against the input's ground-truth
label, counted over every (image, attribute) pair; the classifier's agreement with the labels on the
inputs themselves is reported beside it as its own ceiling.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional

import numpy as np
import torch

from ..data.datasets import item_image
from ..data.images import as_written, pool_to_size
from ..models.classifier import AttributeClassifier

log = logging.getLogger(__name__)


@dataclass
class InversionReport:
    """Result of ``evaluate_inversion`` (means over images; agreements are fractions in [0, 1])."""

    n_images: int
    psnr: float
    mse: float
    lpips: Optional[float] = None
    lpips_net: str = ""
    agreement: Dict[str, float] = field(default_factory=dict)
    input_agreement: Dict[str, float] = field(default_factory=dict)

    @property
    def mean_agreement(self) -> float:
        """Share of all (image, attribute) values the classifier gives the reconstruction right."""
        return float(np.mean(list(self.agreement.values()))) if self.agreement else float("nan")

    def to_dict(self) -> Dict:
        return {"n_images": self.n_images, "psnr": self.psnr, "mse": self.mse, "lpips": self.lpips,
                "lpips_net": self.lpips_net, "attribute_agreement": self.mean_agreement,
                "agreement": self.agreement, "input_agreement": self.input_agreement}

    def to_markdown(self) -> str:
        lines = [f"{self.n_images} images: PSNR {self.psnr:.2f} dB, MSE {self.mse:.5f} (images in [-1, 1])"
                 + (f", LPIPS {self.lpips:.4f} ({self.lpips_net})" if self.lpips is not None else "")]
        if self.agreement:
            lines += ["", "| attribute | reconstruction agrees with the label | input agrees (classifier ceiling) |",
                      "|---|---:|---:|"]
            for a, v in self.agreement.items():
                lines.append(f"| {a} | {100 * v:.1f}% | {100 * self.input_agreement.get(a, float('nan')):.1f}% |")
            lines.append(f"\nattribute agreement over all values: {100 * self.mean_agreement:.1f}%")
        return "\n".join(lines)


def psnr_db(mse: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of per-image MSEs of images in [-1, 1] (peak-to-peak 2)."""
    return 10 * torch.log10(4.0 / mse.clamp_min(1e-12))


@torch.no_grad()
def evaluate_inversion(pipe, dataset, classifier: Optional[AttributeClassifier] = None, lpips=None,
                       n: Optional[int] = None, batch_size: int = 32, progress: bool = False) -> InversionReport:
    """Inverts images and measures the reconstructions.

    Args:
        pipe: an ``InversionPipeline`` with an encoder.
        dataset: ``ImageFolderDataset`` (with labels for attribute agreement): ``[3, S, S]`` in [-1, 1].
        classifier: image attribute classifier (judges the attributes it shares with the labels).
        lpips: an ``LPIPS`` module (optional).
        n: use the first ``n`` images (default: all).
        batch_size: images per forward pass.
        progress: show a progress bar.

    Returns:
        ``InversionReport``.
    """
    from tqdm import tqdm

    total = len(dataset) if n is None else min(n, len(dataset))
    names: List[str] = list(getattr(dataset, "attribute_names", []))
    judged = [a for a in (classifier.attributes if classifier is not None else []) if a in names]
    col = [names.index(a) for a in judged]
    idx = [classifier.attributes.index(a) for a in judged]
    mses: List[torch.Tensor] = []
    lp: List[torch.Tensor] = []
    agree = np.zeros(len(judged))
    agree_in = np.zeros(len(judged))
    for i in tqdm(range(0, total, batch_size), desc="evaluate", unit="batch", disable=not progress):
        items = [dataset[j] for j in range(i, min(i + batch_size, total))]
        x = torch.stack([item_image(t) for t in items])
        res = pipe.invert(list(x), batch_size=batch_size)
        y = res.images
        y = pool_to_size(y, x.shape[-1])
        y = as_written(y)
        mses.append((y - x).pow(2).flatten(1).mean(1))
        if lpips is not None:
            dev = next(lpips.parameters()).device
            lp.append(lpips(y.to(dev), x.to(dev)).cpu())
        if judged:
            labels = torch.stack([t[1] for t in items])[:, col] > 0.5
            agree += ((classifier.predict(y)[:, idx] > 0.5) == labels).float().sum(0).numpy()
            agree_in += ((classifier.predict(x)[:, idx] > 0.5) == labels).float().sum(0).numpy()
    mse = torch.cat(mses)
    return InversionReport(
        n_images=total, psnr=float(psnr_db(mse).mean()), mse=float(mse.mean()),
        lpips=float(torch.cat(lp).mean()) if lp else None, lpips_net=getattr(lpips, "net", "") if lpips else "",
        agreement={a: float(v / total) for a, v in zip(judged, agree)},
        input_agreement={a: float(v / total) for a, v in zip(judged, agree_in)})
