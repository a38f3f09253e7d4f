"""Generator quality: FID against a reference folder, attribute frequencies of samples and, for a
generator distilled from the renderer, PSNR against the paired renders.

Frequencies are judged by the image attribute classifier on both sides (samples and reference
images), so the classifier's own small errors cancel in the comparison; the reference's ground-truth
label rates (from its ``attributes.csv``) are reported beside them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch

from ..data.images import preprocess, to_uint8, uint8_to_input
from ..models.classifier import AttributeClassifier
from ..models.stylegan2 import Generator
from .fid import InceptionFeatures, folder_statistics, frechet_distance, statistics
from ..utils import PathLike

log = logging.getLogger(__name__)


@dataclass
class GeneratorReport:
    """Result of ``evaluate_generator``; frequencies are fractions in [0, 1] per attribute."""

    n_samples: int
    fid: Optional[float] = None
    # Frechet distance in the attribute classifier's pooled penultimate features: a second distance
    # that uses no ImageNet/Inception features (it sees what the attribute classifier sees)
    fd_classifier: Optional[float] = None
    sample_rates: Dict[str, float] = field(default_factory=dict)
    reference_rates: Dict[str, float] = field(default_factory=dict)
    label_rates: Dict[str, float] = field(default_factory=dict)
    # a generator distilled from the renderer: PSNR of G(z, c) against render(factors(z, c)), dB
    # (mean of per-image PSNR) over ``paired_n`` draws of a seed that training never used
    paired_psnr: Optional[float] = None
    paired_n: int = 0

    @property
    def max_rate_gap(self) -> float:
        """Largest |sample - reference| frequency gap, in percentage points."""
        gaps = [abs(self.sample_rates[a] - self.reference_rates[a]) for a in self.sample_rates]
        return 100 * max(gaps) if gaps else float("nan")

    def to_markdown(self) -> str:
        lines = [f"FID ({self.n_samples} samples): {self.fid:.2f}" if self.fid is not None else
                 f"{self.n_samples} samples"]
        if self.paired_psnr is not None:
            lines.append(f"PSNR against the paired renders ({self.paired_n} draws): {self.paired_psnr:.2f} dB")
        if self.fd_classifier is not None:
            lines.append(f"Frechet distance in the attribute classifier's features: {self.fd_classifier:.4f}")
        if self.sample_rates:
            lines += ["", "| attribute | samples | reference (classifier) | reference (labels) | gap (points) |",
                      "|---|---:|---:|---:|---:|"]
            for a, r in self.sample_rates.items():
                ref = self.reference_rates.get(a, float("nan"))
                lab = self.label_rates.get(a)
                lines.append(f"| {a} | {100 * r:.1f}% | {100 * ref:.1f}% | "
                             f"{'' if lab is None else f'{100 * lab:.1f}%'} | {100 * abs(r - ref):.1f} |")
            lines.append(f"\nlargest gap: {self.max_rate_gap:.1f} points")
        return "\n".join(lines)


@torch.no_grad()
def _classify(classifier: AttributeClassifier, img: torch.Tensor):
    """0/1 verdicts ``[N, A]`` and pooled penultimate features ``[N, F]`` (float64, CPU)."""
    classifier.eval()
    device = next(classifier.parameters()).device
    feats = classifier.embed(img.to(device).float())
    probs = torch.sigmoid(classifier.head(feats))
    return (probs > 0.5).double().cpu(), feats.double().cpu()


@torch.no_grad()
def _folder_rates(folder: Path, classifier: AttributeClassifier, batch_size: int):
    """Attribute rates of a folder's images and the statistics of their classifier features."""
    from ..data.datasets import ImageFolderDataset

    ds = ImageFolderDataset(folder, classifier.cfg.size, cache=True)
    total = torch.zeros(len(classifier.attributes), dtype=torch.float64)
    feats = []
    for i in range(0, len(ds), batch_size):
        img = torch.stack([ds[j] for j in range(i, min(i + batch_size, len(ds)))])
        verdicts, f = _classify(classifier, img)
        total += verdicts.sum(0)
        feats.append(f.numpy())
    rates = {a: float(t / len(ds)) for a, t in zip(classifier.attributes, total)}
    return rates, (statistics(np.concatenate(feats)) if len(ds) > 1 else None)


def _label_rates(folder: Path, names) -> Dict[str, float]:
    from ..data.datasets import load_labels

    csv = folder / "attributes.csv"
    if not csv.is_file():
        return {}
    cols, table = load_labels(csv)
    values = np.stack(list(table.values()))
    return {a: float(values[:, cols.index(a)].mean()) for a in names if a in cols}


PAIRED_SEED = 777  # the draws of the paired PSNR: no trainer draws from this seed


def is_distilled(generator) -> bool:
    """Whether ``generator`` draws the renderer (conditioned on its labels, factors from z)."""
    from ..data.synthetic import LABEL_NAMES

    return bool(getattr(generator, "conditional", False)) and tuple(generator.cfg.label_names) == LABEL_NAMES


