"""The checkpoint loader: safety, clear errors, shape inference, formats."""

import argparse
import dataclasses
import json

import pytest
import torch

import parity_rule
from style_transformer import (CheckpointError, Generator, GeneratorConfig, StyleTransformer, model_preset,
                               load_model, save_model)
from style_transformer.checkpoints.official import infer_encoder_config, infer_generator_config, strip_prefixes


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch PWNED_BY_PICKLE",))


def test_malicious_pickle_is_refused_and_not_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"g_ema": {}, "payload": _Evil()}, path)
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path)
    assert not (tmp_path / "PWNED_BY_PICKLE").exists()


def test_argparse_namespace_is_allowed(tmp_path, rosinality_checkpoint):
    ck = torch.load(rosinality_checkpoint, weights_only=True)
    ck["args"] = argparse.Namespace(size=256, channel_multiplier=2)
    path = tmp_path / "g.pt"
    torch.save(ck, path)
    assert isinstance(load_model(path), Generator)


def test_module_prefixes_are_stripped():
    sd = {"module.encoder.module.z": 1, "_orig_mod.decoder.style.1.weight": 2, "decoder.module.input.input": 3}
    assert set(strip_prefixes(sd)) == {"encoder.z", "decoder.style.1.weight", "decoder.input.input"}


def test_missing_unexpected_and_misshaped_keys_are_named(tmp_path):
    ck = parity_rule.rosinality_g256_checkpoint(1)
    g = ck["g_ema"]
    del g["conv1.noise.weight"]
    g["extra.weight"] = torch.zeros(1)
    g["to_rgb1.bias"] = torch.zeros(1, 4, 1, 1)
    path = tmp_path / "g.pt"
    torch.save(ck, path)
    with pytest.raises(CheckpointError) as e:
        load_model(path)
    msg = str(e.value)
    assert "missing keys: conv1.noise.weight" in msg
    assert "unexpected keys: extra.weight" in msg
    assert "to_rgb1.bias (model (1, 3, 1, 1), file (1, 4, 1, 1))" in msg


def test_wrong_kind_and_junk_files(tmp_path, official_checkpoint, rosinality_checkpoint):
    with pytest.raises(CheckpointError, match="generator checkpoint, but a style transformer"):
        load_model(rosinality_checkpoint, kind="style_transformer")
    # a Style Transformer file can serve as a generator (its decoder)
    assert isinstance(load_model(official_checkpoint, kind="generator"), Generator)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x00\x01 not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_model(junk)
    other = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(1)}}, other)
    with pytest.raises(CheckpointError, match="not a Style Transformer"):
        load_model(other)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "missing.pt")
    bad_st = tmp_path / "bad.safetensors"
    bad_st.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model(bad_st)


def test_config_is_inferred_from_shapes_not_opts():
    cfg = model_preset("official-256")
    sd = parity_rule.rule_state_dict("styletransformer", 1)
    sd = strip_prefixes(sd)
    enc = {k[8:]: v for k, v in sd.items() if k.startswith("encoder.")}
    dec = {k[8:]: v for k, v in sd.items() if k.startswith("decoder.")}
    assert infer_encoder_config(enc) == cfg.encoder
    assert infer_generator_config(dec) == cfg.generator
    custom = GeneratorConfig(size=64, style_dim=24, n_mlp=3, channels=(48, 40, 32, 24, 16))
    assert infer_generator_config(Generator(custom).state_dict()) == custom
    small = model_preset("small-64")
    # input_size is not visible in weights; official files are 256
    inferred = infer_encoder_config(StyleTransformer(small).encoder.state_dict())
    assert inferred == dataclasses.replace(small.encoder, input_size=256)


@pytest.mark.slow  # heavy: full-size network(s)
def test_official_file_and_converted_file_agree(tmp_path, official_checkpoint):
    a = load_model(official_checkpoint)
    path = save_model(a, tmp_path / "st.safetensors")
    b = load_model(path)
    assert b.cfg == a.cfg
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_fp16_file_loads_as_float32(tmp_path, tiny_model):
    path = save_model(tiny_model, tmp_path / "m.safetensors", dtype=torch.float16)
    m = load_model(path)
    assert all(p.dtype == torch.float32 for p in m.parameters())
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(m.encode(x), tiny_model.encode(x), rtol=0.05, atol=0.05)


