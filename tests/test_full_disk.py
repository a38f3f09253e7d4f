"""Full disks and read-only outputs: one line naming the path, a non-zero exit, no partial or
zero-byte file left, the previous file intact. Simulated (writes raising ENOSPC) everywhere, and for
real on a small tmpfs where this test may mount one (root)."""

import errno
import os
import subprocess

import pytest
import torch

from style_transformer.cli import main


def _no_partial_files(folder):
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert not [p for p in files if p.name.endswith(".tmp")], "a temporary file was left"
    assert not [p for p in files if p.stat().st_size == 0], "a zero-byte file was left"
    return files


def _one_line_error(capsys, *words):
    err = capsys.readouterr().err
    lines = [line for line in err.replace("\r", "\n").splitlines() if "style-transformer: error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0]
    return lines[0]


def _enospc(*a, **k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_invert_on_a_full_disk(tiny_checkpoint, image_dir, tmp_path, capsys, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(Image.Image, "save", _enospc)
    assert main(["invert", str(image_dir), "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "o")]) == 2
    _one_line_error(capsys, "No space left on device", str(tmp_path / "o"))
    assert _no_partial_files(tmp_path / "o") == []


def test_edit_on_a_full_disk(tiny_checkpoint, tiny_editing, image_dir, tmp_path, capsys, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(Image.Image, "save", _enospc)
    assert main(["edit", str(image_dir), "--attribute", "Smiling", "--strength", "2", "--checkpoint",
                 str(tiny_checkpoint), "--editing", str(tiny_editing / "editing"), "--out", str(tmp_path / "e")]) == 2
    _one_line_error(capsys, "No space left on device", str(tmp_path / "e"))
    assert _no_partial_files(tmp_path / "e") == []


def test_generate_and_convert_on_a_full_disk(tiny_checkpoint, tmp_path, capsys, monkeypatch):
    import safetensors.torch

    monkeypatch.setattr(safetensors.torch, "save_file", _enospc)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "m.safetensors").write_bytes(b"previous")
    assert main(["convert", str(tiny_checkpoint), str(tmp_path / "c" / "m.safetensors")]) == 2
    _one_line_error(capsys, "m.safetensors", "No space left")
    assert (tmp_path / "c" / "m.safetensors").read_bytes() == b"previous"  # the previous file is intact
    _no_partial_files(tmp_path / "c")


def test_a_checkpoint_write_that_fails_keeps_the_previous_one(tmp_path, monkeypatch):
    from style_transformer.errors import OutputError
    from style_transformer.training.common import write_checkpoint

    path = tmp_path / "checkpoint.pt"
    write_checkpoint({"step": 1}, path, 0, 1)

    def partial_then_full(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"PK\x03\x04 half a checkpoint")
        _enospc()

    monkeypatch.setattr(torch, "save", partial_then_full)
    with pytest.raises(OutputError, match="checkpoint.pt: cannot write"):
        write_checkpoint({"step": 2}, path, 0, 1)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 300 kB tmpfs (needs root and mount); yields its folder and a function that makes it read-only."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)],
                                           capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")

    def read_only():
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)

    try:
        yield mnt, read_only
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def test_dataset_synth_fills_a_real_disk(small_tmpfs, capsys):
    mnt, _ = small_tmpfs
    assert main(["dataset", "synth", "--n", "400", "--size", "64", "--out", str(mnt / "faces")]) == 2
    _one_line_error(capsys, "No space left on device", str(mnt / "faces"))
    from PIL import Image

    files = _no_partial_files(mnt)
    assert files  # some images fit; every one left is whole
    for f in files:
        with Image.open(f) as im:
            im.load()


def test_read_only_output_folder(small_tmpfs, tiny_checkpoint, image_dir, capsys):
    mnt, read_only = small_tmpfs
    (mnt / "o").mkdir()
    read_only()
    assert main(["invert", str(image_dir), "--checkpoint", str(tiny_checkpoint), "--out", str(mnt / "o")]) == 2
    _one_line_error(capsys, "Read-only file system", str(mnt / "o"))
    assert main(["generate", "--generator", str(tiny_checkpoint), "--n", "1", "--out", str(mnt / "g")]) == 2
    _one_line_error(capsys, str(mnt / "g"))
    assert not list(mnt.rglob("*.png"))
