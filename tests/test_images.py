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


def test_folders_list_image_files_recursively_by_extension(tmp_path):
    from style_transformer.data.images import list_image_files

    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "dir.png").mkdir()  # a folder named like an image is not a file
    for name in ("b.png", "A.JPG", "sub/c.WebP", "sub/deeper/d.bmp", "notes.txt", "sub/e.gif", "f.jpeg"):
        (tmp_path / name).write_bytes(b"x")
    want = sorted([tmp_path / "b.png", tmp_path / "A.JPG", tmp_path / "sub/c.WebP", tmp_path / "sub/deeper/d.bmp",
                   tmp_path / "f.jpeg"])
    assert list_image_files(tmp_path) == want
    # files come in the order given, each folder's sorted, a file as it is (whatever its extension)
    assert collect_images([tmp_path / "notes.txt", tmp_path / "sub"]) == [
        tmp_path / "notes.txt", tmp_path / "sub/c.WebP", tmp_path / "sub/deeper/d.bmp"]
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty2").mkdir()
    with pytest.raises(InputError) as e:
        collect_images([tmp_path / "empty", tmp_path / "empty2"])
    assert str(e.value) == f"no image files found in {tmp_path / 'empty'}, {tmp_path / 'empty2'}"


def test_unreadable_image_message_quotes_the_decoder(tmp_path, monkeypatch):
    (tmp_path / "x.png").write_bytes(b"nope")
    with pytest.raises(ImageLoadError) as e:
        load_image(tmp_path / "x.png")
    assert str(e.value).startswith(f"{tmp_path / 'x.png'}: not a readable image (cannot identify image file")

    def failing(message):
        def open_(*a, **k):
            raise OSError(message)
        return open_

    monkeypatch.setattr(Image, "open", failing("y" * 300))
    with pytest.raises(ImageLoadError) as e:  # a long reason is cut at 120 characters
        load_image(tmp_path / "x.png")
    assert str(e.value) == f"{tmp_path / 'x.png'}: not a readable image ({'y' * 120})"
    monkeypatch.setattr(Image, "open", failing(""))
    with pytest.raises(ImageLoadError) as e:  # no reason: the error's type
        load_image(tmp_path / "x.png")
    assert str(e.value) == f"{tmp_path / 'x.png'}: not a readable image (OSError)"


def test_32_bit_images_scale_by_their_range_and_clip_negatives():
    from style_transformer.data.images import to_rgb

    # a 32-bit integer image whose maximum is 256 (one past 8 bit) is taken as 16-bit: 256 -> 1
    im = Image.fromarray(np.array([[0, 256], [128, 64]], np.int32), "I")
    np.testing.assert_array_equal(np.asarray(to_rgb(im))[..., 0], [[0, 1], [0, 0]])
    im = Image.fromarray(np.array([[0, 256], [65535, 128]], np.int32), "I")
    np.testing.assert_array_equal(np.asarray(to_rgb(im))[..., 0], [[0, 1], [255, 0]])
    # one whose maximum is 255 is already 8-bit
    im = Image.fromarray(np.array([[0, 255], [-7, 128]], np.int32), "I")
    np.testing.assert_array_equal(np.asarray(to_rgb(im))[..., 0], [[0, 255], [0, 128]])  # negatives clip to 0


def test_preprocess_refuses_non_finite_values_by_kind():
    with pytest.raises(ValueError, match=r"^image tensor contains NaN or Inf$"):
        preprocess([torch.full((3, 4, 4), float("nan"))], 4)
    with pytest.raises(ValueError, match=r"^image array contains NaN or Inf$"):
        preprocess([np.full((4, 4, 3), np.inf, np.float32)], 4)


