"""Shared fixtures: tiny random models (from configs) and official-format parity checkpoints."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))  # for parity_rule

from style_transformer import StyleTransformer, model_preset  # noqa: E402

import parity_rule  # noqa: E402


if os.environ.get("PYTEST_XDIST_WORKER"):  # parallel workers (make test-fast): one core each
    torch.set_num_threads(1)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """GPU tests are skipped, not failed, where there is no CUDA device.

    Tests that run graphs on OpenVINO carry the ``openvino`` marker (a parametrised case by its id)
    and go last. Its CPU plugin keeps worker threads for the life of the process, and beside them the
    trainers' stop tests (a step loop that sends itself SIGTERM) end in a segmentation fault most of
    the time; in separate processes both pass (``make test-fast`` runs them in a pytest of their own)."""
    late = [i for i in items if i.get_closest_marker("openvino") or "[openvino" in i.nodeid]
    for item in late:
        if not item.get_closest_marker("openvino"):
            item.add_marker(pytest.mark.openvino)
    items[:] = [i for i in items if i not in late] + late
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture
def tiny_cfg():
    return model_preset("tiny")


def make_tiny_model(seed: int = 0) -> StyleTransformer:
    torch.manual_seed(seed)
    model = StyleTransformer(model_preset("tiny")).eval()
    with torch.no_grad():  # non-trivial BN statistics and latent_avg, so that loading them matters
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.9, 1.1)
        model.decoder.latent_avg.normal_(0, 0.1)
        for name, p in model.named_parameters():
            if name.endswith("noise.weight"):
                p.normal_(0, 0.1)
    return model


@pytest.fixture
def tiny_model():
    return make_tiny_model()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    from style_transformer import save_model

    path = tmp_path_factory.mktemp("tiny") / "model.safetensors"
    save_model(make_tiny_model(), path)
    return path


@pytest.fixture(scope="session")
def official_checkpoint(tmp_path_factory):
    """The official inversion checkpoint format, filled by the parity weight rule (seed 1)."""
    path = tmp_path_factory.mktemp("official") / "style_transformer.pt"
    torch.save(parity_rule.official_styletransformer_checkpoint(1), path)
    return path


@pytest.fixture(scope="session")
def rosinality_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("rosinality") / "stylegan2-256.pt"
    torch.save(parity_rule.rosinality_g256_checkpoint(1), path)
    return path


@pytest.fixture
def image_dir(tmp_path):
    """Three small RGB images of different sizes and formats."""
    rng = np.random.default_rng(0)
    d = tmp_path / "images"
    (d / "sub").mkdir(parents=True)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(d / "a.png")
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(d / "b.jpg")
    Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(d / "sub" / "c.webp")
    return d


@pytest.fixture(scope="session")
def tiny_editing(tmp_path_factory, tiny_checkpoint):
    """A tiny editing setup: 40 rendered faces (32 px), their latents from the tiny model, and an
    editing folder (directions, W+ classifier, reference editors for Smiling and Bangs)."""
    from style_transformer.cli import main
    from style_transformer.data.synthetic import write_dataset

    root = tmp_path_factory.mktemp("editing")
    write_dataset(root / "faces", 40, size=32, seed=3)
    assert main(["invert", str(root / "faces"), "--checkpoint", str(tiny_checkpoint), "--out", str(root / "inv")]) == 0
    assert main(["train-editor", "--latents", str(root / "inv" / "latents.npz"), "--labels",
                 str(root / "faces" / "attributes.csv"), "--out", str(root / "editing"), "--attributes", "Smiling",
                 "Bangs", "--epochs", "2", "--editor-steps", "3", "--hidden", "32", "16",
                 "--generator", str(tiny_checkpoint)]) == 0
    return root

