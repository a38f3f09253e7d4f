"""Generator evaluation: FID and attribute frequencies against independent computations."""

import numpy as np
import pytest
import torch

from style_transformer import GeneratorConfig
from style_transformer.config import AttributeClassifierConfig
from style_transformer.data.datasets import load_labels
from style_transformer.data.images import load_image, preprocess, save_image
from style_transformer.data.synthetic import BINARY_ATTRIBUTES, write_dataset
from style_transformer.metrics.fid import fid_folders, frechet_distance
from style_transformer.metrics.generator import evaluate_generator
from style_transformer.models import AttributeClassifier, Generator


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("gen_eval")
    write_dataset(root / "ref", 12, size=32, seed=4)
    torch.manual_seed(0)
    g = Generator(GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 8, 8))).eval()
    c = AttributeClassifier(AttributeClassifierConfig(attributes=BINARY_ATTRIBUTES, size=32, channels=(8, 8))).eval()
    with torch.no_grad():
        c.head.bias.copy_(torch.linspace(-0.3, 0.3, len(BINARY_ATTRIBUTES)))  # rates away from 0 and 1
    return root, g, c


def _samples(g, n, seed, batch):
    """The documented sampling protocol, written out: z from a seeded generator, noise from the
    global RNG seeded with the same seed, 8-bit images."""
    zg = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    out = []
    with torch.no_grad():
        for i in range(0, n, batch):
            z = torch.randn(min(batch, n - i), g.style_dim, generator=zg)
            ws = g.mapping(z)[:, None].expand(-1, g.num_ws, -1)
            out.append(g.synthesis(ws, randomize_noise=True))
    return torch.cat(out)


@pytest.mark.slow  # heavy: full-size network(s)
def test_fid_and_rates_match_the_folder_path(setup, tmp_path):
    root, g, c = setup
    rep = evaluate_generator(g, root / "ref", n=10, classifier=c, seed=3, batch_size=4, cache_dir=tmp_path / "c")
    imgs = _samples(g, 10, 3, 4)
    (tmp_path / "s").mkdir()
    for i, img in enumerate(imgs):
        save_image(img, tmp_path / "s" / f"{i:02d}.png")
    want = fid_folders(tmp_path / "s", root / "ref", cache_dir=tmp_path / "c2")
    assert rep.fid == pytest.approx(want, rel=1e-6, abs=1e-6)
    # attribute frequencies: the classifier on the saved 8-bit samples and on the reference files
    on_disk = preprocess([load_image(tmp_path / "s" / f"{i:02d}.png") for i in range(10)], 32)
    rates = (c.predict(on_disk) > 0.5).double().mean(0).numpy()
    np.testing.assert_allclose([rep.sample_rates[a] for a in BINARY_ATTRIBUTES], rates, atol=1e-12)
    ref_imgs = preprocess(sorted((root / "ref").glob("*.png")), 32)
    ref_rates = (c.predict(ref_imgs) > 0.5).double().mean(0).numpy()
    np.testing.assert_allclose([rep.reference_rates[a] for a in BINARY_ATTRIBUTES], ref_rates, atol=1e-12)
    names, table = load_labels(root / "ref" / "attributes.csv")
    labels = np.stack(list(table.values()))
    for a in BINARY_ATTRIBUTES:
        assert rep.label_rates[a] == pytest.approx(labels[:, names.index(a)].mean())
    gap = 100 * max(abs(rep.sample_rates[a] - rep.reference_rates[a]) for a in BINARY_ATTRIBUTES)
    assert rep.max_rate_gap == pytest.approx(gap)
    assert "largest gap" in rep.to_markdown()
    # the second distance: the classifier's pooled features of the files, by hand (the Frechet
    # distance itself is tested against closed forms in test_fid)
    def stats(x):
        with torch.no_grad():
            f = c.features(x).mean((2, 3)).double().numpy()
        return f.mean(0), np.cov(f, rowvar=False)

    want_fd = frechet_distance(*stats(on_disk), *stats(ref_imgs))
    assert rep.fd_classifier == pytest.approx(want_fd, rel=1e-5, abs=1e-8) and want_fd > 0
    assert "classifier's features" in rep.to_markdown()
    # the global RNG is left as it was
    state = torch.get_rng_state()
    evaluate_generator(g, root / "ref", n=2, classifier=c, fid=False)
    assert torch.equal(state, torch.get_rng_state())
