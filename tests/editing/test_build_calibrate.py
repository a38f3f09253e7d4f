"""The editing library's orchestration, without the command line: building an editing folder from
latents (``editing.build``), calibrating and picking (``editing.calibrate``), and the method registry."""

import numpy as np
import pytest
import torch

from style_transformer.editing.toolkit import (EDIT_METHODS, METHODS, EditingModels, EditSetting,
                                               settings_from_maps)
from style_transformer.errors import InputError


@pytest.fixture(scope="module")
def latents(tiny_editing):
    """(ws [N, L, d], labels [N, 2], columns) of the tiny editing set."""
    from style_transformer.editing.build import latents_and_labels

    _, ws, columns, labels = latents_and_labels(str(tiny_editing / "inv" / "latents.npz"),
                                                 str(tiny_editing / "faces" / "attributes.csv"), ["Smiling", "Bangs"])
    return ws, labels, columns


def test_build_trains_a_classifier_directions_and_editors(latents):
    from style_transformer.editing import fit_boundary
    from style_transformer.editing.build import UNCALIBRATED_STRENGTH, EditingBuildConfig, build_editing_models

    ws, labels, columns = latents
    cfg = EditingBuildConfig(attributes=["Bangs"], epochs=1, editor_steps=2, hidden=(16,), near_metric="euclidean")
    models, report = build_editing_models(ws, labels, columns, cfg)
    assert list(models.latent_classifier.attributes) == columns  # the classifier knows every column
    assert sorted(models.directions) == ["Bangs"] and sorted(models.editors) == ["Bangs"]
    # the direction is the boundary fitted on the mean code (an independent fit gives the same normal)
    normal, _, info = fit_boundary(ws.mean(1), labels[:, 1])
    torch.testing.assert_close(models.directions["Bangs"].vector, normal[None])
    assert report.boundary_accuracy == {"Bangs": info["accuracy"]} and report.latents == len(ws)
    assert set(report.classifier_accuracy) == set(columns) and not report.label_agreement
    assert models.strengths("interfacegan") == {"Bangs": UNCALIBRATED_STRENGTH}
    assert models.strengths("classifier") == {"Bangs": UNCALIBRATED_STRENGTH}


def test_build_refuses_what_it_cannot_do(latents):
    from style_transformer.editing.build import EditingBuildConfig, build_editing_models

    ws, labels, columns = latents
    with pytest.raises(InputError, match="no 0/1 label column Hat"):
        build_editing_models(ws, labels, columns, EditingBuildConfig(attributes=["Hat"]))
    with pytest.raises(InputError, match="need the generator"):
        build_editing_models(ws, labels, columns, EditingBuildConfig())  # covariance metric, no generator
    with pytest.raises(InputError, match="image attribute classifier"):
        build_editing_models(ws, labels, columns, EditingBuildConfig(label_renders=True), generator=object())
    with pytest.raises(InputError, match=">= 0"):
        build_editing_models(ws, labels, columns, EditingBuildConfig(mix_codes=-1, near_metric="euclidean"))


def test_relabel_by_renders_replaces_only_judged_columns(tiny_editing, tiny_checkpoint, latents):
    from style_transformer.checkpoints import load_model
    from style_transformer.config import AttributeClassifierConfig
    from style_transformer.editing import classify_renders
    from style_transformer.editing.build import relabel_by_renders
    from style_transformer.models.classifier import AttributeClassifier

    ws, labels, columns = latents
    torch.manual_seed(1)
    clf = AttributeClassifier(AttributeClassifierConfig(attributes=("Bangs", "Hat"), size=32, channels=(4, 8)))
    gen = load_model(tiny_checkpoint, kind="generator")
    new, agreement = relabel_by_renders(gen, clf, ws, columns, labels)
    verdicts = classify_renders(gen, clf, ws)
    assert torch.equal(new[:, 0], labels[:, 0])  # Smiling: not judged, kept
    assert torch.equal(new[:, 1], verdicts[:, 0].to(new.dtype))
    assert agreement == {"Bangs": pytest.approx(float((labels[:, 1] == verdicts[:, 0]).float().mean()))}
    with pytest.raises(InputError, match="judges none"):
        relabel_by_renders(gen, clf, ws, ["Smiling"], labels[:, :1])


def test_old_names_of_the_image_classifier_still_work(latents, caplog):
    from style_transformer.editing import classify_renders, judge_codes
    from style_transformer.editing.build import EditingBuildConfig, build_editing_models

    assert judge_codes is classify_renders
    cfg = EditingBuildConfig(label_renders=True)
    assert cfg.needs_judge and cfg.needs_image_classifier
    ws, labels, columns = latents
    with pytest.raises(InputError, match="need the generator"):  # the old keyword reaches the new check
        build_editing_models(ws, labels, columns, cfg, judge=object())
    assert "is now classifier=" in caplog.text



class _Pipe:
    """Codes are the images' pixels; a direction per attribute adds to its channel (as in the metric tests)."""

    def __init__(self, models):
        self.editing, self.generator, self.device = models, type("G", (), {"num_ws": 3})(), "cpu"

    def invert(self, images, batch_size=8):
        x = torch.stack(list(images))
        return type("R", (), {"ws": x.reshape(len(x), 3, 4), "images": x})()

    def generate(self, ws, batch_size=8):
        return ws.reshape(len(ws), 3, 2, 2)

    def edit_ws(self, ws, attribute, strength=None, ws_ref=None, method=None, layers=None):
        return self.editing.edit(ws, attribute, method=method, strength=strength, ws_ref=ws_ref, layers=layers)


class _Judge:
    attributes = ["red", "green", "blue"]

    def predict(self, img):
        return (img.mean(dim=(2, 3)) > 0).float()


