"""Image attribute classifier: shapes, save/load, learning a known rule, the CLI."""

import numpy as np
import pytest
import torch

from style_transformer import load_model, save_model
from style_transformer.config import AttributeClassifierConfig, ConfigError
from style_transformer.models import AttributeClassifier
from style_transformer.training.classifier import ClassifierTrainConfig, evaluate_classifier, train_classifier

CFG = AttributeClassifierConfig(attributes=("red", "bright"), size=16, channels=(8, 16))


class ToyColours(torch.utils.data.Dataset):
    """Random flat-colour images; ``red`` = red channel above the others, ``bright`` = mean > 0."""

    def __init__(self, n, seed):
        g = torch.Generator().manual_seed(seed)
        colour = torch.rand(n, 3, 1, 1, generator=g) * 2 - 1
        self.img = colour.expand(-1, -1, 16, 16) + 0.1 * torch.randn(n, 3, 16, 16, generator=g)
        c = colour.flatten(1)
        self.y = torch.stack([(c[:, 0] > c[:, 1:].max(1).values), c.mean(1) > 0], 1).float()

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.img[i], self.y[i]


def test_config_is_validated():
    with pytest.raises(ConfigError):
        AttributeClassifierConfig()
    with pytest.raises(ConfigError):
        AttributeClassifierConfig(attributes=("a", "a"))


def test_shapes_resize_and_round_trip(tmp_path):
    torch.manual_seed(0)
    m = AttributeClassifier(CFG).eval()
    x = torch.rand(3, 3, 40, 40) * 2 - 1
    assert m(x).shape == (3, 2)
    p = m.predict(x, batch_size=2)
    assert p.shape == (3, 2) and ((p >= 0) & (p <= 1)).all()
    save_model(m, tmp_path / "c.safetensors", dtype=torch.float16)
    back = load_model(tmp_path / "c.safetensors", kind="attribute_classifier")
    assert back.cfg == CFG and back.attributes == ["red", "bright"]
    torch.testing.assert_close(back.predict(x), p, atol=5e-3, rtol=0)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        m(torch.zeros(3, 16, 16))


def test_learns_a_known_rule():
    cfg = ClassifierTrainConfig(model=CFG, batch_size=32, epochs=6, lr=5e-3, noise_std=0.0, max_shift=0)
    model, acc = train_classifier(cfg, ToyColours(512, 0), ToyColours(256, 1), progress=False)
    assert set(acc) == {"red", "bright"}
    assert acc["red"] > 0.85 and acc["bright"] > 0.9
    # evaluate_classifier agrees with a direct count
    val = ToyColours(256, 1)
    direct = ((model.predict(val.img) > 0.5) == (val.y > 0.5)).float().mean(0)
    np.testing.assert_allclose([acc["red"], acc["bright"]], direct.numpy(), atol=1e-6)
    assert evaluate_classifier(model, val) == acc


def test_cli_train_classifier(tmp_path, capsys):
    from style_transformer.cli import main
    from style_transformer.data.synthetic import BINARY_ATTRIBUTES, write_dataset

    write_dataset(tmp_path / "faces", 48, size=32, seed=2)
    out = tmp_path / "c.safetensors"
    assert main(["train-classifier", "--data", str(tmp_path / "faces"), "--out", str(out), "--size", "32",
                 "--epochs", "1", "--batch-size", "16"]) == 0
    assert "validation accuracy" in capsys.readouterr().out
    m = load_model(out, kind="attribute_classifier")
    assert m.attributes == list(BINARY_ATTRIBUTES) and m.cfg.size == 32
    assert main(["train-classifier", "--data", str(tmp_path / "faces"), "--out", str(tmp_path / "x.safetensors"),
                 "--labels", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err
