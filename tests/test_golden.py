"""Golden renders: the procedural renderer is the ground truth of every default model (their training
data, the FID references, the held-out test faces, the demo, the video clips), so what it draws is
pinned, pixel for pixel and label for label, by digests in tests/data/golden/renders.json.

A deliberate change to the renderer must also redo what was made from it: retrain or re-distil the
shipped models (src/style_transformer/weights/README.md has the commands), re-measure every figure in
docs/ and the README that used renders, and then rewrite the digests with

    python tests/test_golden.py --update
"""

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from style_transformer.data.synthetic import (ATTRIBUTES, animate_attributes, render_dataset_batch, render_faces,
                                             sample_attributes)
from style_transformer.pretrained import TEST_SEED, TRAIN_SEED

GOLDEN = Path(__file__).parent / "data" / "golden" / "renders.json"
# (seed, size): the training seed, the held-out seed, the FID reference seed, another seed and size
CASES = [(TRAIN_SEED, 64), (TEST_SEED, 64), (2000, 64), (0, 64), (0, 100), (TEST_SEED, 37)]
FACES = 12
LABELS = 5000  # attribute tables are cheap: enough faces that a rate moved by 0.01 changes a label
REDO = ("the renderer's output changed. If that is deliberate, it invalidates everything made from "
        "renders: retrain the shipped models (weights/README.md), recompute the FID references and every "
        "figure in docs/ and the README, then run `python tests/test_golden.py --update`")


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _attributes_digest(attrs) -> str:
    # labels as 0/1 bytes, continuous factors rounded to 1e-9 (platform-stable), in ATTRIBUTES order
    table = np.stack([np.round(np.asarray(attrs[k], dtype=np.float64), 9) for k in ATTRIBUTES], 1)
    return _digest(table)


def compute() -> dict:
    out = {}
    for seed, size in CASES:
        batch = render_dataset_batch(seed, range(FACES), size)
        out[f"seed{seed}_size{size}"] = {"pixels": [_digest(img) for img in batch.images],
                                         "attributes": _attributes_digest(batch.attributes)}
    for seed in sorted({seed for seed, _ in CASES}):
        out[f"labels_seed{seed}_n{LABELS}"] = _attributes_digest(sample_attributes(seed, range(LABELS)))
    clip = animate_attributes(7000, 30, subject=1)
    out["clip_seed7000_subject1"] = {"pixels": _digest(render_faces(clip, 64)), "attributes": _attributes_digest(clip)}
    return out


@pytest.fixture(scope="module")
def golden():
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("seed,size", CASES)
def test_renders_are_pinned(golden, seed, size):
    batch = render_dataset_batch(seed, range(FACES), size)
    want = golden[f"seed{seed}_size{size}"]
    assert _attributes_digest(batch.attributes) == want["attributes"], "labels: " + REDO
    changed = [i for i, img in enumerate(batch.images) if _digest(img) != want["pixels"][i]]
    assert not changed, f"faces {changed} of seed {seed} at {size} px: " + REDO


@pytest.mark.parametrize("seed", sorted({seed for seed, _ in CASES}))
def test_label_tables_are_pinned(golden, seed):
    assert _attributes_digest(sample_attributes(seed, range(LABELS))) == golden[f"labels_seed{seed}_n{LABELS}"], \
        f"the attributes of seed {seed}: " + REDO


def test_animated_clip_is_pinned(golden):
    clip = animate_attributes(7000, 30, subject=1)
    want = golden["clip_seed7000_subject1"]
    assert _attributes_digest(clip) == want["attributes"], "clip attributes: " + REDO
    assert _digest(render_faces(clip, 64)) == want["pixels"], "clip frames: " + REDO


def test_one_pixel_or_one_label_fails(golden):
    """The check itself: a single level of one pixel, or one label, changes the digests."""
    batch = render_dataset_batch(TEST_SEED, range(FACES), 64)
    img = batch.images[0].copy()
    img[10, 20, 1] ^= 1
    assert _digest(img) != golden[f"seed{TEST_SEED}_size64"]["pixels"][0]
    attrs = {k: v.copy() for k, v in batch.attributes.items()}
    attrs["Eyeglasses"][3] = 1 - attrs["Eyeglasses"][3]
    assert _attributes_digest(attrs) != golden[f"seed{TEST_SEED}_size64"]["attributes"]


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/test_golden.py --update   (rewrites the digests; read the module docstring first)")
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(compute(), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
