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
