"""The editing commands end to end on a tiny model: invert -> train-editor / directions fit -> edit
(every method) -> eval-editing (with calibration), and their one-line errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from style_transformer import Generator, GeneratorConfig, save_model
from style_transformer.cli import main
from style_transformer.config import AttributeClassifierConfig
from style_transformer.models.classifier import AttributeClassifier


@pytest.fixture(scope="module")
def setup(tiny_editing, tiny_checkpoint, tmp_path_factory):
    """The shared tiny editing folder, copied (calibration writes into it), and a tiny image classifier."""
    import shutil

    root = tmp_path_factory.mktemp("edit")
    for name in ("faces", "inv", "editing"):
        shutil.copytree(tiny_editing / name, root / name)
    torch.manual_seed(0)
    clf = AttributeClassifier(AttributeClassifierConfig(attributes=("Smiling", "Bangs", "Eyeglasses"), size=32,
                                                        channels=(4, 8)))
    save_model(clf, root / "clf.safetensors")
    return root, tiny_checkpoint


def test_train_editor_writes_a_complete_editing_folder(setup, capsys):
    root, _ = setup
    folder = root / "editing"
    assert (folder / "latent_classifier.safetensors").is_file()
    assert sorted(p.name for p in (folder / "editors").iterdir()) == ["Bangs.safetensors", "Smiling.safetensors"]
    index = json.loads((folder / "directions" / "directions.json").read_text())
    assert sorted(index["directions"]) == ["Bangs", "Smiling"]
    assert main(["directions", "list", "--dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "Smiling" in out and "reference: Bangs, Smiling" in out


def test_directions_fit_wplus(setup, capsys):
    root, _ = setup
    assert main(["directions", "fit", "--latents", str(root / "inv" / "latents.npz"), "--labels",
                 str(root / "faces" / "attributes.csv"), "--out", str(root / "dirs"), "--space", "wplus",
                 "--attributes", "Smiling"]) == 0
    vec = np.load(root / "dirs" / "Smiling.npy")
    assert vec.shape == (8, 32) and abs(np.linalg.norm(vec) - 1) < 1e-5
    assert main(["directions", "fit", "--latents", str(root / "inv" / "latents.npz"), "--labels",
                 str(root / "faces" / "attributes.csv"), "--out", str(root / "d2"), "--attributes", "yaw"]) == 2
    assert "not a 0/1 column" in capsys.readouterr().err


@pytest.mark.parametrize("method,extra", [("interfacegan", ["--strength", "2"]), ("classifier", ["--strength", "2"]),
                                          ("sefa", ["--strength", "3"]), ("ganspace", ["--strength", "3"]),
                                          ("reference", None)])
def test_edit_every_method(setup, method, extra, tmp_path):
    root, ckpt = setup
    attribute = "1" if method in ("sefa", "ganspace") else "Smiling"
    if extra is None:
        extra = ["--reference", str(root / "faces" / "000001.png")]
    out = tmp_path / "out"
    args = ["edit", str(root / "faces" / "000000.png"), str(root / "faces" / "000002.png"), "--attribute", attribute,
            "--method", method, "--out", str(out), "--checkpoint", str(ckpt), "--editing", str(root / "editing")]
    assert main(args + extra) == 0
    with np.load(out / "latents.npz") as z, np.load(root / "inv" / "latents.npz") as before:
        assert sorted(z.files) == ["000000", "000002"]
        assert not np.allclose(z["000000"], before["000000"])  # the code moved
    assert np.asarray(Image.open(out / "000000.png")).shape == (32, 32, 3)


def test_edit_errors_are_one_line(setup, tmp_path, capsys):
    root, ckpt = setup
    base = ["edit", str(root / "faces" / "000000.png"), "--out", str(tmp_path / "o"), "--checkpoint", str(ckpt),
            "--editing", str(root / "editing")]
    assert main(base + ["--attribute", "Wearing_Hat", "--strength", "1"]) == 2
    assert "no direction 'Wearing_Hat'" in capsys.readouterr().err
    assert main(base + ["--attribute", "Smiling", "--strength", "1", "--method", "reference"]) == 2
    assert main(base + ["--attribute", "Smiling", "--strength", "1", "--layers", "5:2"]) == 2
    assert main(base[:-1] + [str(tmp_path), "--attribute", "Smiling", "--strength", "1"]) == 2
    assert not (tmp_path / "o").exists()  # nothing written on a usage error


def test_eval_editing_and_calibration(setup, capsys):
    root, ckpt = setup
    base = ["eval-editing", "--data", str(root / "faces"), "--n", "12", "--checkpoint", str(ckpt), "--editing",
            str(root / "editing"), "--classifier", str(root / "clf.safetensors"), "--batch-size", "8"]
    assert main(base + ["--calibrate", "--methods", "interfacegan"]) == 0  # the old spelling of `calibrate`
    assert "is the `calibrate` command" in capsys.readouterr().err
    settings = json.loads((root / "editing" / "editing.json").read_text())
    assert set(settings["strengths"]["interfacegan"]) == {"Smiling", "Bangs"}
    assert set(settings["layers"]["interfacegan"]) == {"Smiling", "Bangs"}  # a row range was chosen for each
    assert all(0 <= a < b for a, b in settings["layers"]["interfacegan"].values())
    assert "classifier_keep" not in settings  # not searched: the paper's weight
    # classifier edits: strengths, rows and a hold weight per attribute, from the given candidates
    assert main(base + ["--calibrate", "--methods", "classifier", "--no-layer-search", "--classifier-keeps",
                        "0", "0.5"]) == 0
    settings = json.loads((root / "editing" / "editing.json").read_text())
    assert set(settings["classifier_keep"]) == {"Smiling", "Bangs"}
    assert set(settings["classifier_keep"].values()) <= {0.0, 0.5}
    assert "hold weights of classifier edits" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(base + ["--calibrate", "--classifier-keeps", "-1"])
    assert exc.value.code == 2 and "expected a finite number >= 0" in capsys.readouterr().err
    folder_bytes = {p: p.read_bytes() for p in sorted((root / "editing").rglob("*")) if p.is_file()}
    assert main(base + ["--json", str(root / "report.json")]) == 0
    # evaluating reads the editing folder and writes nothing into it
    assert {p: p.read_bytes() for p in sorted((root / "editing").rglob("*")) if p.is_file()} == folder_bytes
    text = capsys.readouterr().out
    assert "| interfacegan | Smiling |" in text and "| reference | Bangs |" in text
    report = json.loads((root / "report.json").read_text())
    assert {s["method"] for s in report["scores"]} == {"interfacegan", "classifier", "reference"}
    assert all(0 <= s["success"] <= 1 and 0 <= s["preservation"] <= 1 for s in report["scores"] if s["n"])


def test_demo_shows_the_edits_of_an_editing_folder(setup, tmp_path):
    from style_transformer import load_pipeline
    from style_transformer.checkpoints import load_model
    from style_transformer.demo import run_demo

    root, ckpt = setup
    pipe = load_pipeline(checkpoint=ckpt, editing=root / "editing", device="cpu")
    clf = load_model(root / "clf.safetensors", kind="attribute_classifier")
    res = run_demo(tmp_path / "demo", n=3, pipe=pipe, classifier=clf)
    grid = np.asarray(Image.open(res.grid))
    assert grid.shape == (3 * 32, 5 * 32, 3)  # input, reconstruction, 2 toggles, 1 reference edit
    page = res.html.read_text()
    assert "Smiling toggled" in page and "Bangs toggled" in page and "Smiling from the next row" in page
    assert (tmp_path / "demo" / "images" / "face_0_Smiling_from_the_next_row.png").is_file()
    assert not np.array_equal(grid[:, 32:64], grid[:, 64:96])  # the toggle changed the reconstruction


def test_evaluate_reports_editing_scores_for_pipelines_with_editing_models(setup):
    from style_transformer import load_pipeline
    from style_transformer.checkpoints import load_model
    from style_transformer.data.datasets import ImageFolderDataset
    from style_transformer.metrics.evaluate import encoder_method, evaluate

    root, ckpt = setup
    pipe = load_pipeline(checkpoint=ckpt, editing=root / "editing", device="cpu")
    clf = load_model(root / "clf.safetensors", kind="attribute_classifier")
    data = ImageFolderDataset(root / "faces", 32, labels=root / "faces" / "attributes.csv")
    rec, = evaluate([encoder_method("st", pipe)], data, n=8, batch_size=8, classifier=clf, fid=False, timing=False,
                    edit_images=8)
    assert 0 <= rec["edit_success"] <= 1 and 0 <= rec["edit_preservation"] <= 1
    assert "attribute_agreement" in rec and "lpips" not in rec


def test_evaluate_scores_every_methods_codes_with_shared_editing_models(setup):
    """A method without editing models of its own is scored with the shared ones on its own codes: with
    the same codes and models the scores equal the own-models scores. PTI and a method rendering with
    other generator weights get none."""
    import copy

    from style_transformer import load_pipeline
    from style_transformer.checkpoints import load_model
    from style_transformer.data.datasets import ImageFolderDataset
    from style_transformer.editing.toolkit import EditingModels
    from style_transformer.metrics.evaluate import encoder_method, evaluate, optimization_method

    root, ckpt = setup
    own = load_pipeline(checkpoint=ckpt, editing=root / "editing", device="cpu")
    bare = load_pipeline(checkpoint=ckpt, device="cpu")
    other = load_pipeline(checkpoint=ckpt, device="cpu")
    other.generator = copy.deepcopy(other.generator)
    with torch.no_grad():
        next(p for n, p in other.generator.named_parameters() if not n.startswith("style.")).add_(0.01)
    clf = load_model(root / "clf.safetensors", kind="attribute_classifier")
    data = ImageFolderDataset(root / "faces", 32, labels=root / "faces" / "attributes.csv")
    methods = [encoder_method("own", own), encoder_method("bare", bare), encoder_method("other", other),
               optimization_method("pti", bare, "wplus", 2, pti_steps=1)]
    recs = evaluate(methods, data, n=8, batch_size=4, classifier=clf, fid=False, timing=False, edit_images=6,
                    editing=EditingModels.load(root / "editing"), editing_generator=bare.generator)
    by = {r["method"]: r for r in recs}
    assert by["own"]["editing"] == "own" and by["bare"]["editing"] == "shared"
    scores = [k for k in ("edit_success", "edit_preservation", "reference_match") if k in by["own"]]
    assert "edit_success" in scores and all(k in by["bare"] for k in scores)
    for k in scores:
        assert by["own"][k] == pytest.approx(by["bare"][k])
    for name in ("other", "pti"):
        assert "edit_success" not in by[name] and "editing" not in by[name]


def test_evaluate_editing_uses_given_codes(setup):
    from style_transformer import load_pipeline
    from style_transformer.checkpoints import load_model
    from style_transformer.data.datasets import ImageFolderDataset
    from style_transformer.metrics.editing import evaluate_editing

    root, ckpt = setup
    pipe = load_pipeline(checkpoint=ckpt, editing=root / "editing", device="cpu")
    clf = load_model(root / "clf.safetensors", kind="attribute_classifier")
    data = ImageFolderDataset(root / "faces", 32)
    images = torch.stack([data[i] for i in range(6)])
    ws = pipe.invert(list(images)).ws
    kw = dict(methods=("interfacegan",), strengths={"interfacegan": {"Smiling": 2.0}})
    a = evaluate_editing(pipe, images, clf, ["Smiling"], **kw).to_dict()
    b = evaluate_editing(pipe, images, clf, ["Smiling"], ws=ws, **kw).to_dict()
    c = evaluate_editing(pipe, images, clf, ["Smiling"], ws=torch.zeros_like(ws), **kw).to_dict()
    assert a == b and c["scores"][0]["drift"] != a["scores"][0]["drift"]
    with pytest.raises(ValueError, match="5 codes for 6 images"):
        evaluate_editing(pipe, images, clf, ["Smiling"], ws=ws[:5], **kw)


def _split_classifier(root, ckpt, ws=None):
    """(generator, image classifier whose verdicts split the renders of ``ws``, default 64 samples: the
    random classifier's bias moved to its median logit), the classifier saved as root/split_clf.safetensors."""
    from style_transformer.checkpoints import load_model

    gen = load_model(ckpt, kind="generator")
    clf = load_model(root / "clf.safetensors", kind="attribute_classifier")
    if ws is None:
        z = torch.randn(64, gen.style_dim, generator=torch.Generator().manual_seed(0))
        ws = gen.mapping(z)[:, None].expand(-1, gen.num_ws, -1)
    with torch.no_grad():
        img = gen.synthesis(ws[:, : gen.num_ws]).clamp(-1, 1)
        clf.head.bias -= clf(img).median(0).values
    save_model(clf, root / "split_clf.safetensors")
    return gen, clf


def test_train_editor_label_renders_trains_on_what_the_codes_draw(setup, monkeypatch, capsys):
    """--label-renders: the columns the image classifier judges become its verdicts on the latents'
    renders (checked against classify_renders computed here); the others keep the file's labels."""
    import style_transformer.training.editing as te
    from style_transformer.editing.build import latents_and_labels
    from style_transformer.editing import classify_renders

    root, ckpt = setup
    _, ws, columns, file_labels = latents_and_labels(str(root / "inv" / "latents.npz"),
                                                     str(root / "faces" / "attributes.csv"), None)
    gen, clf = _split_classifier(root, ckpt, ws)
    seen = {}
    original = te.train_latent_classifier

    def spy(ws_, labels_, *a, **k):
        seen["labels"] = labels_.clone()
        return original(ws_, labels_, *a, **k)

    monkeypatch.setattr(te, "train_latent_classifier", spy)
    assert main(["train-editor", "--latents", str(root / "inv" / "latents.npz"), "--labels",
                 str(root / "faces" / "attributes.csv"), "--out", str(root / "relabelled"), "--epochs", "1",
                 "--editor-steps", "2", "--hidden", "16", "--label-renders", "--generator", str(ckpt),
                 "--classifier", str(root / "split_clf.safetensors"), "--device", "cpu"]) == 0
    verdicts = classify_renders(gen, clf, ws)
    for j, c in enumerate(columns):
        expect = verdicts[:, clf.attributes.index(c)] if c in clf.attributes else file_labels[:, j]
        assert torch.equal(seen["labels"][:, j], expect), c
    assert "the renders agree with the labels on" in capsys.readouterr().out


def test_train_editor_near_metric(setup, monkeypatch, capsys):
    """--near-metric covariance (the default) trains the editors with the whitening of the generator's
    code covariance (checked against one computed here); euclidean with none; a generator of another
    width is a one-line error."""
    import style_transformer.training.editing as te
    from style_transformer.checkpoints import load_model
    from style_transformer.editing import w_covariance

    root, ckpt = setup
    seen = []
    original = te.train_reference_editor

    def spy(*a, **k):
        seen.append(k.get("near_whitening"))
        return original(*a, **k)

    monkeypatch.setattr(te, "train_reference_editor", spy)
    args = ["train-editor", "--latents", str(root / "inv" / "latents.npz"), "--labels",
            str(root / "faces" / "attributes.csv"), "--epochs", "1", "--editor-steps", "2", "--hidden", "16",
            "--attributes", "Smiling", "--generator", str(ckpt), "--device", "cpu"]
    assert main(args + ["--out", str(root / "near_cov")]) == 0
    expected = te.covariance_whitening(w_covariance(load_model(ckpt, kind="generator")))
    torch.testing.assert_close(seen[-1], expected)
    settings = json.loads((root / "near_cov" / "editing.json").read_text())
    assert settings["classifier_metric"] == "covariance"
    assert main(args + ["--out", str(root / "near_euc"), "--near-metric", "euclidean"]) == 0
    assert seen[-1] is None
    wide = Generator(GeneratorConfig(size=32, style_dim=48, n_mlp=1, channels=(8, 8, 8, 8)))
    save_model(wide, root / "wide_gen.safetensors")
    capsys.readouterr()
    bad = [a if a != str(ckpt) else str(root / "wide_gen.safetensors") for a in args]
    assert main(bad + ["--out", str(root / "near_bad")]) == 2
    err = capsys.readouterr().err
    assert "the generator's w_dim is 48" in err and "Traceback" not in err
    assert not (root / "near_bad").exists()


def test_train_editor_mix_codes_trains_the_classifier_on_judged_mixtures(setup, monkeypatch, capsys):
    """--mix-codes K: the W+ classifier also sees K mixed codes per latent, labelled by the image
    classifier's verdicts on their renders; every label column must be one it judges."""
    import style_transformer.training.editing as te
    from style_transformer.editing.build import latents_and_labels
    from style_transformer.editing import classify_renders, mixed_codes

    root, ckpt = setup
    _, ws, _, _ = latents_and_labels(str(root / "inv" / "latents.npz"), str(root / "faces" / "attributes.csv"), None)
    gen, clf = _split_classifier(root, ckpt, ws)
    lines = (root / "faces" / "attributes.csv").read_text().splitlines()
    head = lines[0].split(",")
    keep = [0] + [head.index(c) for c in ("Smiling", "Bangs", "Eyeglasses")]
    (root / "judged.csv").write_text("\n".join(",".join(line.split(",")[k] for k in keep) for line in lines) + "\n")
    seen = {}
    original = te.train_latent_classifier

    def spy(ws_, labels_, *a, **k):
        seen["ws"], seen["labels"] = ws_.clone(), labels_.clone()
        return original(ws_, labels_, *a, **k)

    monkeypatch.setattr(te, "train_latent_classifier", spy)
    args = ["train-editor", "--latents", str(root / "inv" / "latents.npz"), "--epochs", "1", "--editor-steps", "2",
            "--hidden", "16", "--generator", str(ckpt), "--classifier", str(root / "split_clf.safetensors"),
            "--device", "cpu", "--seed", "3"]
    assert main(args + ["--labels", str(root / "judged.csv"), "--out", str(root / "mixed"), "--mix-codes", "2"]) == 0
    mixed = mixed_codes(ws, 2, seed=3)
    assert torch.equal(seen["ws"], torch.cat([ws, mixed]))
    verdicts = classify_renders(gen, clf, torch.cat([ws, mixed]))
    assert torch.equal(seen["labels"], verdicts[:, [clf.attributes.index(c) for c in ("Smiling", "Bangs", "Eyeglasses")]])
    capsys.readouterr()
    assert main(args + ["--labels", str(root / "faces" / "attributes.csv"), "--out", str(root / "mixed_bad"),
                        "--mix-codes", "1"]) == 2
    err = capsys.readouterr().err
    assert "mixed codes: the image classifier does not judge" in err and "Traceback" not in err
    assert not (root / "mixed_bad").exists()


def test_directions_fit_on_generator_samples(setup, capsys):
    """InterFaceGAN's recipe: samples of the generator labelled by the image classifier; one W normal per
    attribute the classifier judges (an attribute whose samples all get one verdict is skipped)."""
    from style_transformer.editing import labelled_samples

    root, ckpt = setup
    gen, clf = _split_classifier(root, ckpt)
    assert 0 < float(labelled_samples(gen, clf, 64)[1].mean()) < 1
    out = root / "sample_dirs"
    assert main(["directions", "fit", "--samples", "64", "--generator", str(ckpt), "--classifier",
                 str(root / "split_clf.safetensors"), "--out", str(out), "--device", "cpu"]) == 0
    index = json.loads((out / "directions.json").read_text())
    assert index["directions"] and set(index["directions"]) <= {"Smiling", "Bangs", "Eyeglasses"}
    for name in index["directions"]:
        vec = np.load(out / f"{name}.npy")
        assert vec.shape == (1, 32) and abs(np.linalg.norm(vec) - 1) < 1e-5
    capsys.readouterr()
    assert main(["directions", "fit", "--samples", "8", "--latents", str(root / "inv" / "latents.npz"),
                 "--out", str(root / "bad")]) == 2
    assert "leave out --latents and --labels" in capsys.readouterr().err
    assert main(["directions", "fit", "--out", str(root / "bad")]) == 2
    assert "give --latents and --labels, or --samples N" in capsys.readouterr().err
    assert not (root / "bad").exists()


def test_eval_editing_pick_directions_keeps_the_better_direction_per_attribute(setup, capsys, tmp_path):
    """--pick-directions: per attribute the direction (and its strength) that edits the images best, as
    best_per_attribute of the two folders' scores computed here; written into --editing."""
    import shutil

    from style_transformer import load_pipeline
    from style_transformer.checkpoints import load_model
    from style_transformer.data.datasets import ImageFolderDataset
    from style_transformer.editing import Direction
    from style_transformer.editing.toolkit import EditingModels
    from style_transformer.metrics.editing import best_per_attribute, evaluate_editing

    root, ckpt = setup
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(root / "editing", a)
    shutil.copytree(root / "editing", b)
    other = EditingModels.load(b)
    g = torch.Generator().manual_seed(5)
    for name in other.directions:  # b: other directions and strengths
        vec = torch.randn(1, 32, generator=g)
        other.directions[name] = Direction(name, vec / vec.norm(), "interfacegan")
        other.set("interfacegan", name, strength=4.0)
    other.save(b)
    before = {n: EditingModels.load(p) for n, p in (("a", a), ("b", b))}
    clf = load_model(root / "clf.safetensors", kind="attribute_classifier")
    images = torch.stack([ImageFolderDataset(root / "faces", 32)[i] for i in range(12)])
    reports = []
    for n in ("a", "b"):
        pipe = load_pipeline(checkpoint=ckpt, editing=tmp_path / n, device="cpu")
        reports.append(evaluate_editing(pipe, images, clf, ["Smiling", "Bangs"], methods=("interfacegan",)))
    expect = best_per_attribute(reports)
    assert expect
    assert main(["calibrate", "--data", str(root / "faces"), "--n", "12", "--checkpoint", str(ckpt), "--editing",
                 str(a), "--classifier", str(root / "clf.safetensors"), "--pick-directions", str(b)]) == 0
    assert "| attribute |" in capsys.readouterr().out
    after = EditingModels.load(a)
    for name, k in expect.items():
        src = before["ab"[k]]
        torch.testing.assert_close(after.directions[name].vector, src.directions[name].vector)
        assert after.setting("interfacegan", name) == src.setting("interfacegan", name)
    assert main(["eval-editing", "--data", str(root / "faces"), "--checkpoint", str(ckpt), "--classifier",
                 str(root / "clf.safetensors"), "--pick-directions", str(b)]) == 2


def test_eval_editing_pick_editors_keeps_the_better_editor_per_attribute(setup, capsys, tmp_path):
    import shutil

    from style_transformer import load_pipeline
    from style_transformer.data.datasets import ImageFolderDataset
    from style_transformer.editing.toolkit import EditingModels
    from style_transformer.metrics.editing import best_per_attribute, evaluate_editing

    root, ckpt = setup
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(root / "editing", a)
    shutil.copytree(root / "editing", b)
    other = EditingModels.load(b)
    torch.manual_seed(7)
    for editor in other.editors.values():  # b: other editors
        for p in editor.parameters():
            p.data.add_(0.5 * torch.randn_like(p))
    for name in other.editors:  # b's editors come with scales
        other.set("reference", name, strength=1.5, remove=0.75)
    other.save(b)
    before = {"a": EditingModels.load(a), "b": EditingModels.load(b)}
    images = torch.stack([ImageFolderDataset(root / "faces", 32)[i] for i in range(12)])
    ws = load_pipeline(checkpoint=ckpt, device="cpu").invert(list(images)).ws
    _, clf = _split_classifier(root, ckpt, ws)  # verdicts split the reconstructions: reference pairs exist
    reports = [evaluate_editing(load_pipeline(checkpoint=ckpt, editing=tmp_path / n, device="cpu"), images, clf,
                                ["Smiling", "Bangs"], methods=("reference",)) for n in ("a", "b")]
    expect = best_per_attribute(reports, "reference")
    assert expect  # some attribute had pairs to score
    assert main(["calibrate", "--data", str(root / "faces"), "--n", "12", "--checkpoint", str(ckpt), "--editing",
                 str(a), "--classifier", str(root / "split_clf.safetensors"), "--pick-editors", str(b)]) == 0
    assert "| attribute |" in capsys.readouterr().out
    after = EditingModels.load(a)
    for name, k in expect.items():
        src = before["ab"[k]].editors[name].state_dict()
        for key, v in after.editors[name].state_dict().items():
            torch.testing.assert_close(v, src[key])
    # a chosen editor brings its calibrated scale along; a kept one keeps the folder's (none: 1)
    assert after.strengths("reference") == {name: 1.5 for name, k in expect.items() if k == 1}
    assert {a: s.remove for a, s in after.settings.get("reference", {}).items()} == {
        name: 0.75 for name, k in expect.items() if k == 1}
    assert main(["eval-editing", "--data", str(root / "faces"), "--checkpoint", str(ckpt), "--editing", str(a),
                 "--classifier", str(root / "clf.safetensors"), "--pick-editors", str(b), "--pick-directions",
                 str(b)]) == 2


def test_edit_reference_with_a_strength_scales_the_editors_move(setup, tmp_path, capsys):
    from style_transformer import load_pipeline
    from style_transformer.data.images import load_image

    root, ckpt = setup
    target, ref = root / "faces" / "000000.png", root / "faces" / "000001.png"
    base = ["edit", str(target), "--attribute", "Smiling", "--reference", str(ref), "--checkpoint", str(ckpt),
            "--editing", str(root / "editing")]
    assert main(base + ["--strength", "2", "--out", str(tmp_path / "s2")]) == 0
    assert "strength +2, reference" in capsys.readouterr().out
    pipe = load_pipeline(checkpoint=ckpt, editing=root / "editing", device="cpu")
    ws = pipe.invert([load_image(target)]).ws
    ws_ref = pipe.invert([load_image(ref)]).ws
    own = pipe.edit_ws(ws, "Smiling", ws_ref=ws_ref, method="reference", strength=1.0)
    with np.load(tmp_path / "s2" / "latents.npz") as z:
        got = torch.from_numpy(z["000000"])[None]
    torch.testing.assert_close(got, ws + 2 * (own - ws), rtol=0, atol=1e-4)
    assert main(base + ["--strength", "0", "--out", str(tmp_path / "s0")]) == 2
    err = capsys.readouterr().err
    assert "must be > 0" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "s0").exists()
    assert main(base[:4] + base[6:] + ["--out", str(tmp_path / "none")]) == 2  # neither flag
    assert "one of --strength or --reference is required" in capsys.readouterr().err
    for bad in ("nan", "inf"):
        assert main(base + ["--strength", bad, "--out", str(tmp_path / "bad")]) == 2
        assert "--strength must be a finite number" in capsys.readouterr().err and not (tmp_path / "bad").exists()


