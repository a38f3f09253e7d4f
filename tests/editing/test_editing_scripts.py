"""experiments/edit_ceiling.py and scripts/device_check.py on the shipped models (CPU only here)."""

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]


def _module(name, folder="experiments"):
    spec = importlib.util.spec_from_file_location(name, ROOT / folder / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    from style_transformer.data.synthetic import write_dataset

    out = tmp_path_factory.mktemp("faces")
    write_dataset(out, 6, size=64, seed=4000)
    return out


def _row(text, method, attribute):
    line = next(x for x in text.splitlines() if x.startswith(f"| {method} | {attribute} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_edit_ceiling_reports_what_evaluate_editing_scores(faces, monkeypatch, capsys):
    from style_transformer import load_pipeline
    from style_transformer.data.datasets import ImageFolderDataset
    from style_transformer.metrics.editing import evaluate_editing
    from style_transformer.pretrained import load_default

    mod = _module("edit_ceiling")
    monkeypatch.setattr(sys, "argv", ["edit_ceiling.py", str(faces), "--n", "6", "--methods", "interfacegan",
                                      "--strengths", "4", "40", "--attributes", "Smiling", "--rows", "0-9", "4-7"])
    assert mod.main() == 0
    out = capsys.readouterr().out
    best, most = _row(out, "interfacegan", "Smiling")[2:]
    # the same scores straight from the library, every setting
    pipe = load_pipeline()  # the script's own choice of device
    judge = load_default("attribute_classifier").to(pipe.device)
    data = ImageFolderDataset(faces, pipe.input_size)
    images = torch.stack([data[i] for i in range(6)])
    scores = []
    for r in ((0, 10), (4, 8)):
        for s in (4.0, 40.0):
            sc = evaluate_editing(pipe, images, judge, ["Smiling"], methods=("interfacegan",),
                                  strengths={"interfacegan": {"Smiling": s}},
                                  layers={"interfacegan": {"Smiling": r}}).scores[0]
            scores.append((sc.success, sc.preservation, s, r))
    top = max(scores, key=lambda x: (x[0], x[1]))
    assert most == f"{top[0]:.1%} ({top[1]:.1%} kept, x{top[2]:g}, rows {top[3][0]}-{top[3][1] - 1})"
    kept = [x for x in scores if x[1] >= 0.9]
    if kept:
        b = max(kept)
        assert best == f"{b[0]:.1%} (x{b[2]:g}, rows {b[3][0]}-{b[3][1] - 1})"
    else:
        assert best == "none keeps enough"


def test_edit_ceiling_rejects_bad_rows_and_attributes(faces, monkeypatch, capsys):
    mod = _module("edit_ceiling")
    for extra, message in ((["--rows", "3-12"], "outside rows 0-9"), (["--rows", "two"], "first-last pairs"),
                           (["--attributes", "Freckles"], "unknown attributes")):
        monkeypatch.setattr(sys, "argv", ["edit_ceiling.py", str(faces), "--n", "2", *extra])
        assert mod.main() == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1


def test_device_check_on_one_device_finds_no_difference(monkeypatch, capsys):
    """CPU against CPU: every step through both pipelines, all differences exactly zero."""
    mod = _module("device_check", "scripts")
    monkeypatch.setattr(sys, "argv", ["device_check.py", "--n", "2", "--device", "cpu"])
    assert mod.main() == 0
    out = capsys.readouterr().out
    for method in ("interfacegan", "classifier", "reference", "ganspace", "sefa"):
        assert f"edit {method} " in out
    assert "ERROR" not in out and "largest code difference: 0.00e+00" in out
