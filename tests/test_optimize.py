"""Optimisation-based inversion and PTI on a tiny generator: they reduce the loss they optimise,
recover a code the generator made, keep the generator untouched; the noise penalty in closed form."""

import torch

from style_transformer import Generator, GeneratorConfig
from style_transformer.optimize import OptimizeConfig, noise_regularization, optimize_latents, pivotal_tuning

GEN = GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 8, 8))


def _gen():
    torch.manual_seed(0)
    g = Generator(GEN).eval()
    g.latent_avg.copy_(g.mean_latent(512, seed=0))
    return g


def test_noise_regularization_closed_form():
    n = torch.zeros(1, 1, 8, 8)
    n[..., ::2, :] = 1.0
    n[..., 1::2, :] = -1.0  # rows alternate: vertical neighbours anti-correlated, horizontal ones equal
    assert noise_regularization([n]).item() == 2.0  # (mean of n * roll_x)^2 + (mean of n * roll_y)^2 = 1 + 1
    white = torch.randn(1, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    assert noise_regularization([white]).item() < 1e-3


def test_wplus_optimisation_recovers_a_generated_image():
    g = _gen()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    ws_true = g.mapping(torch.randn(2, 16, generator=torch.Generator().manual_seed(1)))[:, None].expand(-1, g.num_ws, -1)
    with torch.no_grad():
        target = g.synthesis(ws_true)
        start = torch.nn.functional.mse_loss(g.synthesis(g.latent_avg.view(1, 1, -1).expand(2, g.num_ws, -1)), target)
    cfg = OptimizeConfig(steps=150, lr=0.1, lpips_lambda=0.0, optimize_noise=False)
    ws, noises = optimize_latents(g, target, cfg)
    with torch.no_grad():
        end = torch.nn.functional.mse_loss(g.synthesis(ws, noise=noises), target)
    assert end < 0.1 * start
    assert all(torch.equal(v, before[k]) for k, v in g.state_dict().items())  # the generator is unchanged
    # W space: one code per image, repeated over the rows
    ws_w, _ = optimize_latents(g, target, OptimizeConfig(space="w", steps=5, lpips_lambda=0.0))
    assert torch.equal(ws_w[:, 0], ws_w[:, -1])


def test_noise_stays_normalised_and_pti_lowers_the_loss():
    g = _gen()
    target = torch.rand(1, 3, 32, 32) * 2 - 1
    ws, noises = optimize_latents(g, target, OptimizeConfig(steps=10, lpips_lambda=0.0))
    for n in noises:
        assert abs(n.mean().item()) < 1e-5 and abs(n.pow(2).mean().item() - 1) < 1e-4
    with torch.no_grad():
        before = (g.synthesis(ws, noise=noises) - target).pow(2).mean()
    tuned = pivotal_tuning(g, target, ws, noises, OptimizeConfig(pti_steps=30, pti_lr=3e-3, lpips_lambda=0.0))
    with torch.no_grad():
        after = (tuned.synthesis(ws, noise=noises) - target).pow(2).mean()
    assert after < 0.8 * before
    assert torch.equal(tuned.style[1].weight, g.style[1].weight)  # the mapping is not tuned


def test_invert_refine_lowers_the_reconstruction_error(tiny_checkpoint, image_dir, tmp_path):
    import numpy as np
    from PIL import Image

    from style_transformer.cli import main

    src = image_dir / "a.png"
    assert main(["invert", str(src), "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "plain")]) == 0
    assert main(["invert", str(src), "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "fine"),
                 "--refine-steps", "40", "--pti-steps", "10"]) == 0
    target = np.asarray(Image.open(src).convert("RGB").resize((32, 32), Image.BILINEAR), dtype=np.float64)

    def err(folder):
        return ((np.asarray(Image.open(folder / "a.png"), dtype=np.float64) - target) ** 2).mean()

    assert err(tmp_path / "fine") < 0.8 * err(tmp_path / "plain")
    with np.load(tmp_path / "fine" / "latents.npz") as z:
        assert z["a"].shape == (8, 32)
    assert main(["invert", str(src), "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "x"),
                 "--refine-steps", "-1"]) == 2
