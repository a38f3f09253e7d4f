"""The image-loading path: modes, EXIF, preprocessing values."""

import numpy as np
import pytest
import torch
from PIL import Image

from style_transformer.data import ImageLoadError, InputError, collect_images, load_image, preprocess


def test_modes_are_converted_to_rgb(tmp_path):
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 255, (8, 8), dtype=np.uint8)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    Image.fromarray(rng.integers(0, 255, (8, 8, 4), dtype=np.uint8), "RGBA").save(tmp_path / "a.png")
    Image.fromarray(gray, "L").convert("P").save(tmp_path / "p.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "h.png")
    for name in ("g", "a", "p", "h"):
        im = load_image(tmp_path / f"{name}.png")
        assert im.mode == "RGB" and im.size == (8, 8)
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "g.png"))[..., 0], gray)
    np.testing.assert_array_equal(np.asarray(load_image(tmp_path / "h.png"))[..., 1], gray)


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((10, 20, 3), np.uint8)
    arr[:, :5] = 255
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90 CW on display
    im.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").size == (10, 20)


def test_corrupt_and_missing(tmp_path):
    (tmp_path / "x.png").write_bytes(b"nope")
    with pytest.raises(ImageLoadError, match="x.png"):
        load_image(tmp_path / "x.png")
    with pytest.raises(InputError, match="missing"):
        collect_images([tmp_path / "missing"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no image files"):
        collect_images([empty])


def test_preprocess_matches_official_transform():
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (30, 20, 3), dtype=np.uint8)
    x = preprocess([Image.fromarray(arr)], 16)
    want = np.asarray(Image.fromarray(arr).resize((16, 16), Image.BILINEAR), np.float64) / 255.0
    want = (want - 0.5) / 0.5
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), want, atol=1e-6)
    assert torch.equal(preprocess([arr], 16), x)  # arrays take the same path
    t = torch.rand(2, 3, 16, 16) * 2 - 1
    assert torch.equal(preprocess([t], 16), t)  # tensors are already normalised
    with pytest.raises(ValueError, match="NaN"):
        preprocess([torch.full((3, 16, 16), float("nan"))], 16)


def test_atomic_path_permissions_and_cleanup(tmp_path):
    import os

    from style_transformer.utils import atomic_path

    with atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("x")
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert (tmp_path / "a.txt").read_text() == "x" and sorted(os.listdir(tmp_path)) == ["a.txt"]
