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


def test_skip_existing_redoes_only_what_is_missing(tiny_checkpoint, image_dir, tmp_path):
    pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu")
    first = invert_files(pipe, [image_dir], tmp_path / "out", batch_size=2)
    codes = first.latents
    (tmp_path / "out" / "b.png").unlink()  # b's result is gone: only b is done again
    calls = []
    original = pipe.invert

    def spy(images, **kw):
        calls.append(len(images))
        return original(images, **kw)

    pipe.invert = spy
    again = invert_files(pipe, [image_dir], tmp_path / "out", batch_size=2, skip_existing=True)
    assert again.skipped == ["a", "c"] and again.written == ["b"] and calls == [1]
    after = again.latents
    assert sorted(after) == ["a", "b", "c"]
    for k in after:
        np.testing.assert_allclose(after[k], codes[k], rtol=0, atol=1e-5)


def test_an_interrupted_run_keeps_what_it_finished_and_continues(tiny_checkpoint, image_dir, tmp_path):
    from style_transformer.workflow import BatchInterrupted

    pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu")
    original, seen = pipe.invert, []

    def interrupt_second_batch(images, **kw):
        seen.append(1)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return original(images, **kw)

    pipe.invert = interrupt_second_batch
    with pytest.raises(BatchInterrupted, match="interrupted after 1 results of 3 inputs") as e:
        invert_files(pipe, [image_dir], tmp_path / "out", batch_size=1)
    assert e.value.exit_code == 130 and e.value.run.written == ["a"]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "latents.npz"]  # no temporary file left
    with np.load(out / "latents.npz") as npz:
        assert npz.files == ["a"]
    pipe.invert = original
    rest = invert_files(pipe, [image_dir], out, batch_size=1, skip_existing=True)
    assert rest.skipped == ["a"] and rest.written == ["b", "c"]
    assert sorted(rest.latents) == ["a", "b", "c"]


def test_cli_interrupt_says_how_to_continue(tiny_checkpoint, image_dir, tmp_path, capsys, monkeypatch):
    from style_transformer.cli import main
    from style_transformer.inference import InversionPipeline

    def interrupt(self, images, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(InversionPipeline, "invert", interrupt)
    assert main(["invert", str(image_dir), "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "o")]) == 130
    err = capsys.readouterr().err
    assert "interrupted after 0 results of 3 inputs" in err and "--skip-existing" in err and "Traceback" not in err
    assert not (tmp_path / "o" / "latents.npz").exists()  # nothing finished: no latents file