def test_preprocess_resizes_tensors_antialiased():
    # vertical stripes of period 4 (one bright column in four) shrunk 4x: an antialiased (area-like)
    # filter gives their mean everywhere; sampling without antialiasing would miss the bright column
    x = -torch.ones(1, 3, 16, 16)
    x[..., ::4] = 1.0
    out = preprocess([x], 4)
    assert out.shape == (1, 3, 4, 4)
    assert out[..., 1:-1, 1:-1].mean().item() == pytest.approx(-0.5, abs=0.05)
    # a tensor of the right size is passed through untouched
    y = torch.rand(2, 3, 4, 4) * 2 - 1
    torch.testing.assert_close(preprocess([y], 4), y)
    # non-square targets: (h, w)
    assert preprocess([x], (8, 4)).shape == (1, 3, 8, 4)
    # enlarging samples at pixel centres (half-pixel rule): [a, b] -> [a, (3a + b) / 4, (a + 3b) / 4, b]
    two = torch.tensor([-1.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    torch.testing.assert_close(preprocess([two], (1, 4))[0, :, 0], torch.tensor([-1.0, -0.5, 0.5, 1.0]).expand(3, 4))


def test_pool_to_size_averages_blocks_or_resamples():
    from style_transformer.data.images import pool_to_size

    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8)
    assert pool_to_size(x, 8) is x
    want = x.double().view(2, 3, 4, 2, 4, 2).mean((3, 5))  # 2x2 blocks
    torch.testing.assert_close(pool_to_size(x, 4).double(), want)
    torch.testing.assert_close(pool_to_size(x, (4, 4)).double(), want)
    # a side that does not divide: antialiased bilinear, which keeps a constant image constant and
    # the mean of a ramp
    c = torch.full((1, 3, 8, 8), 0.25)
    torch.testing.assert_close(pool_to_size(c, 3), torch.full((1, 3, 3, 3), 0.25))
    r = pool_to_size(x[:1], 5)
    assert r.shape == (1, 3, 5, 5)
    assert r.mean().item() == pytest.approx(x[:1].mean().item(), rel=0.02)
    # otherwise: antialiased bilinear, half-pixel centres (a non-square target; a side dividing only
    # one of the image's sides)
    bilinear = dict(mode="bilinear", align_corners=False, antialias=True)
    for size, img in (((4, 2), x), (3, x[..., :6, :])):
        hw = (size, size) if isinstance(size, int) else size
        torch.testing.assert_close(pool_to_size(img, size), torch.nn.functional.interpolate(img, size=hw, **bilinear))
        assert not torch.allclose(pool_to_size(img, size), torch.nn.functional.adaptive_avg_pool2d(img, hw))


def test_uint8_conversion_truncates_like_the_official_code_and_files_hold_it(tmp_path):
    from style_transformer.data.images import as_written, save_image, to_uint8

    img = torch.tensor([-1.5, -1.0, 0.0, 0.999, 1.0, 2.0]).view(1, 1, 1, 6).expand(1, 3, 1, 6).clone()
    img[:, 1] *= -1
    want = np.floor(np.clip((img.double().numpy() + 1) / 2, 0, 1) * 255).astype(np.uint8).transpose(0, 2, 3, 1)
    got = to_uint8(img)
    assert got.dtype == np.uint8 and got.shape == (1, 1, 6, 3)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got[0, 0, :, 0], [0, 0, 127, 254, 255, 255])
    back = as_written(img)
    torch.testing.assert_close(back, torch.from_numpy(want).permute(0, 3, 1, 2).float() / 127.5 - 1)
    save_image(img[0], tmp_path / "o.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png")), want[0])
    assert list(tmp_path.iterdir()) == [tmp_path / "o.png"]  # no temporary file left beside it


def test_decompression_bomb_limit_on_both_sides_of_its_edge(tmp_path, monkeypatch):
    """Pillow refuses images of more than twice ``MAX_IMAGE_PIXELS``; at exactly twice they load."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)
    Image.new("RGB", (10, 10), (9, 9, 9)).save(tmp_path / "at.png")  # 100 pixels = 2 x 50
    Image.new("RGB", (10, 11), (9, 9, 9)).save(tmp_path / "over.png")
    assert load_image(tmp_path / "at.png").size == (10, 10)
    with pytest.raises(ImageLoadError) as e:
        load_image(tmp_path / "over.png")
    assert str(e.value).startswith(f"{tmp_path / 'over.png'}: not a readable image (Image size (110 pixels) exceeds limit")
