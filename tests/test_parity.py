"""Parity with the official implementation (../shared/parity, copied to tests/data/parity).

Checkpoints are written in the official formats with the documented weight rule, loaded through the
public loader, and compared with the official outputs for seed 1: codes, intermediates and images
within 1e-3, on both op implementations.
"""

from pathlib import Path

import pytest
import torch

import parity_rule
from style_transformer import load_model, load_pipeline, set_ops_impl

DATA = Path(__file__).parent / "data" / "parity"
TOL = dict(rtol=0, atol=1e-3)


def _ref(name):
    return torch.load(DATA / f"public_{name}.pt", weights_only=True)


@pytest.fixture(scope="module")
def official_model(official_checkpoint):
    return load_model(official_checkpoint)


@pytest.mark.parametrize("impl", ["fast", pytest.param("ref", marks=pytest.mark.slow)])
def test_style_transformer_matches_official(official_model, impl):
    ref = _ref("styletransformer")
    assert ref["seed"] == 1
    model = set_ops_impl(official_model, impl)
    x = ref["inputs"]["x"]
    with torch.no_grad():
        query = model.queries(x.shape[0])
        ws = model.encode(x)
        img = model.decoder.synthesis(ws, randomize_noise=False)
    torch.testing.assert_close(query, ref["outputs"]["query"], **TOL)
    torch.testing.assert_close(ws - model.decoder.latent_avg, ref["outputs"]["encoder_codes"], **TOL)
    torch.testing.assert_close(ws, ref["outputs"]["codes"], **TOL)
    torch.testing.assert_close(parity_rule.kept_rows(img, ref), ref["outputs"]["images"], **TOL)
    torch.testing.assert_close(model.decoder.latent_avg, ref["latent_avg"], rtol=0, atol=0)
    set_ops_impl(official_model, "fast")


@pytest.mark.slow  # heavy: full-size network(s)
def test_pipeline_on_official_file_matches(official_checkpoint):
    """The public pipeline (preprocessing aside) gives the official codes and images."""
    ref = _ref("styletransformer")
    pipe = load_pipeline(checkpoint=official_checkpoint, device="cpu")
    res = pipe.invert(ref["inputs"]["x"])
    torch.testing.assert_close(res.ws, ref["outputs"]["codes"], **TOL)
    torch.testing.assert_close(parity_rule.kept_rows(res.images, ref), ref["outputs"]["images"], **TOL)


@pytest.mark.parametrize("impl", ["fast", pytest.param("ref", marks=pytest.mark.slow)])
def test_stylegan2_matches_official(rosinality_checkpoint, impl):
    ref = _ref("g256")
    g = set_ops_impl(load_model(rosinality_checkpoint, kind="generator"), impl)
    with torch.no_grad():
        img, _ = g([ref["inputs"]["w"]], input_is_latent=True, randomize_noise=False)
    torch.testing.assert_close(parity_rule.kept_rows(img, ref), ref["outputs"]["image"], **TOL)


@pytest.mark.slow  # heavy: full-size network(s)
def test_other_seed_and_input_fast_equals_ref(tmp_path):
    """Beyond seed 1: another rule-filled checkpoint and input, both op paths agree to 1e-4."""
    path = tmp_path / "g.pt"
    torch.save(parity_rule.rosinality_g256_checkpoint(7), path)
    g = load_model(path)
    ws = torch.randn(2, 14, 512, generator=torch.Generator().manual_seed(3)) + g.latent_avg
    with torch.no_grad():
        fast = g.synthesis(ws)
        ref = set_ops_impl(g, "ref").synthesis(ws)
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)


def test_rule_reproduces_official_latent_avg():
    # the rule's top-level entry is the one the official run stored
    assert torch.equal(parity_rule.official_styletransformer_checkpoint(1)["latent_avg"],
                       _ref("styletransformer")["latent_avg"])


@pytest.fixture(scope="module")
def cars_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("cars") / "cars.pt"
    torch.save(parity_rule.official_cars_checkpoint(1), path)
    return path


@pytest.mark.slow  # heavy: full-size network(s)
def test_cars_checkpoint_matches_official_through_the_pipeline(cars_checkpoint):
    """As a user runs it: the official 192x256 input through load_pipeline(...).invert gives the
    official codes and 512 px images (the input is not made square)."""
    ref = _ref("styletransformer_cars")
    pipe = load_pipeline(checkpoint=cars_checkpoint, device="cpu")
    assert pipe.input_shape == (192, 256) and pipe.generator.num_ws == 16
    x = ref["inputs"]["x"]
    assert x.shape[-2:] == (192, 256)
    res = pipe.invert(x)
    torch.testing.assert_close(res.ws, ref["outputs"]["codes"], **TOL)
    assert res.images.shape == (2, 3, 512, 512)
    torch.testing.assert_close(parity_rule.kept_rows(res.images, ref), ref["outputs"]["images"], **TOL)
    with torch.no_grad():
        torch.testing.assert_close(pipe.model.queries(2), ref["outputs"]["query"], **TOL)


@pytest.mark.slow  # heavy: full-size network(s)
def test_cars_input_transform_applies_to_images(cars_checkpoint, tmp_path):
    """A photo is resized to 192x256 without keeping its aspect (the official Resize((192, 256)))."""
    import numpy as np
    from PIL import Image

    from style_transformer.data.images import preprocess

    pipe = load_pipeline(checkpoint=cars_checkpoint, device="cpu")
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 255, (300, 500, 3), dtype=np.uint8))
    x = preprocess([im], pipe.input_shape)
    assert x.shape == (1, 3, 192, 256)
    expect = np.asarray(im.resize((256, 192), Image.BILINEAR), dtype=np.float32) / 127.5 - 1
    torch.testing.assert_close(x[0].permute(1, 2, 0), torch.from_numpy(expect), rtol=0, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(pipe.encode([im]), pipe.model.encode(x), rtol=0, atol=1e-5)


def test_cars_checkpoint_without_dataset_type_is_refused(tmp_path):
    from style_transformer import CheckpointError

    path = tmp_path / "cars_no_opts.pt"
    torch.save(parity_rule.official_cars_checkpoint(1, opts=False), path)
    with pytest.raises(CheckpointError, match="cannot tell .* input transform"):
        load_model(path)
