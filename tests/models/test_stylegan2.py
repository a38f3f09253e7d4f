"""StyleGAN2 generator/discriminator: shapes, determinism, layouts, impl parity, save/load."""

import json
from pathlib import Path

import pytest
import torch

from style_transformer import Discriminator, Generator, GeneratorConfig, load_model, save_model, set_ops_impl

MANIFEST = Path(__file__).parents[1] / "data" / "parity" / "manifest_g256.json"


@pytest.fixture
def gen():
    return Generator(GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(32, 32, 16, 16))).eval()


def test_state_dict_layout_matches_official_manifest():
    g = Generator(GeneratorConfig(size=256))
    manifest = {k: tuple(s) for k, s, _ in json.loads(MANIFEST.read_text())}
    ours = {k: tuple(v.shape) for k, v in g.state_dict().items() if k != "latent_avg"}
    assert ours == manifest


def test_forward_shapes_and_latents(gen):
    z = torch.randn(3, 16)
    img, ws = gen([z], return_latents=True, randomize_noise=False)
    assert img.shape == (3, 3, 32, 32)
    assert ws.shape == (3, gen.num_ws, 16) == (3, 8, 16)
    # W input repeated over layers renders the same as the explicit W+
    w = gen.mapping(z)
    img_w, _ = gen([w], input_is_latent=True, randomize_noise=False)
    torch.testing.assert_close(img_w, gen.synthesis(w[:, None].repeat(1, 8, 1)))
    torch.testing.assert_close(img, img_w)


def test_stored_noise_is_deterministic_random_noise_is_not(gen):
    ws = torch.randn(2, 8, 16)
    with torch.no_grad():
        for p in gen.parameters():
            if p.shape == (1,):
                p.fill_(0.5)  # make noise visible
    torch.testing.assert_close(gen.synthesis(ws), gen.synthesis(ws))
    assert not torch.allclose(gen.synthesis(ws, randomize_noise=True), gen.synthesis(ws, randomize_noise=True))


def test_extra_wplus_rows_are_ignored(gen):
    ws = torch.randn(2, 8, 16)
    extra = torch.cat([ws, torch.randn(2, 10, 16)], 1)
    torch.testing.assert_close(gen.synthesis(extra), gen.synthesis(ws))
    with pytest.raises(ValueError, match="ws must be"):
        gen.synthesis(ws[:, :5])


def test_truncation_and_style_mixing(gen):
    z1, z2 = torch.randn(2, 16), torch.randn(2, 16)
    _, ws = gen([z1], truncation=0.0, return_latents=True)
    torch.testing.assert_close(ws, gen.latent_avg.expand_as(ws))
    _, mixed = gen([z1, z2], inject_index=3, return_latents=True)
    torch.testing.assert_close(mixed[:, :3], gen.mapping(z1)[:, None].expand(-1, 3, -1))
    torch.testing.assert_close(mixed[:, 3:], gen.mapping(z2)[:, None].expand(-1, 5, -1))


def test_mapping_normalises_each_vector(gen):
    # PixelNorm acts per vector: scaling one z does not change its w, nor the others'
    z = torch.randn(4, 16)
    z2 = z.clone()
    z2[0] *= 7
    torch.testing.assert_close(gen.mapping(z2), gen.mapping(z))


@pytest.mark.parametrize("batch", [1, 4])
def test_fast_and_ref_impl_agree(gen, batch):
    ws = torch.randn(batch, 8, 16)
    fast = gen.synthesis(ws)
    ref = set_ops_impl(gen, "ref").synthesis(ws)
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)


def test_discriminator_shapes_and_backward():
    cfg = GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(32, 32, 16, 16))
    d = Discriminator(cfg)
    img = torch.randn(4, 3, 32, 32, requires_grad=True)
    out = d(img)
    assert out.shape == (4, 1)
    grad, = torch.autograd.grad(out.sum(), img, create_graph=True)  # R1 needs the double backward
    (out.sum() + grad.pow(2).sum()).backward()
    assert all(p.grad is not None for p in d.parameters())
    ref = set_ops_impl(Discriminator(cfg), "ref")
    ref.load_state_dict(d.state_dict())
    torch.testing.assert_close(ref(img), out, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="divisible"):
        d(torch.randn(6, 3, 32, 32))


def test_discriminator_rosinality_key_names():
    d = Discriminator(GeneratorConfig(size=64, channel_multiplier=1))
    keys = set(d.state_dict())
    for k in ("convs.0.0.weight", "convs.0.1.bias", "convs.1.conv1.0.weight", "convs.1.conv2.0.kernel",
              "convs.1.conv2.1.weight", "convs.1.conv2.2.bias", "convs.1.skip.1.weight", "final_conv.0.weight",
              "final_linear.0.weight", "final_linear.1.bias"):
        assert k in keys, k


def test_save_load_roundtrip_identical(gen, tmp_path):
    with torch.no_grad():
        gen.latent_avg.normal_()
    path = save_model(gen, tmp_path / "g.safetensors")
    loaded = load_model(path)
    assert isinstance(loaded, Generator) and loaded.cfg == gen.cfg
    ws = torch.randn(2, 8, 16)
    assert torch.equal(loaded.synthesis(ws), gen.synthesis(ws))
    assert torch.equal(loaded.latent_avg, gen.latent_avg)


@pytest.mark.parametrize("size", [32, 64, 128])
def test_sizes_and_channel_multiplier(size):
    g = Generator(GeneratorConfig(size=size, style_dim=8, n_mlp=1, channel_multiplier=1,
                                  channels=tuple([8] * (size.bit_length() - 2))))
    assert g.synthesis(torch.randn(1, g.num_ws, 8)).shape == (1, 3, size, size)


def test_inference_cache_follows_weight_updates(gen):
    """The fast path caches weight-only tensors at inference; changing the weights must not reuse them."""
    ws = torch.randn(1, 8, 16)
    with torch.no_grad():
        before = gen.synthesis(ws)
        other = Generator(gen.cfg).eval()
        other.load_state_dict({k: v for k, v in gen.state_dict().items()})
        for name, p in gen.named_parameters():
            if name.endswith("conv.weight"):
                p.mul_(1.5).add_(0.1)
        after = gen.synthesis(ws)
        fresh = Generator(gen.cfg).eval()
        fresh.load_state_dict(gen.state_dict())
        torch.testing.assert_close(after, fresh.synthesis(ws))
        assert not torch.allclose(before, after)
        torch.testing.assert_close(other.synthesis(ws), before)


@pytest.mark.parametrize("batch", [1, 4])
def test_fast_and_ref_gradients_agree(gen, batch):
    """Training through the fast path (in-place bias-act and noise, folded modulation) gives the
    reference gradients for every parameter and for the latents."""
    ws = torch.randn(batch, 8, 16)
    target = torch.randn(batch, 3, 32, 32)
    grads = {}
    for impl in ("fast", "ref"):
        set_ops_impl(gen, impl)
        gen.zero_grad()
        w = ws.clone().requires_grad_(True)
        loss = (gen.synthesis(w) - target).pow(2).mean()
        loss.backward()
        grads[impl] = [w.grad] + [p.grad.clone() for p in gen.parameters() if p.grad is not None]
    assert len(grads["fast"]) == len(grads["ref"]) > 10
    for a, b in zip(grads["fast"], grads["ref"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
