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


def _rgb(im):
    from style_transformer.data.images import to_rgb

    out = to_rgb(im)
    assert out.mode == "RGB" and out.size == im.size
    return np.asarray(out, dtype=np.int64)


def test_16_and_32_bit_images_are_scaled_with_rounding():
    """16-bit: v -> floor(v / 65535 * 255 + 0.5); 32-bit 'I' images whose values fit 8 bits are kept,
    larger ones are read as 16-bit."""
    v16 = np.array([[0, 128, 129, 257, 32767, 32768, 65534, 65535]], dtype=np.uint16)
    want = np.floor(v16.astype(np.float64) / 65535 * 255 + 0.5)
    got = _rgb(Image.fromarray(v16))
    assert Image.fromarray(v16).mode.startswith("I;16")
    np.testing.assert_array_equal(got[..., 0], want)
    assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()  # gray in every channel
    small = np.array([[0, 7, 128, 255]], dtype=np.int32)
    np.testing.assert_array_equal(_rgb(Image.fromarray(small, "I"))[..., 0], small)
    large = np.array([[0, 256, 65535, 1000]], dtype=np.int32)
    np.testing.assert_array_equal(_rgb(Image.fromarray(large, "I"))[..., 0],
                                  np.floor(large.astype(np.float64) / 65535 * 255 + 0.5))


def test_transparency_is_composited_on_white():
    rgba = np.array([[[10, 200, 30, 0], [10, 200, 30, 255], [100, 50, 0, 128]]], dtype=np.uint8)
    got = _rgb(Image.fromarray(rgba, "RGBA"))
    np.testing.assert_array_equal(got[0, 0], [255, 255, 255])  # fully transparent: white, not the hidden colour
    np.testing.assert_array_equal(got[0, 1], [10, 200, 30])  # opaque: the colour
    a = 128 / 255
    np.testing.assert_allclose(got[0, 2], np.array([100, 50, 0]) * a + 255 * (1 - a), atol=1)
    la = np.array([[[50, 0], [50, 255]]], dtype=np.uint8)
    np.testing.assert_array_equal(_rgb(Image.fromarray(la, "LA"))[0], [[255, 255, 255], [50, 50, 50]])
    pal = Image.fromarray(np.array([[0, 1]], dtype=np.uint8), "P")
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.info["transparency"] = 0  # palette entry 0 is transparent
    np.testing.assert_array_equal(_rgb(pal)[0], [[255, 255, 255], [0, 0, 255]])
    opaque = Image.fromarray(np.array([[0, 1]], dtype=np.uint8), "P")
    opaque.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    np.testing.assert_array_equal(_rgb(opaque)[0], [[255, 0, 0], [0, 0, 255]])


def test_preprocess_inputs_of_every_kind():
    # uint8 at the input size: exactly x / 127.5 - 1 (float64 reference)
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    x = preprocess([arr], (12, 10))
    assert x.shape == (1, 3, 12, 10) and x.dtype == torch.float32
    np.testing.assert_allclose(x[0].permute(1, 2, 0).numpy(), arr / 127.5 - 1, atol=1e-6)
    # float arrays in [0, 1]: clipped, then rounded half up to 8 bits
    f = np.array([[[0.0, 1.0, 0.2], [1.7, -0.4, 0.5]]])
    want = np.floor(np.clip(f, 0, 1) * 255 + 0.5) / 127.5 - 1
    np.testing.assert_allclose(preprocess([f], (1, 2))[0].permute(1, 2, 0).numpy(), want, atol=1e-6)
    with pytest.raises(ValueError, match="NaN or Inf"):
        preprocess([np.full((4, 4, 3), np.inf)], 4)
    # a 2-D array is gray
    g = rng.integers(0, 256, (6, 6), dtype=np.uint8)
    xg = preprocess([g], 6)[0]
    assert torch.equal(xg[0], xg[1]) and torch.equal(xg[1], xg[2])
    np.testing.assert_allclose(xg[0].numpy(), g / 127.5 - 1, atol=1e-6)
    # non-square sizes keep (height, width); tensors of another size are resized (a constant stays constant)
    t = torch.full((2, 3, 9, 7), 0.25)
    y = preprocess([t], (4, 6))
    assert y.shape == (2, 3, 4, 6) and torch.allclose(y, torch.full_like(y, 0.25), atol=1e-6)
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        preprocess([torch.zeros(1, 4, 8, 8)], 8)
    with pytest.raises(ValueError, match=r"\[3, H, W\]"):
        preprocess([torch.zeros(8, 8)], 8)
    assert preprocess([], (5, 3)).shape == (0, 3, 5, 3)
    # a mix of kinds in one call, in order
    mixed = preprocess([arr, Image.fromarray(arr), torch.from_numpy(arr / 127.5 - 1).permute(2, 0, 1).float()],
                       (12, 10))
    assert mixed.shape == (3, 3, 12, 10)
    assert torch.allclose(mixed[0], mixed[1]) and torch.allclose(mixed[0], mixed[2], atol=1e-6)


