"""CLI: ``cli.main(argv)`` end to end on tiny and official-format checkpoints."""

import numpy as np
import pytest
import torch
from PIL import Image

from style_transformer import load_pipeline
from style_transformer.cli import main


def test_invert_writes_pngs_and_exact_latents(tiny_checkpoint, image_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["invert", str(image_dir), "--checkpoint", str(tiny_checkpoint), "--out", str(out),
                 "--batch-size", "1", "--device", "cpu"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png", "latents.npz"]
    with np.load(out / "latents.npz") as z:
        assert sorted(z.files) == ["a", "b", "c"]
        ws = {k: z[k] for k in z.files}
    assert ws["a"].shape == (8, 32) and ws["a"].dtype == np.float32
    # the latents are exactly what went into the generator: rendering them gives the same PNG
    pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu")
    expected = pipe.invert([image_dir / "a.png"])
    np.testing.assert_array_equal(ws["a"], expected.ws[0].numpy())
    rendered = pipe.generate(torch.from_numpy(ws["a"])[None])
    png = np.asarray(Image.open(out / "a.png"))
    assert png.shape == (32, 32, 3)
    want = ((rendered[0] + 1) / 2).clamp(0, 1).mul(255).permute(1, 2, 0).numpy().astype(np.uint8)
    np.testing.assert_array_equal(png, want)
    assert "inverted 3 of 3" in capsys.readouterr().out


def test_invert_skips_corrupt_files_and_exits_nonzero(tiny_checkpoint, image_dir, tmp_path, capsys):
    (image_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (image_dir / "notes.txt").write_text("not an image")  # not an image extension: not collected
    out = tmp_path / "out"
    rc = main(["invert", str(image_dir), str(image_dir / "notes.txt"), "--checkpoint", str(tiny_checkpoint),
               "--out", str(out)])
    err = capsys.readouterr()
    assert rc == 1
    assert "broken.png" in err.err and "notes.txt" in err.err
    assert "2 failed" in err.out
    with np.load(out / "latents.npz") as z:
        assert sorted(z.files) == ["a", "b", "c"]


def test_invert_missing_input_is_one_line_exit_2(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["invert", str(tmp_path / "nope.png"), "--checkpoint", str(tiny_checkpoint), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "nope.png" in err[0] and "Traceback" not in err[0]
    assert not out.exists()


def test_invert_wrong_checkpoint_kind_exit_2(rosinality_checkpoint, image_dir, tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["invert", str(image_dir), "--checkpoint", str(rosinality_checkpoint), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "generator checkpoint" in err[0]
    assert not out.exists()


def test_invert_random_noise_differs(tiny_checkpoint, image_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert main(["invert", str(image_dir / "a.png"), "--checkpoint", str(tiny_checkpoint), "--out", str(d),
                     "--noise", "random"]) == 0
    with np.load(a / "latents.npz") as za, np.load(b / "latents.npz") as zb:
        np.testing.assert_array_equal(za["a"], zb["a"])  # codes do not depend on noise
    assert not np.array_equal(np.asarray(Image.open(a / "a.png")), np.asarray(Image.open(b / "a.png")))


def test_generate_from_latents_broadcast_and_cut(tiny_checkpoint, tmp_path):
    pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu")
    w = np.random.default_rng(0).standard_normal(32).astype(np.float32)
    long = np.random.default_rng(1).standard_normal((12, 32)).astype(np.float32)  # 12 > 8 rows
    np.savez(tmp_path / "l.npz", single=w, long=long)
    out = tmp_path / "out"
    assert main(["generate", "--generator", str(tiny_checkpoint), "--latents", str(tmp_path / "l.npz"),
                 "--out", str(out)]) == 0
    def as_png(img):
        return ((img + 1) / 2).clamp(0, 1).mul(255).permute(1, 2, 0).numpy().astype(np.int16)

    # rendered together in one batch; compare with single renders up to one 8-bit level (the
    # batched convolution may round the last float bit differently before truncation)
    got = np.asarray(Image.open(out / "single.png")).astype(np.int16)
    want = pipe.generate(torch.from_numpy(np.tile(w, (8, 1)))[None])
    assert np.abs(got - as_png(want[0])).max() <= 1
    got_long = np.asarray(Image.open(out / "long.png")).astype(np.int16)
    want_long = pipe.generate(torch.from_numpy(long[:8])[None])
    assert np.abs(got_long - as_png(want_long[0])).max() <= 1
    assert np.abs(got_long - got).max() > 10  # and they are different images


def test_generate_wrong_width_exit_2_nothing_written(tiny_checkpoint, tmp_path, capsys):
    np.savez(tmp_path / "l.npz", ok=np.zeros((8, 32), np.float32), bad=np.zeros((8, 31), np.float32))
    out = tmp_path / "out"
    rc = main(["generate", "--generator", str(tiny_checkpoint), "--latents", str(tmp_path / "l.npz"),
               "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "'bad'" in err[0] and "width 32" in err[0]
    assert not out.exists()
    np.savez(tmp_path / "n.npz", nan=np.full((8, 32), np.nan, np.float32))
    assert main(["generate", "--generator", str(tiny_checkpoint), "--latents", str(tmp_path / "n.npz"),
                 "--out", str(out)]) == 2
    (tmp_path / "x.npz").write_text("junk")
    assert main(["generate", "--generator", str(tiny_checkpoint), "--latents", str(tmp_path / "x.npz"),
                 "--out", str(out)]) == 2
    assert not out.exists()


def test_generate_random_samples_reproducible(tiny_checkpoint, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        assert main(["generate", "--generator", str(tiny_checkpoint), "--n", "3", "--seed", "5",
                     "--truncation", "0.5", "--out", str(d)]) == 0
    assert sorted(p.name for p in a.iterdir()) == ["latents.npz", "sample_0000.png", "sample_0001.png",
                                                   "sample_0002.png"]
    for name in ("sample_0000.png", "sample_0002.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    # re-rendering the saved latents reproduces the samples
    c = tmp_path / "c"
    assert main(["generate", "--generator", str(tiny_checkpoint), "--latents", str(a / "latents.npz"),
                 "--out", str(c)]) == 0
    assert (c / "sample_0001.png").read_bytes() == (a / "sample_0001.png").read_bytes()


def test_generate_bad_truncation_is_usage_error(tiny_checkpoint, tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["generate", "--generator", str(tiny_checkpoint), "--n", "1", "--truncation", "2",
              "--out", str(tmp_path)])
    assert e.value.code == 2


@pytest.mark.slow  # heavy: full-size network(s)
def test_convert_official_then_invert_same_result(official_checkpoint, tmp_path):
    dst = tmp_path / "st.safetensors"
    assert main(["convert", str(official_checkpoint), str(dst)]) == 0
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (80, 60, 3), dtype=np.uint8)).save(tmp_path / "x.png")
    for ck, d in ((official_checkpoint, "a"), (dst, "b")):
        assert main(["invert", str(tmp_path / "x.png"), "--checkpoint", str(ck), "--out", str(tmp_path / d)]) == 0
    assert (tmp_path / "a" / "x.png").read_bytes() == (tmp_path / "b" / "x.png").read_bytes()
    with np.load(tmp_path / "a" / "latents.npz") as z:
        assert z["x"].shape == (18, 512)
    assert np.asarray(Image.open(tmp_path / "a" / "x.png")).shape == (256, 256, 3)


def test_duplicate_stems_are_kept_apart(tiny_checkpoint, image_dir, tmp_path):
    Image.open(image_dir / "a.png").save(image_dir / "sub" / "a.png")
    out = tmp_path / "out"
    assert main(["invert", str(image_dir), "--checkpoint", str(tiny_checkpoint), "--out", str(out)]) == 0
    with np.load(out / "latents.npz") as z:
        assert sorted(z.files) == ["a", "a_1", "b", "c"]


def test_output_path_that_is_a_file_is_exit_2(tiny_checkpoint, image_dir, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc = main(["invert", str(image_dir), "--checkpoint", str(tiny_checkpoint), "--out", str(blocker / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "cannot create the output folder" in err[0]


def test_nan_weights_are_refused(tiny_model, image_dir, tmp_path, capsys):
    from style_transformer import save_model

    with torch.no_grad():
        tiny_model.encoder.latlayer1.weight[0, 0] = float("nan")
    path = save_model(tiny_model, tmp_path / "nan.safetensors")
    rc = main(["invert", str(image_dir), "--checkpoint", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "encoder.latlayer1.weight" in err[0] and "NaN" in err[0]
    assert not (tmp_path / "out").exists()


def test_generate_without_generator_uses_the_shipped_model(tmp_path):
    from style_transformer.pretrained import load_default

    out = tmp_path / "s"
    assert main(["generate", "--n", "2", "--seed", "1", "--out", str(out)]) == 0
    g = load_default("generator")
    with np.load(out / "latents.npz") as z:
        ws = z["sample_0000"]
    assert ws.shape == (g.num_ws, g.style_dim)
    with Image.open(out / "sample_0001.png") as im:
        assert im.size == (g.size, g.size)
    # the shipped file carries a real W mean (truncation pulls toward it), within fp16's precision
    torch.testing.assert_close(g.latent_avg, g.mean_latent(4096, seed=0), atol=2e-3, rtol=2e-3)