def test_config_json_beside_file_is_accepted(tmp_path, tiny_model):
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tiny_model.state_dict().items()}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="config.json"):
        load_model(tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text(json.dumps({"kind": "style_transformer",
                                                       "config": tiny_model.cfg.to_dict()}))
    m = load_model(tmp_path)  # a folder holding model.safetensors
    assert m.cfg == tiny_model.cfg


def test_generator_without_latent_avg_gets_mean_latent(tmp_path):
    ck = parity_rule.rosinality_g256_checkpoint(1)
    del ck["latent_avg"]
    path = tmp_path / "g.pt"
    torch.save(ck, path)
    g = load_model(path)
    torch.testing.assert_close(g.latent_avg, g.mean_latent(4096, seed=0))


def test_saved_files_get_the_usual_permissions(tiny_model, tmp_path):
    import os

    from style_transformer import save_model

    mask = os.umask(0)
    os.umask(mask)
    path = save_model(tiny_model, tmp_path / "m.safetensors")
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask


def test_official_input_transform_from_the_opts():
    import argparse

    from style_transformer import CheckpointError, GeneratorConfig
    from style_transformer.checkpoints.official import _opts_of, official_input

    g256, g512 = GeneratorConfig(size=256), GeneratorConfig(size=512)
    assert official_input({}, g256, "pSp") == {}
    assert official_input({"dataset_type": "ffhq_encode", "output_size": "256"}, g256, "pSp") == {}
    assert official_input({"dataset_type": "cars_encode", "output_size": 512}, g512, "e4e") == {"input_height": 192}
    assert official_input({"dataset_type": "church_encode"}, g512, "e4e") == {}  # a square 512 px configuration
    refusals = [
        (({"output_size": 1024}, g256, "pSp"),
         "the pSp checkpoint's opts say output_size 1024, but its generator is 256 px"),
        (({}, g512, "e4e"), "cannot tell the e4e checkpoint's input transform: a 512 px generator is the official "
                            "cars configuration (192x256 input) or a square one, and its opts have no dataset_type"),
        (({"dataset_type": 5}, g256, "Style Transformer"),
         "the Style Transformer checkpoint's opts.dataset_type is not a name: 5"),
    ]
    for args, message in refusals:
        with pytest.raises(CheckpointError) as e:
            official_input(*args)
        assert str(e.value) == message
    # the opts as the official files store them: an argparse Namespace, a dict, or nothing usable
    assert _opts_of({"opts": argparse.Namespace(dataset_type="cars_encode")}) == {"dataset_type": "cars_encode"}
    assert _opts_of({"opts": {"output_size": 256}}) == {"output_size": 256}
    assert _opts_of({"opts": "ffhq"}) == {} and _opts_of({}) == {}


@pytest.mark.parametrize("fields", [dict(input_nc=3, stem_channels=8, stage_channels=(8, 16, 24, 32),
                                         stage_units=(1, 2, 1, 2), se=True, se_reduction=4),
                                    dict(input_nc=6, stem_channels=4, stage_channels=(4, 8, 12, 16),
                                         stage_units=(2, 1, 3, 1), se=False, se_reduction=16)])
def test_backbone_fields_are_read_back_from_the_weights_shapes(fields):
    from style_transformer import CheckpointError
    from style_transformer.checkpoints.official import _infer_backbone
    from style_transformer.config import EncoderConfig
    from style_transformer.models.encoder import ir_se_backbone

    stem, body = ir_se_backbone(EncoderConfig(**fields, n_styles=4, d_model=fields["stage_channels"][-1]))
    sd = {f"input_layer.{k}": v for k, v in stem.state_dict().items()}
    sd.update({f"body.{k}": v for k, v in body.state_dict().items()})
    assert _infer_backbone(sd) == fields
    # a body whose widths never change has one stage, not four
    stem, body = ir_se_backbone(EncoderConfig(**dict(fields, stage_channels=(8, 8, 8, 8)), n_styles=4, d_model=8))
    flat = {f"input_layer.{k}": v for k, v in stem.state_dict().items()}
    flat.update({f"body.{k}": v for k, v in body.state_dict().items() if "shortcut" not in k})
    with pytest.raises(CheckpointError) as e:
        _infer_backbone(flat)
    assert str(e.value) == "cannot infer 4 backbone stages from the encoder (found 1)"
