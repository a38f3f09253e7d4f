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


def test_ms_ssim_scales_weights_and_refusals():
    g = torch.Generator().manual_seed(1)
    for side, scales in ((44, 3), (43, 2), (11, 1), (400, 5)):  # the most scales whose coarsest side is >= 11
        x = torch.rand(1, 1, side, side, generator=g, dtype=torch.float64) * 2 - 1
        y = (x + 0.3 * torch.randn(x.shape, generator=g, dtype=torch.float64)).clamp(-1, 1)
        got = ms_ssim(x, y)
        assert got.item() == pytest.approx(ms_ssim(x, y, scales=scales).item(), rel=1e-12)
        if scales > 1:
            assert got.item() != pytest.approx(ms_ssim(x, y, scales=scales - 1).item(), rel=1e-6)
    # one scale: SSIM itself (luminance x contrast-structure), against the loop reference
    x = torch.rand(1, 1, 16, 16, generator=g, dtype=torch.float64)
    y = (x + 0.2 * torch.rand(x.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    t = np.arange(11) - 5
    win = np.exp(-t ** 2 / 4.5)
    win = np.outer(win, win) / win.sum() ** 2
    lum, cs = _ssim_terms_loop(x[0].numpy(), y[0].numpy(), win, 1e-4, 9e-4)
    assert ms_ssim(x * 2 - 1, y * 2 - 1, scales=1).item() == pytest.approx(lum * cs, rel=1e-9)
    # an inverted image has negative contrast-structure: clamped to 0, so MS-SSIM is 0
    assert ms_ssim(x * 2 - 1, 1 - x * 2).item() == 0.0
    with pytest.raises(ValueError, match=r"^MS-SSIM needs two \[N, C, H, W\] batches of one shape, got "
                                         r"\(1, 1, 16, 16\) and \(1, 1, 16, 15\)$"):
        ms_ssim(x, x[..., :15])
    with pytest.raises(ValueError, match="^images of side 10 are smaller than the 11-pixel SSIM window$"):
        ms_ssim(x[..., :10, :], x[..., :10, :])


def test_pyramid_filters_are_the_binomial_kernel():
    from style_transformer.metrics.image import _blur_down, _up

    impulse = torch.zeros(1, 1, 16, 16, dtype=torch.float64)
    impulse[0, 0, 8, 8] = 1.0
    d = _blur_down(impulse)[0, 0]
    assert d.shape == (8, 8)
    b = np.array([1, 4, 6, 4, 1]) / 16
    np.testing.assert_allclose(d[3:6, 3:6].numpy(), np.outer(b[::2], b[::2])[::-1, ::-1], atol=1e-15)
    assert d.sum().item() == pytest.approx(0.25)  # every other tap: (1 + 6 + 1)^2 / 16^2
    const = torch.full((2, 3, 8, 8), 0.7, dtype=torch.float64)
    torch.testing.assert_close(_blur_down(const), torch.full((2, 3, 4, 4), 0.7, dtype=torch.float64))
    torch.testing.assert_close(_up(const), torch.full((2, 3, 16, 16), 0.7, dtype=torch.float64))
    levels = laplacian_pyramid(torch.rand(1, 3, 64, 64, dtype=torch.float64), min_side=8)
    assert [l.shape[-1] for l in levels] == [64, 32, 16, 8]
    assert [l.shape[-1] for l in laplacian_pyramid(torch.rand(1, 3, 31, 31), min_side=16)] == [31]


def test_patches_come_from_their_image_everywhere_and_are_normalised():
    from style_transformer.metrics.image import _normalise

    level = torch.rand(2, 3, 10, 12, dtype=torch.float64)
    desc = patch_descriptors(level, 300, torch.Generator().manual_seed(3))
    assert desc.shape == (600, 3 * 49)
    windows = level.unfold(2, 7, 1).unfold(3, 7, 1)  # [2, 3, 4, 6, 7, 7]
    seen = set()
    for r in range(600):
        i = r // 300
        p = desc[r].view(3, 7, 7)
        hits = [(y, x) for y in range(4) for x in range(6) if torch.equal(windows[i, :, y, x], p)]
        assert len(hits) == 1
        seen.add(hits[0])
    assert seen == {(y, x) for y in range(4) for x in range(6)}  # every position, the last ones too
    d = torch.randn(50, 3 * 4, dtype=torch.float64) * torch.tensor([1.0, 5.0, 0.1]).repeat_interleave(4) + 3
    n = _normalise(d, 3).view(50, 3, 4)
    torch.testing.assert_close(n.mean((0, 2)), torch.zeros(3, dtype=torch.float64), atol=1e-12, rtol=0)
    torch.testing.assert_close(n.transpose(0, 1).reshape(3, -1).std(1), torch.ones(3, dtype=torch.float64))


def test_swd_levels_seeds_and_refusals():
    g = torch.Generator().manual_seed(4)
    a = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    b = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    per_level, mean = swd(a, b, per_image=32, seed=1)
    assert len(per_level) == 2 and mean == pytest.approx(sum(per_level) / 2)
    assert swd(a, b, per_image=32, seed=1) == (per_level, mean)
    assert swd(a, b, per_image=32, seed=2)[1] != mean
    # the default draws 128 patches per image: different from 32
    assert swd(a, b)[1] != swd(a, b, per_image=32)[1]
    with pytest.raises(ValueError, match=r"^SWD needs two image sets of one shape"):
        swd(a, b[:3])
    with pytest.raises(ValueError, match=r"^SWD needs descriptor sets of one shape"):
        sliced_wasserstein(torch.zeros(3, 2), torch.zeros(4, 2))


def test_ms_ssim_clamps_to_the_image_range_and_scores_each_image():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(2, 3, 24, 24, generator=g, dtype=torch.float64) * 4 - 2  # values outside [-1, 1]
    y = torch.rand(2, 3, 24, 24, generator=g, dtype=torch.float64) * 4 - 2
    torch.testing.assert_close(ms_ssim(x, y), ms_ssim(x.clamp(-1, 1), y.clamp(-1, 1)))
    torch.testing.assert_close(ms_ssim(y, x), ms_ssim(y.clamp(-1, 1), x.clamp(-1, 1)))
    pair = ms_ssim(torch.stack([x[0], x[0]]), torch.stack([x[0], y[0]]))
    assert pair[0].item() == pytest.approx(1.0) and pair[1].item() == pytest.approx(ms_ssim(x[:1], y[:1]).item())


def test_pyramid_on_non_square_images_and_swd_scale(monkeypatch):
    from style_transformer.metrics import image as image_metrics
    from style_transformer.metrics.image import _up

    assert _up(torch.zeros(1, 3, 4, 8)).shape == (1, 3, 8, 16)
    levels = laplacian_pyramid(torch.rand(1, 3, 64, 32, dtype=torch.float64))  # the width decides
    assert [tuple(l.shape[-2:]) for l in levels] == [(64, 32), (32, 16)]
    a = torch.randn(100, 4, dtype=torch.float64)
    b = torch.randn(100, 4, dtype=torch.float64) + 1
    torch.manual_seed(0)
    first = sliced_wasserstein(a, b)
    torch.manual_seed(1)
    assert sliced_wasserstein(a, b) == first  # its own seeded directions, not the global random state
    seen = []

    def fixed(d0, d1, generator=None, **kw):
        seen.append(generator)
        return 0.5

    monkeypatch.setattr(image_metrics, "sliced_wasserstein", fixed)
    per_level, mean = swd(torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1, per_image=8)
    assert per_level == [500.0, 500.0] and mean == 500.0  # x 1e3, as ProGAN reports it
    assert all(isinstance(g, torch.Generator) for g in seen) and seen[0] is seen[1]  # one seeded stream
