"""The editing models against the official outputs (parity data) and their key layouts."""

import pytest
import torch

import parity_rule
from style_transformer import load_model, save_model
from style_transformer.checkpoints import CheckpointError
from style_transformer.config import CELEBA_ATTRIBUTES, LatentClassifierConfig, ReferenceEditorConfig
from style_transformer.models import LatentClassifier, ReferenceEditor

REF = {name: torch.load(parity_rule.DATA / f"public_{name}.pt", weights_only=True)
       for name in ("lcnet40", "edit_encoder")}


@pytest.mark.parametrize("wrapped", [True, False])
def test_lcnet40_official_file_matches_official_outputs(tmp_path, wrapped):
    sd = parity_rule.rule_state_dict("lcnet40", REF["lcnet40"]["seed"])
    torch.save({"state_dict": sd} if wrapped else sd, tmp_path / "lcnet.pt")
    model = load_model(tmp_path / "lcnet.pt", kind="latent_classifier")
    assert model.attributes == list(CELEBA_ATTRIBUTES) and model.cfg.num_ws == 18
    w = REF["lcnet40"]["inputs"]["w"]
    with torch.no_grad():
        logits, emb = model(w)
    torch.testing.assert_close(logits, REF["lcnet40"]["outputs"]["logits"], rtol=0, atol=1e-4)
    torch.testing.assert_close(emb, REF["lcnet40"]["outputs"]["embeddings"], rtol=0, atol=1e-4)
    # native round trip
    save_model(model, tmp_path / "lc.safetensors")
    again = load_model(tmp_path / "lc.safetensors", kind="latent_classifier")
    with torch.no_grad():
        assert torch.equal(again(w)[0], logits)


def test_edit_encoder_official_file_matches_official_outputs(tmp_path):
    sd = parity_rule.rule_state_dict("edit_encoder", REF["edit_encoder"]["seed"])
    torch.save({"state_dict": sd}, tmp_path / "edit.pt")
    model = load_model(tmp_path / "edit.pt", kind="reference_editor")
    src, ref = REF["edit_encoder"]["inputs"]["src"], REF["edit_encoder"]["inputs"]["ref"]
    with torch.no_grad():
        for impl in ("fast", "ref"):
            model.transformerlayer.impl = impl
            torch.testing.assert_close(model(src, ref), REF["edit_encoder"]["outputs"]["codes"], rtol=0, atol=1e-4)


def test_key_layouts_match_the_manifests():
    lc = LatentClassifier(LatentClassifierConfig())
    want = {k: tuple(s) for k, s, _ in parity_rule.load_manifest("lcnet40")}
    assert {f"classifier.module.{k}": tuple(v.shape) for k, v in lc.state_dict().items()} == want
    ed = ReferenceEditor(ReferenceEditorConfig())
    want = {k: tuple(s) for k, s, _ in parity_rule.load_manifest("edit_encoder")}
    assert {f"encoder.module.{k}": tuple(v.shape) for k, v in ed.state_dict().items()} == want


def test_wrong_kinds_and_shapes_are_refused(tmp_path):
    sd = parity_rule.rule_state_dict("edit_encoder", 1)
    torch.save({"state_dict": sd}, tmp_path / "edit.pt")
    with pytest.raises(CheckpointError, match="reference editor checkpoint, but a latent classifier"):
        load_model(tmp_path / "edit.pt", kind="latent_classifier")
    bad = {k: v for k, v in sd.items() if "linear1" not in k}
    torch.save({"state_dict": bad}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="linear1"):
        load_model(tmp_path / "bad.pt")
    lc = LatentClassifier(LatentClassifierConfig(attributes=("a", "b"), num_ws=4, w_dim=8, hidden=(16,), embed_dim=4))
    with pytest.raises(ValueError, match=r"\[N, 4, 8\]"):
        lc(torch.zeros(2, 4, 7))
