"""The shared batch workflow (files in, PNGs and latents out) without the command line."""

import numpy as np
import pytest
import torch

from style_transformer import load_pipeline
from style_transformer.data.images import load_image
from style_transformer.errors import InputError, UsageError
from style_transformer.workflow import edit_files, invert_files, unique_stems


def test_unique_stems(tmp_path):
    files = [tmp_path / "a.png", tmp_path / "x" / "a.jpg", tmp_path / "b.png", tmp_path / "y" / "a.png"]
    assert unique_stems(files) == ["a", "a_1", "b", "a_2"]


def test_invert_files_writes_pngs_and_latents_and_skips_unreadable(tiny_checkpoint, image_dir, tmp_path):
    pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu")
    (image_dir / "broken.png").write_bytes(b"not an image")
    run = invert_files(pipe, [image_dir], tmp_path / "out", batch_size=2)
    assert run.total == 4 and run.failed == [str(image_dir / "broken.png")]
    assert sorted(p.name for p in run.out.iterdir()) == ["a.png", "b.png", "c.png", "latents.npz"]
    with np.load(run.latents_path) as npz:
        assert sorted(npz.files) == ["a", "b", "c"]
        # the same codes as the pipeline's own inversion of the same images
        expected = pipe.invert([load_image(image_dir / "a.png")]).ws[0].numpy()
        np.testing.assert_allclose(npz["a"], expected, rtol=0, atol=1e-5)
    assert not list(run.out.glob("*.tmp*"))  # atomic writes leave no temporaries
    with pytest.raises(InputError, match="no such file"):
        invert_files(pipe, [tmp_path / "missing"], tmp_path / "out2")
    with pytest.raises(UsageError, match="aligned faces"):
        invert_files(pipe, [image_dir], tmp_path / "out3", paste_back=True)
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()


def test_edit_files_edits_the_inversions_and_checks_first(tiny_checkpoint, tiny_editing, image_dir, tmp_path):
    pipe = load_pipeline(checkpoint=tiny_checkpoint, editing=tiny_editing / "editing", device="cpu")
    run = edit_files(pipe, [image_dir / "a.png"], tmp_path / "e", "Smiling", strength=2.0)
    ws = pipe.invert([load_image(image_dir / "a.png")]).ws
    expected = pipe.edit_ws(ws, "Smiling", strength=2.0)
    with np.load(run.latents_path) as npz:
        np.testing.assert_allclose(npz["a"], expected[0].numpy(), rtol=0, atol=1e-5)
    assert (run.out / "a.png").is_file()
    for bad in ({"attribute": "NoSuch", "strength": 1.0}, {"attribute": "Smiling"},
                {"attribute": "Smiling", "strength": float("nan")},
                {"attribute": "Smiling", "strength": 1.0, "method": "reference"}):
        attribute = bad.pop("attribute")
        with pytest.raises((InputError, UsageError)):
            edit_files(pipe, [image_dir], tmp_path / "bad", attribute, **bad)
    assert not (tmp_path / "bad").exists()  # refused before anything was written
    ref = edit_files(pipe, [image_dir / "b.jpg"], tmp_path / "r", "Bangs", reference=image_dir / "a.png")
    assert ref.failed == [] and torch.isfinite(torch.from_numpy(np.load(ref.latents_path)["b"])).all()
