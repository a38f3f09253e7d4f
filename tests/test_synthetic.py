"""The procedural face renderer (groundwork for the default domain)."""

import numpy as np

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