@torch.no_grad()
def paired_psnr(generator, n: int = 1000, seed: int = PAIRED_SEED, batch_size: int = 100,
                device: Union[str, torch.device] = "cpu") -> Tuple[float, float]:
    """PSNR (dB) of a distilled generator's samples, as 8-bit images, against their paired renders
    over ``n`` draws of ``seed`` (random noise inputs, no truncation).

    Returns:
        (mean of the per-image PSNR, PSNR of the mean squared error).
    """
    from ..data.synthetic import draw_codes, render_codes

    if not is_distilled(generator):
        raise ValueError("not a generator distilled from the renderer (its labels are not the renderer's)")
    gen = torch.Generator().manual_seed(seed)
    noise = torch.get_rng_state()
    torch.manual_seed(seed)
    per_image, total = [], 0.0
    try:
        for i in range(0, n, batch_size):
            z, c = draw_codes(min(batch_size, n - i), generator.z_dim, gen)
            target = render_codes(z, c, generator.size).double()
            img, _ = generator([z.to(device)], randomize_noise=True, c=c.to(device))
            img = torch.from_numpy(to_uint8(img.float().cpu())).permute(0, 3, 1, 2).double() / 127.5 - 1
            mse = (img - target).pow(2).flatten(1).mean(1)
            per_image.append(10 * torch.log10(4.0 / mse.clamp_min(1e-12)))
            total += float(mse.sum())
    finally:
        torch.set_rng_state(noise)
    return float(torch.cat(per_image).mean()), 10 * math.log10(4.0 / max(total / n, 1e-12))


@torch.no_grad()
def evaluate_generator(generator: Generator, reference: PathLike, n: int = 10000,
                       classifier: Optional[AttributeClassifier] = None, fid: bool = True, seed: int = 0,
                       batch_size: int = 64, device: Union[str, torch.device] = "cpu",
                       cache_dir: Optional[PathLike] = None, progress: bool = False,
                       paired_n: int = 1000) -> GeneratorReport:
    """Samples ``n`` images (z ~ N(0, I) from ``seed``, no truncation, random noise) and compares them
    with the images of ``reference``.

    Args:
        generator: the model to judge.
        reference: folder of real images (e.g. rendered faces with their ``attributes.csv``).
        n: number of samples.
        classifier: judges attribute frequencies on samples and reference (None: skipped).
        fid: compute FID (InceptionV3 features of every sample).
        seed: sampling seed.
        batch_size: samples per forward pass.
        device: where the generator, Inception and the classifier run.
        cache_dir: FID statistics cache for the reference folder.
        progress: progress bar.
        paired_n: draws of the paired PSNR of a generator distilled from the renderer (0: skipped;
            other generators: always skipped).

    Returns:
        ``GeneratorReport``.
    """
    device = torch.device(device)
    generator = generator.to(device).eval()
    reference = Path(reference)
    inception = InceptionFeatures(device) if fid else None
    if classifier is not None:
        classifier = classifier.to(device).eval()
    feats, counts, classifier_feats = [], None, []
    z_gen = torch.Generator().manual_seed(seed)
    noise_state = torch.get_rng_state()
    torch.manual_seed(seed)  # the noise inputs; restored afterwards
    steps = range(0, n, batch_size)
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="samples", unit="batch")
    try:
        for i in steps:
            b = min(batch_size, n - i)
            z = torch.randn(b, generator.z_dim, generator=z_gen).to(device)
            ws = generator.sample_w(z, generator=z_gen)[:, None].expand(-1, generator.num_ws, -1)
            # samples are judged as the images they would be on disk: 8-bit, then the reference
            # folder's own preprocessing (PIL resize for Inception), so no resampling bias enters
            pixels = to_uint8(generator.synthesis(ws, randomize_noise=True).cpu())
            if inception is not None:
                feats.append(inception(preprocess(list(pixels), 299)))
            if classifier is not None:
                img = uint8_to_input(torch.from_numpy(pixels).permute(0, 3, 1, 2))
                verdicts, f = _classify(classifier, img)
                counts = verdicts.sum(0) if counts is None else counts + verdicts.sum(0)
                classifier_feats.append(f.numpy())
    finally:
        torch.set_rng_state(noise_state)
    report = GeneratorReport(n_samples=n)
    if paired_n > 0 and is_distilled(generator):
        report.paired_psnr, _ = paired_psnr(generator, paired_n, device=device)
        report.paired_n = paired_n
    if inception is not None:
        mu, sigma = statistics(np.concatenate(feats))
        ref = folder_statistics(reference, inception, cache_dir=cache_dir, progress=progress)
        report.fid = frechet_distance(mu, sigma, *ref)
    if classifier is not None:
        report.sample_rates = {a: float(c / n) for a, c in zip(classifier.attributes, counts)}
        report.reference_rates, ref_stats = _folder_rates(reference, classifier, 256)
        if ref_stats is not None and n > 1:
            report.fd_classifier = frechet_distance(*statistics(np.concatenate(classifier_feats)), *ref_stats)
        report.label_rates = _label_rates(reference, classifier.attributes)
    return report
