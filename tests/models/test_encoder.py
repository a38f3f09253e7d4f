"""Style Transformer encoder: layout vs the official manifest, shapes, determinism, round trip."""

import json
from pathlib import Path

import pytest
import torch

from style_transformer import EncoderConfig, StyleTransformer, model_preset, load_model, save_model
from style_transformer.config import ConfigError

MANIFEST = Path(__file__).parents[1] / "data" / "parity" / "manifest_styletransformer.json"


def test_official_preset_layout_matches_manifest():
    model = StyleTransformer(model_preset("official-256"))
    manifest = {k.replace(".module", ""): tuple(s) for k, s, _ in json.loads(MANIFEST.read_text())}
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "decoder.latent_avg"}
    assert ours == manifest


def test_feature_pyramid_shapes(tiny_model):
    f1, f2, f3 = tiny_model.encoder.features(torch.randn(2, 3, 32, 32))
    assert f1.shape == (2, 32, 2, 2) and f2.shape == (2, 32, 4, 4) and f3.shape == (2, 32, 8, 8)


def test_official_feature_indices():
    assert EncoderConfig().feature_indices == (6, 20, 23)


def test_forward_shapes_and_determinism(tiny_model):
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    img, ws = tiny_model(x)
    assert img.shape == (3, 3, 32, 32) and ws.shape == (3, 8, 32)
    img2, ws2 = tiny_model(x)
    assert torch.equal(img, img2) and torch.equal(ws, ws2)


def test_queries_are_shared_and_codes_are_per_image(tiny_model):
    q = tiny_model.queries(2)
    assert torch.equal(q[0], q[1])
    ws = tiny_model.encode(torch.randn(2, 3, 32, 32))
    assert not torch.allclose(ws[0], ws[1])


def test_batch_independence(tiny_model):
    x = torch.randn(4, 3, 32, 32)
    full = tiny_model.encode(x)
    torch.testing.assert_close(tiny_model.encode(x[2:3]), full[2:3], rtol=1e-5, atol=1e-5)


def test_latent_avg_is_added(tiny_model):
    x = torch.randn(1, 3, 32, 32)
    base = tiny_model.encode(x)
    with torch.no_grad():
        tiny_model.decoder.latent_avg.add_(1.0)
    torch.testing.assert_close(tiny_model.encode(x), base + 1.0)


def test_wrong_input_shape_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match="encoder input must be"):
        tiny_model.encode(torch.randn(1, 3, 64, 64))


def test_save_load_roundtrip_identical(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    loaded = load_model(path)
    assert loaded.cfg == tiny_model.cfg
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = tiny_model(x), loaded(x)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_config_validation():
    with pytest.raises(ConfigError):
        EncoderConfig(stage_channels=(64, 128, 256, 256))  # last stage must be d_model
    with pytest.raises(ConfigError):
        model_preset("nope")
    cfg = model_preset("small-64")
    assert type(cfg).from_dict(cfg.to_dict()) == cfg


def test_fast_and_ref_paths_agree_in_inference_and_training(tiny_model):
    from style_transformer import set_ops_impl

    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        fast = tiny_model.encode(x)  # inference path: in-place BN/SE/residual, SDPA, NHWC
        ref = set_ops_impl(tiny_model, "ref").encode(x)
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-5)
    tiny_model.train()
    grads = {}
    for impl in ("fast", "ref"):
        set_ops_impl(tiny_model, impl)
        tiny_model.zero_grad()
        tiny_model.encode(x).pow(2).mean().backward()
        grads[impl] = [p.grad.clone() for p in tiny_model.encoder.parameters() if p.grad is not None]
    assert len(grads["fast"]) == len(grads["ref"]) > 20
    for a, b in zip(grads["fast"], grads["ref"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
