"""The procedural face renderer (groundwork for the default domain)."""

import numpy as np
import pytest

from style_transformer.data.synthetic import (ATTRIBUTES, BINARY_ATTRIBUTES, render_dataset_batch,
                                              sample_attributes)


def test_deterministic_per_index_and_any_subset():
    a = render_dataset_batch(3, range(6), 32)
    b = render_dataset_batch(3, [4, 1], 32)
    np.testing.assert_array_equal(a.images[[4, 1]], b.images)
    for k in ATTRIBUTES:
        np.testing.assert_array_equal(a.attributes[k][[4, 1]], b.attributes[k])
    c = render_dataset_batch(4, range(6), 32)
    assert not np.array_equal(a.images, c.images)


def test_shapes_sizes_and_range():
    for size in (32, 64, 100):
        imgs = render_dataset_batch(0, range(3), size).images
        assert imgs.shape == (3, size, size, 3) and imgs.dtype == np.uint8
        assert imgs.std() > 20  # not blank


def test_binary_rates_are_balanced_and_hair_exclusive():
    attrs = sample_attributes(0, range(2000))
    for name in BINARY_ATTRIBUTES:
        assert set(np.unique(attrs[name])) <= {0.0, 1.0}
        assert 0.2 <= attrs[name].mean() <= 0.8, name
    assert not np.any((attrs["Blond_Hair"] == 1) & (attrs["Black_Hair"] == 1))


def test_attributes_change_the_image():
    attrs = sample_attributes(0, range(1))
    from style_transformer.data.synthetic import render_faces

    base = render_faces(attrs, 64).astype(int)
    for name in ("Smiling", "Eyeglasses", "Wearing_Hat", "Bangs", "No_Beard", "Mouth_Slightly_Open"):
        flipped = {k: v.copy() for k, v in attrs.items()}
        flipped[name] = 1 - flipped[name]
        diff = np.abs(render_faces(flipped, 64).astype(int) - base)
        assert diff.max() > 60 and (diff.sum(-1) > 30).mean() > 0.003, name


def test_cli_dataset_synth_writes_pngs_and_csv(tmp_path):
    from PIL import Image

    from style_transformer.cli import main

    out = tmp_path / "faces"
    assert main(["dataset", "synth", "--n", "5", "--out", str(out), "--size", "32", "--seed", "2"]) == 0
    lines = (out / "attributes.csv").read_text().strip().splitlines()
    assert lines[0] == "file," + ",".join(ATTRIBUTES)
    assert len(lines) == 6
    ref = render_dataset_batch(2, range(5), 32)
    for i, line in enumerate(lines[1:]):
        cells = line.split(",")
        assert cells[0] == f"{i:06d}.png"
        np.testing.assert_array_equal(np.asarray(Image.open(out / cells[0])), ref.images[i])
        for name, cell in zip(ATTRIBUTES, cells[1:]):
            if name in BINARY_ATTRIBUTES:
                assert cell in ("0", "1") and int(cell) == ref.attributes[name][i]
            else:
                assert abs(float(cell) - ref.attributes[name][i]) < 1e-6


# -- the factor map of the distilled generator ----------------------------------------------------

