"""MS-SSIM against a float64 loop over windows; SWD against a direct float64 computation."""

import math

import numpy as np
import pytest
import torch

from style_transformer.metrics.image import (laplacian_pyramid, ms_ssim, patch_descriptors, sliced_wasserstein,
                                             swd)


def _ssim_terms_loop(x, y, win, c1, c2):
    """Luminance and contrast-structure means over every valid window, by explicit loops (float64)."""
    k = win.shape[0]
    lums, css = [], []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - k + 1):
            for j in range(x.shape[2] - k + 1):
                px, py = x[c, i:i + k, j:j + k], y[c, i:i + k, j:j + k]
                mx, my = (win * px).sum(), (win * py).sum()
                vx = (win * px * px).sum() - mx ** 2
                vy = (win * py * py).sum() - my ** 2
                cxy = (win * px * py).sum() - mx * my
                lums.append((2 * mx * my + c1) / (mx ** 2 + my ** 2 + c1))
                css.append((2 * cxy + c2) / (vx + vy + c2))
    return np.mean(lums), np.mean(css)


def _pool(a):
    return a.reshape(a.shape[0], a.shape[1] // 2, 2, a.shape[2] // 2, 2).mean(axis=(2, 4))


def test_ms_ssim_matches_loop_reference():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (2, 24, 24))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    t = np.arange(11) - 5
    g = np.exp(-t ** 2 / (2 * 1.5 ** 2))
    g /= g.sum()
    win = np.outer(g, g)
    w = np.array([0.0448, 0.2856])
    w = w / w.sum()  # 24 px: two scales (the coarsest side 12 >= 11)
    l0, cs0 = _ssim_terms_loop(x, y, win, 1e-4, 9e-4)
    l1, cs1 = _ssim_terms_loop(_pool(x), _pool(y), win, 1e-4, 9e-4)
    want = cs0 ** w[0] * (l1 * cs1) ** w[1]
    got = ms_ssim(torch.from_numpy(x * 2 - 1)[None], torch.from_numpy(y * 2 - 1)[None])
    assert got.item() == pytest.approx(want, rel=1e-6)
    same = torch.rand(3, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(ms_ssim(same, same), torch.ones(3, dtype=torch.float32))
    with pytest.raises(ValueError, match="smaller than"):
        ms_ssim(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))


def test_sliced_wasserstein_matches_direct_computation():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200, 6, generator=g, dtype=torch.float64)
    b = torch.randn(200, 6, generator=g, dtype=torch.float64) * 1.5 + 0.3
    got = sliced_wasserstein(a, b, projections=16, repeats=2, generator=torch.Generator().manual_seed(5))
    gd = torch.Generator().manual_seed(5)
    vals = []
    for _ in range(2):
        d = torch.randn(6, 16, generator=gd).double()
        d = d / d.norm(dim=0, keepdim=True)
        for k in range(16):  # 1-D Wasserstein-1 of equal-size samples: matched sorted values
            vals.append(np.mean(np.abs(np.sort((a @ d[:, k]).numpy()) - np.sort((b @ d[:, k]).numpy()))))
    assert got == pytest.approx(float(np.mean(vals)), rel=1e-10)
    assert sliced_wasserstein(a, a) == 0.0


def test_laplacian_pyramid_reconstructs_and_swd_separates():
    from style_transformer.metrics.image import _up

    imgs = torch.rand(4, 3, 64, 64, dtype=torch.float64) * 2 - 1
    levels = laplacian_pyramid(imgs)
    assert [l.shape[-1] for l in levels] == [64, 32, 16]
    rebuilt = levels[-1]
    for band in reversed(levels[:-1]):  # coarse + band = the finer Gaussian level, exactly
        rebuilt = _up(rebuilt) + band
    torch.testing.assert_close(rebuilt, imgs)
    noise = torch.rand(16, 3, 32, 32) * 2 - 1
    per_level, near = swd(noise[:8], noise[8:], per_image=64)
    assert len(per_level) == 2
    flat = torch.rand(8, 3, 1, 1).expand(8, 3, 32, 32) * 2 - 1  # constant images: no patch structure at all
    _, far = swd(noise[:8], flat, per_image=64)
    assert far > 5 * near
    patches = patch_descriptors(levels[0], 4, torch.Generator().manual_seed(0))
    assert patches.shape == (16, 3 * 49)
    assert math.isfinite(far)
