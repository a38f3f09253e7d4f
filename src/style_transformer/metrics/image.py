"""Full-reference and distribution image metrics: MS-SSIM and the sliced Wasserstein distance (SWD).

MS-SSIM (Wang, Simoncelli & Bovik 2003): SSIM's contrast-structure term at every scale and its
luminance term at the coarsest, with the paper's five weights (0.0448, 0.2856, 0.3001, 0.2363,
0.1333); an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, images in [0, 1] (data range 1),
2x2 average pooling between scales. Small images cannot hold five scales of an 11-pixel window, so
the number of scales is ``min(5, the most whose coarsest side is at least 11)`` and the weights of
the scales used are renormalised to sum to one (64x64 images: 3 scales). Negative contrast-structure
values are clamped to zero before the power, as common implementations do.

SWD (Karras et al. 2018, ProGAN): per level of a Laplacian pyramid (coarsest level at least 16 px),
7x7x3 patches at random positions of every image, each set normalised per colour channel (zero mean,
unit standard deviation over its patches); then the sliced Wasserstein distance: the mean
over random unit projections of the mean absolute difference between the sorted projections of the
two sets. Reported per level and averaged, times 1e3 as in the paper.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _gaussian_window(size: int, sigma: float, channels: int, dtype, device) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-x.pow(2) / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def _ssim_terms(x: torch.Tensor, y: torch.Tensor, win: torch.Tensor, c1: float, c2: float
                ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean luminance and contrast-structure terms per image over valid windows."""
    groups = x.shape[1]
    mu_x = F.conv2d(x, win, groups=groups)
    mu_y = F.conv2d(y, win, groups=groups)
    sxx = F.conv2d(x * x, win, groups=groups) - mu_x.pow(2)
    syy = F.conv2d(y * y, win, groups=groups) - mu_y.pow(2)
    sxy = F.conv2d(x * y, win, groups=groups) - mu_x * mu_y
    lum = (2 * mu_x * mu_y + c1) / (mu_x.pow(2) + mu_y.pow(2) + c1)
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    return lum.flatten(1).mean(1), cs.flatten(1).mean(1)


def ms_ssim(img0: torch.Tensor, img1: torch.Tensor, win_size: int = 11, sigma: float = 1.5,
            scales: Optional[int] = None) -> torch.Tensor:
    """MS-SSIM per image of ``[N, C, H, W]`` images in [-1, 1] (compared in [0, 1]). Returns ``[N]``."""
    if img0.shape != img1.shape or img0.ndim != 4:
        raise ValueError(f"MS-SSIM needs two [N, C, H, W] batches of one shape, got {tuple(img0.shape)} and "
                         f"{tuple(img1.shape)}")
    side = min(img0.shape[-2:])
    if side < win_size:
        raise ValueError(f"images of side {side} are smaller than the {win_size}-pixel SSIM window")
    if scales is None:
        scales = min(5, int(math.floor(math.log2(side / win_size))) + 1)
    weights = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=img0.dtype, device=img0.device)
    weights = weights / weights.sum()
    x = (img0.clamp(-1, 1) + 1) / 2
    y = (img1.clamp(-1, 1) + 1) / 2
    win = _gaussian_window(win_size, sigma, x.shape[1], x.dtype, x.device)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    values = []
    for s in range(scales):
        lum, cs = _ssim_terms(x, y, win, c1, c2)
        values.append(cs if s < scales - 1 else lum * cs)
        if s < scales - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    stack = torch.stack(values, 1).clamp_min(0)  # [N, scales]
    return torch.prod(stack ** weights, dim=1)


# -- SWD -----------------------------------------------------------------------------------------------

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16


def _blur_down(x: torch.Tensor) -> torch.Tensor:
    k = (_BINOMIAL[:, None] * _BINOMIAL[None, :]).to(x).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), k, stride=2, groups=x.shape[1])


def _up(x: torch.Tensor) -> torch.Tensor:
    up = torch.zeros(x.shape[0], x.shape[1], x.shape[2] * 2, x.shape[3] * 2, dtype=x.dtype, device=x.device)
    up[:, :, ::2, ::2] = x * 4
    k = (_BINOMIAL[:, None] * _BINOMIAL[None, :]).to(x).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(up, (2, 2, 2, 2), mode="reflect"), k, groups=x.shape[1])


def laplacian_pyramid(img: torch.Tensor, min_side: int = 16) -> List[torch.Tensor]:
    """Levels finest first: band-pass differences, then the coarsest Gaussian level (side >= min_side)."""
    levels = []
    g = img
    while g.shape[-1] // 2 >= min_side:
        down = _blur_down(g)
        levels.append(g - _up(down))
        g = down
    levels.append(g)
    return levels


def patch_descriptors(level: torch.Tensor, per_image: int, generator: torch.Generator, size: int = 7) -> torch.Tensor:
    """``per_image`` random ``size x size`` patches of every image, flattened: ``[N * per_image, C*size*size]``."""
    n, c, h, w = level.shape
    ys = torch.randint(0, h - size + 1, (n, per_image), generator=generator)
    xs = torch.randint(0, w - size + 1, (n, per_image), generator=generator)
    patches = level.unfold(2, size, 1).unfold(3, size, 1)  # [N, C, H', W', size, size]
    idx = torch.arange(n)[:, None].expand(n, per_image)
    out = patches[idx, :, ys, xs]  # [N, per_image, C, size, size]
    return out.reshape(n * per_image, -1)


def _normalise(desc: torch.Tensor, channels: int) -> torch.Tensor:
    """ProGAN's ``finalize_descriptors``: zero mean, unit std per colour channel over the whole set."""
    d = desc.view(desc.shape[0], channels, -1)
    d = (d - d.mean(dim=(0, 2), keepdim=True)) / d.std(dim=(0, 2), keepdim=True).clamp_min(1e-8)
    return d.reshape(desc.shape[0], -1)


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 512, repeats: int = 4,
                       generator: Optional[torch.Generator] = None) -> float:
    """Mean over random unit directions of the mean |sorted(a.d) - sorted(b.d)| (equal set sizes)."""
    if a.shape != b.shape:
        raise ValueError(f"SWD needs descriptor sets of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    results = []
    for _ in range(repeats):
        d = torch.randn(a.shape[1], projections, generator=g).to(a)
        d = d / d.norm(dim=0, keepdim=True)
        pa, _ = torch.sort(a @ d, dim=0)
        pb, _ = torch.sort(b @ d, dim=0)
        results.append((pa - pb).abs().mean())
    return float(torch.stack(results).mean())


def swd(images0: torch.Tensor, images1: torch.Tensor, per_image: int = 128, seed: int = 0) -> Tuple[List[float], float]:
    """SWD between two sets of ``[N, 3, H, W]`` images in [-1, 1] (equal N). Returns (per level x 1e3,
    finest first; their mean)."""
    if images0.shape != images1.shape:
        raise ValueError(f"SWD needs two image sets of one shape, got {tuple(images0.shape)} and "
                         f"{tuple(images1.shape)}")
    g = torch.Generator().manual_seed(seed)
    out = []
    for l0, l1 in zip(laplacian_pyramid(images0.double()), laplacian_pyramid(images1.double())):
        d0 = _normalise(patch_descriptors(l0, per_image, g), l0.shape[1])
        d1 = _normalise(patch_descriptors(l1, per_image, g), l1.shape[1])
        out.append(1e3 * sliced_wasserstein(d0, d1, generator=g))
    return out, float(sum(out) / len(out))