def test_16_bit_byte_orders_dark_images_and_32_bit_edges():
    want = lambda v: np.floor(np.asarray(v, np.float64) / 65535 * 255 + 0.5)  # noqa: E731
    values = [1, 300, 33025, 65407]  # 33025 and 65407 round differently if the scale were 65536
    for mode, dtype in (("I;16B", ">u2"), ("I;16L", "<u2"), ("I;16", "<u2")):
        im = Image.frombytes(mode, (4, 1), np.array(values, dtype=dtype).tobytes())
        np.testing.assert_array_equal(_rgb(im)[0, :, 0], want(values), err_msg=mode)
    # a dark 16-bit image (every value <= 255) is still 16-bit: near black, not stretched to 8 bits
    dark = np.array([[0, 100, 255]], dtype=np.uint16)
    np.testing.assert_array_equal(_rgb(Image.fromarray(dark))[0, :, 0], want(dark[0]))
    # 32-bit: 256 already needs 16 bits; out-of-range values are clipped, not wrapped
    edge = np.array([[0, 256, -5, 70000]], dtype=np.int32)
    np.testing.assert_array_equal(_rgb(Image.fromarray(edge, "I"))[0, :, 0], [0, want(256), 0, 255])


def test_palette_with_alpha_is_composited_on_white():
    pa = Image.new("PA", (2, 1))
    pa.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    pa.putpixel((0, 0), (0, 0))  # entry 0, alpha 0
    pa.putpixel((1, 0), (1, 255))  # entry 1, opaque
    np.testing.assert_array_equal(_rgb(pa)[0], [[255, 255, 255], [40, 50, 60]])


def test_preprocess_takes_paths_single_channel_arrays_and_tensors_first(tmp_path):
    rng = np.random.default_rng(2)
    arr = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    t = torch.zeros(3, 8, 8)
    one = rng.integers(0, 256, (8, 8, 1), dtype=np.uint8)  # HxWx1: gray
    x = preprocess([t, tmp_path / "a.png", str(tmp_path / "a.png"), one], 8)
    assert x.shape == (4, 3, 8, 8)  # a tensor first does not end the list
    assert torch.equal(x[0], t)
    np.testing.assert_allclose(x[1].permute(1, 2, 0).numpy(), arr / 127.5 - 1, atol=1e-6)
    assert torch.equal(x[1], x[2])
    np.testing.assert_allclose(x[3, 0].numpy(), one[..., 0] / 127.5 - 1, atol=1e-6)
    assert torch.equal(x[3, 0], x[3, 2])
    rgba = np.zeros((2, 2, 4), np.uint8)  # transparent black: white, as a transparent file reads
    assert torch.equal(preprocess([rgba], 2), torch.ones(1, 3, 2, 2))
    with pytest.raises(ValueError, match="HxWx3"):
        preprocess([np.zeros((4, 4, 2), np.uint8)], 4)