def _channel_models(**maps):
    from style_transformer.editing import Direction

    dirs = {}
    for k, name in enumerate(("red", "green")):
        v = torch.zeros(1, 4)
        v[0] = 1.0
        d = Direction(name, v, "interfacegan")
        d.layers = (k, k + 1)  # the attribute's row: its channel
        dirs[name] = d
    return EditingModels(directions=dirs, settings=settings_from_maps(**maps))


def test_calibrate_editing_sets_the_chosen_settings_in_memory():
    from style_transformer.editing.calibrate import Calibration, calibrate_editing

    torch.manual_seed(0)
    images = (torch.rand(40, 3, 1, 1) * 1.6 - 0.8).expand(-1, -1, 2, 2).contiguous()
    models = _channel_models(strengths={"interfacegan": {"red": 0.1}})
    pipe = _Pipe(models)
    cal = calibrate_editing(pipe, images, _Judge(), ["red", "green"], methods=("interfacegan", "sefa"),
                            layer_search=False)
    assert isinstance(cal, Calibration) and set(cal.strengths) == {"interfacegan"}  # sefa is not calibrated
    # +-1 on a channel whose mean lies in [-0.8, 0.8] flips every verdict: the smallest such grid strength
    assert cal.strengths["interfacegan"] == {"red": 1.0, "green": 1.0} and not cal.rows
    assert models.strengths("interfacegan") == {"red": 1.0, "green": 1.0}


def test_calibration_apply_and_settings_round_trip(tmp_path):
    from style_transformer.editing.calibrate import Calibration

    models = _channel_models(strengths={"classifier": {"red": 2.0}})
    Calibration(strengths={"interfacegan": {"red": 4.5}}, rows={"interfacegan": {"red": (0, 2)}},
                keeps={"red": 0.5}, removes={"green": 0.75}).apply(models)
    assert models.setting("interfacegan", "red") == EditSetting(strength=4.5, rows=(0, 2))
    assert models.setting("classifier", "red") == EditSetting(strength=2.0, keep=0.5)  # other fields stay
    assert models.setting("reference", "green") == EditSetting(remove=0.75)
    models.save_settings(tmp_path)
    models.save(tmp_path)
    assert EditingModels.load(tmp_path).settings == models.settings
    models.set("reference", "green", remove=None)  # clearing the last field drops the record
    assert "green" not in models.settings.get("reference", {})


def test_trying_restores_the_stored_settings():
    models = _channel_models(strengths={"interfacegan": {"red": 1.0}})
    with models.trying("interfacegan", {"red": EditSetting(strength=9.0), "green": EditSetting(strength=2.0)}):
        assert models.strengths("interfacegan") == {"red": 9.0, "green": 2.0}
    assert models.strengths("interfacegan") == {"red": 1.0}


def test_pick_per_attribute_takes_the_better_direction_with_its_setting(monkeypatch):
    from style_transformer import inference
    from style_transformer.editing.calibrate import pick_per_attribute

    class _View(_Pipe):  # the pipeline view each candidate is scored through
        def __init__(self, generator, encoder, device, editing=None):
            super().__init__(editing)

    monkeypatch.setattr(inference, "InversionPipeline", _View)
    torch.manual_seed(0)
    images = (torch.rand(40, 3, 1, 1) * 1.6 - 0.8).expand(-1, -1, 2, 2).contiguous()
    weak = _channel_models(strengths={"interfacegan": {"red": 0.05, "green": 1.0}})
    strong = _channel_models(strengths={"interfacegan": {"red": 1.0, "green": 0.05}},
                             layers={"interfacegan": {"red": (0, 1)}})
    pipe = _Pipe(weak)
    pick = pick_per_attribute(pipe, images, _Judge(), ["red", "green"], [strong], "directions")
    assert pick.chosen == {"red": 1, "green": 0}
    assert weak.directions["red"] is strong.directions["red"]
    assert weak.setting("interfacegan", "red") == EditSetting(strength=1.0, rows=(0, 1))  # came with it
    assert weak.setting("interfacegan", "green") == EditSetting(strength=1.0)  # kept
    with pytest.raises(ValueError, match="kind"):
        pick_per_attribute(pipe, images, _Judge(), ["red"], [strong], "boundaries")


def test_every_method_is_registered_and_edit_dispatches_to_it():
    from style_transformer.editing.toolkit import register_method

    assert METHODS == ("interfacegan", "classifier", "reference", "ganspace", "sefa")
    assert set(EDIT_METHODS) >= set(METHODS)
    models = _channel_models(strengths={"interfacegan": {"red": 2.0}})
    ws = torch.zeros(2, 3, 4)
    out = models.edit(ws, "red")  # stored strength 2 on the direction's own row
    assert torch.equal(out[:, 0], torch.full((2, 4), 2.0)) and out[:, 1:].abs().sum() == 0

    seen = {}

    @register_method("scale-test", lambda m: ["any"])
    def _scale(models_, ws_, attribute, setting, ws_ref, generator):
        seen["setting"] = setting
        return ws_ * setting.strength

    try:
        models.set("scale-test", "any", strength=3.0, rows=(0, 1))
        assert torch.equal(models.edit(torch.ones(1, 3, 4), "any", method="scale-test"), torch.full((1, 3, 4), 3.0))
        assert seen["setting"] == EditSetting(strength=3.0, rows=(0, 1))
        models.edit(torch.ones(1, 3, 4), "any", method="scale-test", strength=-1.0, layers=(1, 3))
        assert seen["setting"] == EditSetting(strength=-1.0, rows=(1, 3), remove=-1.0)  # the call's values win
        assert models.available()["scale-test"] == ["any"]
    finally:
        del EDIT_METHODS["scale-test"]
    assert np.isfinite(models.edit(ws, "red", strength=1.0).numpy()).all()
