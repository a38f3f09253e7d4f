"""The shipped default models: present, loadable, clear errors when missing."""

import pytest

from style_transformer import pretrained
from style_transformer.checkpoints import CheckpointError
from style_transformer.cli import main


@pytest.mark.parametrize("kind", sorted(pretrained.DEFAULT_FILES))
def test_every_default_ships_and_loads_in_fp16(kind):
    from safetensors import safe_open

    path = pretrained.default_path(kind)
    assert path.stat().st_size < 20 * 2**20
    with safe_open(str(path), framework="pt") as f:
        assert all(f.get_tensor(k).dtype.is_floating_point is False or f.get_tensor(k).dtype.itemsize == 2
                   for k in f.keys())
    model = pretrained.load_default(kind)
    assert not model.training and all(p.dtype.itemsize == 4 for p in model.parameters())


def test_missing_defaults_are_clear_errors(monkeypatch, tmp_path, capsys):
    with pytest.raises(CheckpointError, match="no shipped default"):
        pretrained.default_path("editor")
    monkeypatch.setattr(pretrained, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(CheckpointError, match="missing"):
        pretrained.default_path("generator")
    assert main(["generate", "--n", "1", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "shipped default generator is missing" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()