def _ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic (largest gap of the empirical CDFs)."""
    grid = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    fb = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(fa - fb).max())


def test_label_distribution_is_the_renderers_product_of_rates():
    from style_transformer.data.synthetic import attribute_rates, label_distribution

    table = label_distribution()
    assert table.shape == (3 * 2 ** 7, len(BINARY_ATTRIBUTES) + 1)
    np.testing.assert_allclose(table[:, -1].sum(), 1.0, rtol=0, atol=1e-12)
    assert len(np.unique(table[:, :-1], axis=0)) == len(table)  # every row once
    blond, black = BINARY_ATTRIBUTES.index("Blond_Hair"), BINARY_ATTRIBUTES.index("Black_Hair")
    assert not np.any((table[:, blond] == 1) & (table[:, black] == 1))
    rates = attribute_rates()
    for k, name in enumerate(BINARY_ATTRIBUTES):  # marginals: exactly the renderer's rates
        np.testing.assert_allclose(table[table[:, k] == 1, -1].sum(), rates[name], atol=1e-12)
    # independence: P(Smiling, Eyeglasses) = product
    s, e = BINARY_ATTRIBUTES.index("Smiling"), BINARY_ATTRIBUTES.index("Eyeglasses")
    joint = table[(table[:, s] == 1) & (table[:, e] == 1), -1].sum()
    np.testing.assert_allclose(joint, rates["Smiling"] * rates["Eyeglasses"], atol=1e-12)


@pytest.mark.slow  # heavy: full-size network(s)
def test_factor_map_matches_sample_attributes_on_100k_draws():
    """Labels drawn from the label distribution and factors from z are distributed as the renderer's
    own ``sample_attributes``: every rate within 0.5 point, and each continuous factor passes a
    two-sample KS test (alpha 0.001)."""
    import torch

    from style_transformer.data.synthetic import CONTINUOUS_FACTORS, draw_codes, factors_from_code

    n = 100_000
    z, c = draw_codes(n, 256, torch.Generator().manual_seed(11))
    mine = factors_from_code(z.double().numpy(), c.numpy())
    ref = sample_attributes(12345, range(n))
    for name in BINARY_ATTRIBUTES:
        assert abs(mine[name].mean() - ref[name].mean()) <= 0.005, name
    critical = 1.95 * np.sqrt(2 / n)  # alpha = 0.001
    for name in CONTINUOUS_FACTORS:
        assert _ks_statistic(mine[name], ref[name]) < critical, name


def test_factor_map_closed_form_and_category_ranges():
    from style_transformer.data.synthetic import FACTOR_RANGES, LABEL_NAMES, factors_from_code

    labels = np.zeros((3, len(LABEL_NAMES)))
    labels[0, LABEL_NAMES.index("Blond_Hair")] = 1
    labels[1, LABEL_NAMES.index("Black_Hair")] = 1
    labels[1, LABEL_NAMES.index("Pale_Skin")] = 1
    # z with its first coordinate at 0 (Phi = 1/2), then +-large (Phi -> 1, 0), the rest balancing the norm
    z = np.ones((3, 16))
    z[:, :11] = 0.0
    f = factors_from_code(z, labels)
    np.testing.assert_allclose(f["yaw"], 0.0, atol=1e-12)  # midpoint of (-1, 1)
    np.testing.assert_allclose(f["hair_value"], [0.85, 0.115, 0.45], atol=1e-12)
    np.testing.assert_allclose(f["skin_tone"], [0.375, 0.875, 0.375], atol=1e-12)
    for k, name in enumerate(LABEL_NAMES):
        np.testing.assert_array_equal(f[name], labels[:, k])
    from math import erf, sqrt

    for v in (2.0, -0.7, 50.0):  # closed form: lo + (hi - lo) * Phi(zn), zn = z * sqrt(16) / |z|
        z[:, 0] = v
        zn = v * 4 / sqrt(v * v + 5)
        lo, hi = FACTOR_RANGES["yaw"]
        expected = lo + (hi - lo) * 0.5 * (1 + erf(zn / sqrt(2)))
        np.testing.assert_allclose(factors_from_code(z, labels)["yaw"], expected, rtol=0, atol=1e-12)
    # scale-free in z (the mapping network normalises it too)
    np.testing.assert_allclose(factors_from_code(3 * z, labels)["hair_hue"], factors_from_code(z, labels)["hair_hue"])
    bad = labels.copy()
    bad[0, LABEL_NAMES.index("Black_Hair")] = 1
    with pytest.raises(ValueError, match="hair"):
        factors_from_code(z, bad)
    with pytest.raises(ValueError, match="z must be"):
        factors_from_code(z[:, :5], labels)


def test_render_codes_renders_the_mapped_factors():
    import torch

    from style_transformer.data.synthetic import draw_codes, factors_from_code, render_codes, render_faces

    z, c = draw_codes(4, 64, torch.Generator().manual_seed(0))
    img = render_codes(z, c, 32)
    assert img.shape == (4, 3, 32, 32) and img.min() >= -1 and img.max() <= 1
    ref = render_faces(factors_from_code(z.double().numpy(), c.numpy()), 32)
    np.testing.assert_array_equal(((img.permute(0, 2, 3, 1).numpy() + 1) * 127.5).round().astype(np.uint8), ref)


def test_write_dataset_files_are_the_renders_and_the_csv_their_attributes(tmp_path, capsys):
    from PIL import Image

    from style_transformer.data.synthetic import write_dataset

    out = tmp_path / "nested" / "faces"  # parents are made
    csv = write_dataset(out, 5, size=32, seed=7, batch_size=2)  # three batches, the last one short
    assert csv == out / "attributes.csv"
    names = [f"{i:06d}.png" for i in range(5)]
    assert sorted(p.name for p in out.iterdir()) == sorted(names + ["attributes.csv"])  # no temporary files
    ref = render_dataset_batch(7, list(range(5)), 32)
    for i, name in enumerate(names):
        np.testing.assert_array_equal(np.asarray(Image.open(out / name)), ref.images[i])
    lines = csv.read_text().splitlines()
    assert lines[0] == "file," + ",".join(ATTRIBUTES) and len(lines) == 6
    for i, line in enumerate(lines[1:]):
        cells = line.split(",")
        assert cells[0] == names[i]
        for k, cell in zip(ATTRIBUTES, cells[1:]):
            want = str(int(ref.attributes[k][i])) if k in BINARY_ATTRIBUTES else f"{ref.attributes[k][i]:.6f}"
            assert cell == want, (k, cell, want)
    assert "synth" not in capsys.readouterr().err  # no progress bar unless asked
    write_dataset(tmp_path / "bar", 3, size=16, progress=True)
    err = capsys.readouterr().err
    assert "synth: 100%" in err and "3/3" in err and "img/s" in err
    # the defaults: 64 px faces of the dataset with seed 0
    write_dataset(tmp_path / "defaults", 2)
    default = render_dataset_batch(0, [0, 1])
    assert default.images.shape[1:3] == (64, 64)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "defaults" / "000001.png")), default.images[1])


def test_hair_categories_and_the_label_tables_order():
    from style_transformer.data.synthetic import LABEL_NAMES, hair_category, label_distribution

    rows = np.zeros((3, len(LABEL_NAMES)))
    rows[0, LABEL_NAMES.index("Blond_Hair")] = 1
    rows[1, LABEL_NAMES.index("Black_Hair")] = 1
    assert hair_category(rows).tolist() == [0, 1, 2]
    rows[2, LABEL_NAMES.index("Blond_Hair")] = rows[2, LABEL_NAMES.index("Black_Hair")] = 1
    with pytest.raises(ValueError, match=r"^a label row has both Blond_Hair and Black_Hair: the hair category is "
                                         r"one of three$"):
        hair_category(rows)
    table = label_distribution()
    keys = [tuple(r) for r in table[:, :-1]]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)  # sorted, first column most significant


def test_factor_map_reads_the_codes_direction_and_checks_its_shapes():
    from style_transformer.data.synthetic import CONTINUOUS_FACTORS, LABEL_NAMES, factors_from_code

    nf = len(CONTINUOUS_FACTORS)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4, nf))  # exactly as wide as the factors: allowed
    labels = (rng.random((4, len(LABEL_NAMES))) < 0.3).astype(float)
    labels[:, LABEL_NAMES.index("Black_Hair")] = 0
    a, b = factors_from_code(z, labels), factors_from_code(1e-3 * z, labels)  # a short code: same direction
    for name in CONTINUOUS_FACTORS:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-12, atol=1e-12)
    ints = factors_from_code(z, labels.astype(int))  # 0/1 labels of any dtype: float64 attributes
    assert all(v.dtype == np.float64 for v in ints.values())
    assert all(np.array_equal(ints[k], a[k]) for k in a)
    with pytest.raises(ValueError, match=r"z must be \[N, >= "):
        factors_from_code(z[:, : nf - 1], labels)
    with pytest.raises(ValueError, match=r"labels must be \[4, "):
        factors_from_code(z, labels[:, :-1])


def test_draw_codes_use_only_the_given_generator():
    import torch

    from style_transformer.data.synthetic import draw_codes

    torch.manual_seed(0)
    z1, c1 = draw_codes(6, 16, torch.Generator().manual_seed(3))
    torch.manual_seed(1)  # the global generator's state does not matter
    z2, c2 = draw_codes(6, 16, torch.Generator().manual_seed(3))
    assert torch.equal(z1, z2) and torch.equal(c1, c2)


def test_animated_clip_smiles_from_its_middle_frame():
    from style_transformer.data.synthetic import animate_attributes

    assert animate_attributes(5, 7)["Smiling"].tolist() == [0, 0, 0, 1, 1, 1, 1]  # from frame 7 // 2
    assert animate_attributes(5, 2)["Smiling"].tolist() == [0, 1]  # the shortest clip
    with pytest.raises(ValueError, match="a clip needs at least 2 frames, got 1"):
        animate_attributes(5, 1)
    default, first, second = animate_attributes(5, 3), animate_attributes(5, 3, subject=0), animate_attributes(5, 3, 1)
    assert all(np.array_equal(default[k], first[k]) for k in default)  # subject 0 unless told
    assert not np.array_equal(default["hair_hue"], second["hair_hue"])
