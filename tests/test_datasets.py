"""Image-folder datasets: formats, corrupt files, labels (CelebA and CSV), deterministic split."""

import numpy as np
import pytest
import torch
from PIL import Image

from style_transformer.data.datasets import ImageFolderDataset, LabelError, load_labels, split_of
from style_transformer.data.images import InputError
from style_transformer.data.synthetic import write_dataset


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "imgs"
    (d / "nested").mkdir(parents=True)
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(d / "a.png")
    Image.fromarray(rng.integers(0, 255, (20, 20), dtype=np.uint8), "L").save(d / "nested" / "b.jpg")
    Image.fromarray(rng.integers(0, 255, (16, 16, 4), dtype=np.uint8), "RGBA").save(d / "c.webp")
    Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(d / "d.bmp")
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (d / "readme.txt").write_text("ignored")
    return d


def test_formats_recursion_and_corrupt_files(folder):
    ds = ImageFolderDataset(folder, size=16)
    assert len(ds) == 4 and ds.skipped == 1
    for i in range(len(ds)):
        x = ds[i]
        assert x.shape == (3, 16, 16) and x.min() >= -1 and x.max() <= 1


def test_celeba_and_csv_labels(folder, tmp_path):
    celeba = tmp_path / "list_attr_celeba.txt"
    celeba.write_text("3\nSmiling Eyeglasses\na.png 1 -1\nb.jpg -1 1\nd.bmp 1 1\n")
    names, table = load_labels(celeba)
    assert names == ["Smiling", "Eyeglasses"] and table["b.jpg"].tolist() == [0.0, 1.0]
    ds = ImageFolderDataset(folder, size=8, labels=celeba)
    assert len(ds) == 3 and ds.skipped == 2  # c.webp has no label row; broken.png is corrupt
    img, lab = ds[0]
    assert img.shape == (3, 8, 8) and lab.tolist() == [1.0, 0.0]
    csvp = tmp_path / "labels.csv"
    csvp.write_text("file,Smiling\na.png,1\nnested/b.jpg,0\n")
    assert len(ImageFolderDataset(folder, size=8, labels=csvp)) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("file,Smiling\na.png,yes\n")
    with pytest.raises(LabelError, match="not a number"):
        load_labels(bad)


def test_split_is_deterministic_and_disjoint(tmp_path):
    write_dataset(tmp_path / "faces", 60, size=16, seed=0)
    train = ImageFolderDataset(tmp_path / "faces", 16, split="train", val_fraction=0.25)
    val = ImageFolderDataset(tmp_path / "faces", 16, split="val", val_fraction=0.25)
    names_t = {f.name for f in train.files}
    names_v = {f.name for f in val.files}
    assert not names_t & names_v and len(names_t | names_v) == 60
    assert 5 <= len(names_v) <= 25
    assert all(split_of(n, 0.25) == "val" for n in names_v)
    ds = ImageFolderDataset(tmp_path / "faces", 16, labels=tmp_path / "faces" / "attributes.csv")
    img, lab = ds[0]
    assert lab.shape == (20,) and torch.all((lab[:9] == 0) | (lab[:9] == 1))


def test_missing_folder(tmp_path):
    with pytest.raises(InputError):
        ImageFolderDataset(tmp_path / "nope", 8)


def test_cache_gives_the_same_tensors_and_columns_select(tmp_path):
    from style_transformer.data.datasets import binary_columns
    from style_transformer.data.synthetic import BINARY_ATTRIBUTES, write_dataset

    write_dataset(tmp_path / "f", 6, size=32, seed=5)
    csv = tmp_path / "f" / "attributes.csv"
    assert binary_columns(csv) == list(BINARY_ATTRIBUTES)
    plain = ImageFolderDataset(tmp_path / "f", 24, labels=csv)
    cached = ImageFolderDataset(tmp_path / "f", 24, labels=csv, cache=True, columns=["Pale_Skin", "Smiling"])
    assert cached.attribute_names == ["Pale_Skin", "Smiling"]
    for i in range(6):
        (a, la), (b, lb) = plain[i], cached[i]
        assert torch.equal(a, b) and a.shape == (3, 24, 24)
        names = plain.attribute_names
        assert torch.equal(lb, la[[names.index("Pale_Skin"), names.index("Smiling")]])
    with pytest.raises(LabelError, match="no column Nope"):
        ImageFolderDataset(tmp_path / "f", 24, labels=csv, columns=["Nope"])


def test_cache_skips_files_whose_data_is_truncated(folder):
    good = (folder / "a.png").read_bytes()
    (folder / "truncated.png").write_bytes(good[: len(good) // 2])  # header fine, pixel data cut
    cached = ImageFolderDataset(folder, size=16, cache=True)
    assert len(cached) == 4 and cached.skipped == 2
    plain = ImageFolderDataset(folder, size=16)
    by_name = {f.name: plain[i] for i, f in enumerate(plain.files) if f.name != "truncated.png"}
    for i, f in enumerate(cached.files):
        assert torch.equal(cached[i], by_name[f.name])
