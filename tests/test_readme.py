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
    assert tuple(namespace["samples"].images.shape) == (4, 3, 64, 64)
    assert tuple(namespace["samples"].ws.shape) == (4, 10, 256)
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


def test_readme_quick_start_runs(tmp_path, monkeypatch):
    """The README's first command block runs as written (serve aside: it blocks) on two held-out
    faces, with the shipped models."""
    import shlex

    from style_transformer.cli import main

    block = re.findall(r"## Quick start\n\n```bash\n(.*?)```", README.read_text(), re.S)[0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    faces, _ = held_out_faces(2)
    Image.fromarray(faces[0]).resize((256, 256)).save("photos/face.png")
    Image.fromarray(faces[1]).resize((256, 256)).save("other.png")
    ran = 0
    for line in block.splitlines():
        argv = shlex.split(line.split("  #")[0])
        if not argv or argv[1] == "serve":
            continue
        code = main(argv[1:])
        # --align needs a face detector's landmarks; a rendered cartoon face may have none (exit 1,
        # "no face", nothing else wrong); every other command must succeed
        assert code == 0 or ("--align" in argv and code == 1), (line, code)
        ran += 1
    assert ran == 5
    assert (tmp_path / "inverted" / "latents.npz").exists() and (tmp_path / "edited" / "face.png").exists()
    assert (tmp_path / "ref" / "face.png").exists() and len(list((tmp_path / "samples").glob("*.png"))) == 16