def test_calibrate_chooses_reference_edit_scales(setup, capsys, tmp_path):
    import shutil

    from style_transformer import load_pipeline
    from style_transformer.data.datasets import ImageFolderDataset

    root, ckpt = setup
    folder = tmp_path / "ed"
    shutil.copytree(root / "editing", folder)
    images = torch.stack([ImageFolderDataset(root / "faces", 32)[i] for i in range(12)])
    _split_classifier(root, ckpt, load_pipeline(checkpoint=ckpt, device="cpu").invert(list(images)).ws)  # pairs exist
    base = ["calibrate", "--data", str(root / "faces"), "--n", "12", "--checkpoint", str(ckpt), "--editing",
            str(folder), "--classifier", str(root / "split_clf.safetensors"), "--batch-size", "8"]
    before = json.loads((folder / "editing.json").read_text())
    before.setdefault("layers", {})
    assert main(base + ["--methods", "reference", "--reference-strengths", "0.5", "2"]) == 0
    settings = json.loads((folder / "editing.json").read_text())
    chosen = settings["strengths"]["reference"]
    assert chosen and set(chosen) <= {"Smiling", "Bangs"} and set(chosen.values()) <= {0.5, 2.0}
    assert set(settings["layers"]["reference"]) == set(chosen)
    # then a scale for the edits that remove, on the same rows (the folder has a W+ classifier)
    assert set(settings["reference_remove"]) == set(chosen) and set(settings["reference_remove"].values()) <= {0.5, 2.0}
    assert "reference edits that remove" in capsys.readouterr().out
    for key in ("strengths", "layers"):  # only the asked method was calibrated
        assert {m: v for m, v in settings[key].items() if m != "reference"} == \
            {m: v for m, v in before[key].items() if m != "reference"}
    with pytest.raises(SystemExit) as exc:
        main(base + ["--reference-strengths", "0"])
    assert exc.value.code == 2 and "expected a number > 0" in capsys.readouterr().err


def test_directions_list_shows_the_calibrated_defaults(setup, capsys, tmp_path):
    import shutil

    from style_transformer.editing.toolkit import EditingModels, settings_from_maps

    root, _ = setup
    shutil.copytree(root / "editing", tmp_path / "ed")
    models = EditingModels.load(tmp_path / "ed")
    models.settings = settings_from_maps(
        strengths={"interfacegan": {"Smiling": 15.0}, "classifier": {"Smiling": 2.5},
                   "reference": {"Smiling": 1.5, "Bangs": 2.0}},
        layers={"interfacegan": {"Smiling": (2, 6)}, "reference": {"Bangs": (0, 4)}},
        classifier_keep={"Smiling": 0.1}, reference_remove={"Bangs": 0.75})
    models.save(tmp_path / "ed")
    assert main(["directions", "list", "--dir", str(tmp_path / "ed")]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["Smiling", "interfacegan", "15", "@", "2:6", "|", "classifier", "2.5,", "hold", "0.1", "|",
            "reference", "x1.5"] in lines
    assert ["Bangs", "reference", "x2", "@", "0:4,", "removing", "x0.75"] in lines
