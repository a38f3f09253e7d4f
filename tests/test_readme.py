"""The README's Python example runs as written (with a tiny model standing in for the checkpoint)."""

import re
from pathlib import Path

import numpy as np
from PIL import Image

from style_transformer import save_model

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, tiny_model, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    save_model(tiny_model, tmp_path / "model.safetensors")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)).save("face.png")
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert tuple(namespace["res"].ws.shape) == (1, 8, 32)
    assert tuple(namespace["again"].shape) == (1, 3, 32, 32)
    assert tuple(namespace["samples"].shape) == (4, 3, 32, 32)
    assert "torch.Size([1, 8, 32])" in capsys.readouterr().out
