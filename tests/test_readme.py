"""The README's Python example runs as written, on the shipped default models."""

import re
from pathlib import Path

from PIL import Image

from style_transformer.demo import held_out_faces

README = Path(__file__).parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python example"
    monkeypatch.chdir(tmp_path)
    faces, _ = held_out_faces(2)
    Image.fromarray(faces[0]).save("face.png")
    Image.fromarray(faces[1]).save("other.png")
    namespace = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert tuple(namespace["res"].ws.shape) == (1, 10, 256)
    assert tuple(namespace["again"].shape) == (1, 3, 64, 64)
    assert tuple(namespace["samples"].shape) == (4, 3, 64, 64)
    assert "torch.Size([1, 10, 256]) torch.Size([1, 3, 64, 64])" in capsys.readouterr().out
    if "smiling" in namespace:
        assert tuple(namespace["smiling"].ws.shape) == (1, 10, 256)
        assert not namespace["smiling"].ws.equal(namespace["res"].ws)


def test_cli_reference_is_up_to_date():
    """docs/cli.md is the --help of every command; regenerate it with scripts/gen_cli_docs.py."""
    import importlib.util

    path = Path(__file__).parents[1] / "scripts" / "gen_cli_docs.py"
    spec = importlib.util.spec_from_file_location("gen_cli_docs", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.DOC.read_text() == mod.render(), "docs/cli.md is stale: run python scripts/gen_cli_docs.py"


def test_readme_links_resolve():
    root = Path(__file__).parents[1]
    for doc in [README, *sorted((root / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name}: broken link {target}"
