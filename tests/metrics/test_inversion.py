"""Inversion metrics against direct computations; the demo's outputs with a tiny pipeline."""

import json

import numpy as np
import torch
from PIL import Image

from style_transformer import load_pipeline
from style_transformer.config import AttributeClassifierConfig
from style_transformer.data.datasets import ImageFolderDataset
from style_transformer.data.synthetic import write_dataset
from style_transformer.metrics.inversion import evaluate_inversion
from style_transformer.models.classifier import AttributeClassifier


def test_evaluate_inversion_matches_direct_computation(tiny_checkpoint, tmp_path):
    write_dataset(tmp_path / "faces", 10, size=32, seed=7)
    data = ImageFolderDataset(tmp_path / "faces", 32, labels=tmp_path / "faces" / "attributes.csv")
    pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu")
    torch.manual_seed(0)
    clf = AttributeClassifier(AttributeClassifierConfig(attributes=("Smiling", "Not_In_Labels", "Eyeglasses"),
                                                        size=32, channels=(4, 8))).eval()
    report = evaluate_inversion(pipe, data, classifier=clf, n=7, batch_size=3)
    # direct: reconstructions written as PNG and read back, float64 PSNR per image, averaged
    x = torch.stack([data[i][0] for i in range(7)]).double()
    res = pipe.invert([data[i][0] for i in range(7)])
    arr = ((res.images.double() + 1) / 2).clamp(0, 1) * 255
    y = (arr.floor() / 255 - 0.5) / 0.5
    mse = (y - x).pow(2).flatten(1).mean(1)
    assert report.n_images == 7
    assert abs(report.mse - mse.mean().item()) < 1e-6
    assert abs(report.psnr - (10 * torch.log10(4 / mse)).mean().item()) < 1e-4
    # agreement: only attributes both the classifier and the labels know; counted per value
    assert list(report.agreement) == ["Smiling", "Eyeglasses"]
    probs = clf.predict(y.float())
    labels = torch.stack([data[i][1] for i in range(7)])
    names = data.attribute_names
    for j, a in ((0, "Smiling"), (2, "Eyeglasses")):
        want = ((probs[:, j] > 0.5) == (labels[:, names.index(a)] > 0.5)).float().mean().item()
        assert abs(report.agreement[a] - want) < 1e-6
    assert abs(report.mean_agreement - np.mean(list(report.agreement.values()))) < 1e-12
    assert "PSNR" in report.to_markdown() and json.dumps(report.to_dict())


def test_demo_writes_grid_page_and_latents(tiny_checkpoint, tmp_path):
    from style_transformer.demo import held_out_faces, run_demo

    pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu")
    res = run_demo(tmp_path / "demo", n=3, pipe=pipe)
    grid = np.asarray(Image.open(res.grid))
    assert grid.shape == (3 * 32, 2 * 32, 3)
    with np.load(res.latents) as z:
        assert sorted(z.files) == ["face_0", "face_1", "face_2"]
        again = pipe.invert([held_out_faces(1, 32)[0][0]])  # the first held-out face's latent
        np.testing.assert_allclose(z["face_0"], again.ws[0].numpy(), atol=1e-5)
    page = res.html.read_text()
    assert page.count("<img") == 6 and "face_2_reconstruction.png" in page and "rendered with:" in page
    assert (tmp_path / "demo" / "images" / "face_1_input.png").is_file()
    assert len(res.psnr) == 3 and all(np.isfinite(res.psnr))
