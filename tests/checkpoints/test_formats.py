"""What the loader reads from each format: the native file's metadata and its refusals, and the
configurations inferred from official files' shapes (pSp/e4e, Style Transformer, rosinality and
train-gan generators, LCNet, the reference edit encoder). Official dicts are built on the meta
device (shapes only) wherever a file is not needed."""

import dataclasses
import json
import struct
from pathlib import Path

import pytest
import torch
from torch import nn

from style_transformer import CheckpointError, load_model, save_model
from style_transformer.checkpoints.io import FORMAT, FORMAT_VERSION, kind_of
from style_transformer.checkpoints.official import (convert_official, detect_kind, infer_encoder_config,
                                                    infer_generator_config, infer_psp_config)
from style_transformer.config import (CELEBA_ATTRIBUTES, EncoderConfig, GeneratorConfig, LatentClassifierConfig,
                                      PSPConfig, ReferenceEditorConfig, StyleTransformerConfig)
from style_transformer.models import (Generator, LatentClassifier, PSPModel, ReferenceEditor, StyleGAN3Generator,
                                      StyleTransformer)

NVIDIA = Path(__file__).parents[1] / "data" / "nvidia"
SMALL_ENCODER = dict(stem_channels=8, stage_channels=(8, 16, 24, 32), stage_units=(1, 1, 1, 1), se_reduction=4)


def _meta_state(model_cls, cfg) -> dict:
    with torch.device("meta"):
        return model_cls(cfg).state_dict()


def _sub(state: dict, prefix: str) -> dict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _refusal(fn, *args) -> str:
    with pytest.raises(CheckpointError) as e:
        fn(*args)
    return str(e.value)


# ---- the native format ----

def test_native_metadata_and_dtypes(tmp_path, tiny_model):
    from safetensors import safe_open

    path = save_model(tiny_model, tmp_path / "m.safetensors", dtype=torch.float16)
    with safe_open(str(path), framework="pt") as f:
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    assert meta == {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": "style_transformer",
                    "config": tiny_model.cfg.to_json()}
    assert (FORMAT, FORMAT_VERSION) == ("style_transformer", "1")
    want = tiny_model.state_dict()
    assert set(state) == set(want)
    counters = [k for k, v in want.items() if not v.is_floating_point()]
    assert counters and all(state[k].dtype == want[k].dtype and torch.equal(state[k], want[k]) for k in counters)
    assert all(state[k].dtype == torch.float16 for k, v in want.items() if v.is_floating_point())
    # without a dtype, every tensor is written as it is
    path = save_model(tiny_model, tmp_path / "full.safetensors")
    with safe_open(str(path), framework="pt") as f:
        assert all(f.get_tensor(k).dtype == v.dtype and torch.equal(f.get_tensor(k), v) for k, v in want.items())


def test_kind_of_names_what_cannot_be_saved():
    assert kind_of(Generator(GeneratorConfig(size=32, style_dim=8, n_mlp=1, channels=(8,) * 4))) == "generator"
    with pytest.raises(TypeError) as e:
        kind_of(nn.Linear(2, 2))
    assert str(e.value) == "cannot save a Linear"


def test_stylegan3_generator_round_trips_through_the_native_format(tmp_path):
    g = load_model(NVIDIA / "sg3_t32.pkl", kind="generator")
    again = load_model(save_model(g, tmp_path / "sg3.safetensors"), kind="generator")
    assert isinstance(again, StyleGAN3Generator) and again.cfg == g.cfg
    assert all(torch.equal(a, b) for a, b in zip(g.state_dict().values(), again.state_dict().values()))


def _native(tmp_path, meta: dict) -> Path:
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file({"w": torch.zeros(1)}, str(path), metadata=meta)
    return path


def test_native_refusals_name_the_file_and_the_problem(tmp_path, tiny_model):
    cfg = tiny_model.cfg.to_json()
    path = _native(tmp_path, {"format": "other", "kind": "style_transformer", "config": cfg})
    assert _refusal(load_model, path) == f"{path}: metadata format 'other' is not 'style_transformer'"
    path = _native(tmp_path, {"kind": "style_transformer", "config": "{}"})  # format may be left out
    assert _refusal(load_model, path).startswith(f"{path} does not match the model: missing keys: ")
    path = _native(tmp_path, {"format": FORMAT, "kind": "unet", "config": cfg})
    assert _refusal(load_model, path) == f"{path}: unknown model kind 'unet' in metadata"
    path = _native(tmp_path, {"format": FORMAT, "kind": "generator", "config": json.dumps({"size": 33})})
    msg = _refusal(load_model, path)
    assert msg.startswith(f"{path}: invalid config in metadata (") and "size" in msg
    # the metadata from a config.json beside the file
    path = _native(tmp_path, {})
    (tmp_path / "config.json").write_text("{not json")
    msg = _refusal(load_model, path)
    assert msg.startswith(f"{tmp_path / 'config.json'}: invalid JSON (Expecting property name")


def test_unreadable_safetensors_gives_the_reader_s_reason_cut_to_200_chars(tmp_path):
    from safetensors import safe_open

    header = json.dumps({"a": {"dtype": "QQ", "shape": [2], "data_offsets": [0, 8]}}).encode()
    path = tmp_path / "odd.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    with pytest.raises(Exception) as reader:
        safe_open(str(path), framework="pt")
    reason = str(reader.value)
    assert len(reason) > 200  # the reader lists every dtype it knows
    assert _refusal(load_model, path) == f"{path}: not a readable safetensors file ({reason[:200]})"


# ---- generators' shapes ----

@pytest.mark.parametrize("cm", [1, 2, 4])
def test_channel_multiplier_is_read_back(cm):
    cfg = GeneratorConfig(size=128, style_dim=16, n_mlp=2, channel_multiplier=cm)
    assert infer_generator_config(_meta_state(Generator, cfg)) == cfg


@pytest.mark.parametrize("c_dim", [0, 3])
def test_z_width_is_read_back_when_it_differs_from_w(c_dim):
    cfg = GeneratorConfig(size=32, style_dim=16, z_dim=24, n_mlp=2, channels=(16, 16, 8, 8), c_dim=c_dim)
    assert infer_generator_config(_meta_state(Generator, cfg)) == cfg
    same = dataclasses.replace(cfg, z_dim=0)
    assert infer_generator_config(_meta_state(Generator, same)).z_dim == 0


def test_conditional_generator_and_its_label_names():
    cfg = GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 8, 8), c_dim=3, label_combos=5,
                          label_names=("a", "b", "c"))
    sd = _meta_state(Generator, cfg)
    assert tuple(sd["label_dist"].shape) == (5, 4) and tuple(sd["embed.weight"].shape)[1] == 3
    assert infer_generator_config(sd, ["a", "b", "c"]) == cfg
    unnamed = dataclasses.replace(cfg, label_names=())
    assert infer_generator_config(sd) == unnamed
    assert infer_generator_config(sd, ["a", "b"]) == unnamed  # names that do not fit the labels are dropped
    no_table = dataclasses.replace(cfg, label_combos=0)
    assert infer_generator_config(_meta_state(Generator, no_table), ("a", "b", "c")) == no_table


def test_train_gan_checkpoint_carries_its_label_names():
    cfg = GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 8, 8), c_dim=2, label_names=("x", "y"))
    sd = _meta_state(Generator, cfg)
    kind, got, _ = convert_official({"g_ema": sd, "config": {"generator": {"label_names": ["x", "y"]}}})
    assert kind == "generator" and got == cfg
    unnamed = dataclasses.replace(cfg, label_names=())
    assert convert_official({"g_ema": sd, "config": "run.yaml"})[1] == unnamed
    assert convert_official({"g_ema": sd, "config": {"steps": 10}})[1] == unnamed
    assert convert_official({"g_ema": sd, "config": {"generator": {"label_names": "xy"}}})[1] == unnamed


def test_generator_missing_key_is_named():
    sd = _meta_state(Generator, GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 8, 8)))
    del sd["conv1.conv.weight"]
    assert _refusal(infer_generator_config, sd) == "not a StyleGAN2 generator state dict: missing key conv1.conv.weight"


# ---- pSp / e4e ----

def _psp(arch="psp", input_size=128, n_styles=8, coarse=3, middle=6, gen=None) -> PSPConfig:
    gen = gen or GeneratorConfig(size=32, style_dim=32, n_mlp=2, channels=(32, 32, 16, 16))
    return PSPConfig(arch=arch, encoder=EncoderConfig(input_size=input_size, n_styles=n_styles, d_model=gen.style_dim,
                                                      **SMALL_ENCODER),
                     generator=gen, coarse_ind=coarse, middle_ind=middle)


@pytest.mark.parametrize("arch", ["psp", "e4e"])
@pytest.mark.parametrize("coarse,middle", [(3, 6), (1, 8), (2, 8), (8, 8)])
def test_psp_heads_and_input_size_are_read_back(arch, coarse, middle):
    cfg = _psp(arch, coarse=coarse, middle=middle)
    sd = _meta_state(PSPModel, cfg)
    assert infer_psp_config(_sub(sd, "encoder."), cfg.generator, arch) == cfg


def test_psp_refusals_are_named():
    cfg = _psp()
    enc = _sub(_meta_state(PSPModel, cfg), "encoder.")
    assert _refusal(infer_psp_config, {k: v for k, v in enc.items() if k != "styles.0.linear.weight"},
                    cfg.generator, "psp") == "not a pSp/e4e encoder state dict: missing key styles.0.linear.weight"
    msg = _refusal(infer_psp_config, enc, GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16,) * 4), "psp")
    assert msg == "encoder weights do not describe a valid pSp/e4e encoder: encoder.d_model must equal generator.style_dim"


def _official_psp(cfg: PSPConfig, **extra) -> dict:
    sd = _meta_state(PSPModel, cfg)
    latent_avg = sd.pop("decoder.latent_avg")
    return {"state_dict": sd, "latent_avg": latent_avg, **extra}


def test_psp_file_options():
    cfg = _psp()
    # pSp when the opts do not say
    kind, got, state = convert_official(_official_psp(cfg))
    assert (kind, got) == ("psp", cfg) and tuple(state["decoder.latent_avg"].shape) == (32,)
    kind, got, _ = convert_official(_official_psp(cfg, opts={"encoder_type": "Encoder4Editing"}))
    assert got.arch == "e4e"
    assert _refusal(convert_official, _official_psp(cfg, opts={"encoder_type": "BackboneEncoder"})) == (
        "unsupported pSp-family encoder_type 'BackboneEncoder' (GradualStyleEncoder = pSp, Encoder4Editing = e4e)")
    ck = _official_psp(cfg)
    del ck["latent_avg"]
    assert _refusal(convert_official, ck) == "the pSp/e4e checkpoint has no 'latent_avg' (its codes are offsets from it)"
    # the input transform from opts.dataset_type, named after the architecture in its refusals
    g512 = GeneratorConfig(size=512, style_dim=32, n_mlp=2, channels=(32, 32, 16, 16, 16, 16, 8, 8))
    cars = _psp(n_styles=16, coarse=3, middle=7, gen=g512, input_size=128)
    got = convert_official(_official_psp(cars, opts={"dataset_type": "cars_encode"}))[1]
    assert got.encoder.input_height == 192 and got.encoder.input_size == 128
    for opts, name in (({}, "pSp"), ({"encoder_type": "Encoder4Editing"}, "e4e")):
        assert _refusal(convert_official, _official_psp(cars, opts=opts)).startswith(
            f"cannot tell the {name} checkpoint's input transform")


# ---- the Style Transformer ----

def _st(gen=None) -> StyleTransformerConfig:
    gen = gen or GeneratorConfig(size=32, style_dim=32, n_mlp=2, channels=(32, 32, 16, 16))
    enc = EncoderConfig(input_size=256, n_styles=2 * (gen.size.bit_length() - 2), d_model=gen.style_dim, ffn_dim=48,
                        **SMALL_ENCODER)
    return StyleTransformerConfig(encoder=enc, generator=gen)


def _official_st(cfg, latent_rows=0, **extra) -> dict:
    sd = _meta_state(StyleTransformer, cfg)
    la = sd.pop("decoder.latent_avg")
    return {"state_dict": sd, "latent_avg": la.expand(latent_rows, -1) if latent_rows else la, **extra}


def test_style_transformer_file_config_and_latent_avg():
    cfg = _st()
    assert infer_encoder_config(_sub(_meta_state(StyleTransformer, cfg), "encoder.")) == cfg.encoder
    for rows in (0, 8):  # stored as [w_dim] or repeated as [num_ws, w_dim]
        kind, got, state = convert_official(_official_st(cfg, rows))
        assert (kind, got) == ("style_transformer", cfg) and tuple(state["decoder.latent_avg"].shape) == (32,)
    ck = _official_st(cfg)
    del ck["latent_avg"]
    assert _refusal(convert_official, ck) == ("the Style Transformer checkpoint has no 'latent_avg' (the encoder's "
                                              "codes are offsets from it)")
    g512 = GeneratorConfig(size=512, style_dim=32, n_mlp=2, channels=(32, 32, 16, 16, 16, 16, 8, 8))
    assert _refusal(convert_official, _official_st(_st(g512))).startswith(
        "cannot tell the Style Transformer checkpoint's input transform")
    # the weights without their 'state_dict' wrapper are recognised, and the missing entry is named
    flat = _meta_state(StyleTransformer, cfg)
    assert _refusal(convert_official, flat) == "the style transformer checkpoint lacks the key 'state_dict'"


def test_style_transformer_encoder_refusals_are_named():
    enc = _sub(_meta_state(StyleTransformer, _st()), "encoder.")
    assert _refusal(infer_encoder_config, {k: v for k, v in enc.items() if k != "z"}) == (
        "not a Style Transformer encoder state dict: missing key z")
    enc["z"] = torch.zeros(1, 8, 24, device="meta")  # queries narrower than the last stage's 32 channels
    assert _refusal(infer_encoder_config, enc) == ("encoder weights do not describe a valid encoder: the last backbone "
                                                   "stage must have d_model channels (F1 is used as is)")


# ---- what an official file is ----

def test_unknown_dicts_are_refused_with_the_formats_named():
    message = ("not a Style Transformer inversion checkpoint ({'state_dict', 'latent_avg'}), a StyleGAN2 checkpoint "
               "({'g_ema', ...}), nor an official editing model (LCNet_40, edit encoder)")
    encoder_only = {k: v for k, v in _official_psp(_psp())["state_dict"].items() if k.startswith("encoder.")}
    decoder_only = {k: v for k, v in _official_psp(_psp())["state_dict"].items() if k.startswith("decoder.")}
    for ck in ({"state_dict": encoder_only}, {"state_dict": decoder_only}, {"state_dict": [1, 2]},
               {"state_dict": {"w": 1}}, [1, 2]):
        assert _refusal(detect_kind, ck) == message


# ---- the editing models ----

def test_lcnet_shapes_and_names_are_read_back():
    cfg = LatentClassifierConfig(attributes=("attr_0", "attr_1", "attr_2"), num_ws=2, w_dim=512, hidden=(24, 12),
                                 embed_dim=6)
    sd = {f"classifier.module.{k}": v for k, v in _meta_state(LatentClassifier, cfg).items()}
    kind, got, state = convert_official({"state_dict": sd})
    assert (kind, got) == ("latent_classifier", cfg) and set(state) == {k[len("classifier.module."):] for k in sd}
    forty = LatentClassifierConfig(num_ws=1, hidden=(8,), embed_dim=4)
    sd = {f"classifier.{k}": v for k, v in _meta_state(LatentClassifier, forty).items()}
    assert convert_official(sd)[1].attributes == CELEBA_ATTRIBUTES
    sd["classifier.fcs.0.weight"] = torch.zeros(8, 700, device="meta")
    assert _refusal(convert_official, sd) == "LCNet input width 700 is not a multiple of w_dim 512"


def test_reference_editor_shapes_are_read_back():
    cfg = ReferenceEditorConfig(d_model=32, n_heads=4, ffn_dim=48)
    sd = {f"encoder.module.{k}": v for k, v in _meta_state(ReferenceEditor, cfg).items()}
    kind, got, _ = convert_official({"state_dict": sd})
    assert (kind, got) == ("reference_editor", cfg)


# ---- pickled files ----

def _torch_error(path) -> str:
    """torch's own error for ``path`` (weights-only loading): its text, or its type when it has none."""
    import argparse

    with pytest.raises(Exception) as e:
        with torch.serialization.safe_globals([argparse.Namespace]):
            torch.load(path, map_location="cpu", weights_only=True)
    return str(e.value).strip() or type(e.value).__name__


def _torch_reason(path) -> str:
    """The first line of torch's own error for ``path``."""
    return _torch_error(path).splitlines()[0]


class _Code:
    def __reduce__(self):
        return (print, ("unpickled",))


def test_pickled_refusals_quote_torch_s_first_line(tmp_path):
    from style_transformer.checkpoints.official import torch_load_safe

    path = tmp_path / "code.pt"
    torch.save({"g_ema": {}, "x": _Code()}, path)
    error = _torch_error(path)
    reason = error.splitlines()[0]
    assert "\n" in error  # several lines: only the first is quoted
    assert _refusal(torch_load_safe, path) == (
        f"{path}: refused: the checkpoint needs code beyond tensors to unpickle, and only weights_only loading is "
        f"allowed ({reason[:200]})")
    zip_junk = tmp_path / "zip.pt"
    zip_junk.write_bytes(b"PK\x03\x04" + bytes(64))
    reason = _torch_reason(zip_junk)
    assert len(reason) > 200
    assert _refusal(load_model, zip_junk) == f"{zip_junk}: not a readable PyTorch checkpoint ({reason[:200]})"
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    assert _torch_reason(empty) == "EOFError"  # an error without a message is named by its type
    assert _refusal(load_model, empty) == f"{empty}: not a readable PyTorch checkpoint (EOFError)"


def test_rosinality_latent_avg_is_taken_from_the_file():
    cfg = GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 8, 8))
    sd = {k: torch.zeros(v.shape) for k, v in _meta_state(Generator, cfg).items() if k != "latent_avg"}
    la = torch.arange(16.0)
    for stored in (la, la.repeat(8, 1), la.half()):
        state = convert_official({"g_ema": sd, "latent_avg": stored})[2]
        assert state["latent_avg"].dtype == torch.float32 and torch.equal(state["latent_avg"], la)
    assert "latent_avg" not in convert_official({"g_ema": sd, "latent_avg": None})[2]


def test_state_dict_mismatch_lists_up_to_eight_keys_per_problem():
    from style_transformer.checkpoints.official import check_state_dict

    want = {f"k{i}": torch.zeros(2) for i in range(9)}
    assert _refusal(check_state_dict, want, {}, "F") == (
        "F does not match the model: missing keys: k0, k1, k2, k3, k4, k5, k6, k7, ... (9 in all)")
    del want["k8"]
    assert _refusal(check_state_dict, want, {}, "F") == (
        "F does not match the model: missing keys: k0, k1, k2, k3, k4, k5, k6, k7")
    got = dict(want, k0=torch.zeros(3), extra=torch.zeros(1))
    del got["k1"]
    assert _refusal(check_state_dict, want, got, "F") == (
        "F does not match the model: missing keys: k1; unexpected keys: extra; wrong shapes: k0 (model (2,), file (3,))")
    check_state_dict(want, dict(want), "F")  # a match says nothing


# ---- the one loader ----

def test_each_source_format_is_recognised_by_its_content(tmp_path, tiny_model, official_checkpoint):
    import shutil

    from style_transformer.checkpoints.io import read_checkpoint

    native = save_model(tiny_model, tmp_path / "weights.bin")  # by content, whatever the suffix
    assert read_checkpoint(native)[1:3] == ("style_transformer", tiny_model.cfg)
    assert read_checkpoint(native)[4] == "native"
    nvidia = tmp_path / "snapshot.pt"
    shutil.copy(NVIDIA / "sg3_t32.pkl", nvidia)
    assert read_checkpoint(nvidia)[1] == "generator" and read_checkpoint(nvidia)[4] == "nvidia"
    assert read_checkpoint(official_checkpoint)[1] == "style_transformer"
    assert read_checkpoint(official_checkpoint)[4] == "official"
    folder = tmp_path / "run"
    folder.mkdir()
    assert _refusal(read_checkpoint, folder) == f"{folder / 'model.safetensors'}: checkpoint file not found"
    save_model(tiny_model, folder / "model.safetensors")
    assert read_checkpoint(folder)[0] == folder / "model.safetensors"
    # an official dict that is none of the formats: the refusal names the file
    other = tmp_path / "other.pt"
    torch.save({"model": {"w": torch.zeros(1)}}, other)
    assert _refusal(read_checkpoint, other) == f"{other}: " + _refusal(detect_kind, {"model": {}})


def test_an_unreadable_file_is_named_with_the_system_s_reason(tmp_path, monkeypatch, tiny_model):
    import style_transformer.checkpoints.io as io

    path = save_model(tiny_model, tmp_path / "m.safetensors")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(io, "open", denied, raising=False)
    assert _refusal(io.read_checkpoint, path) == f"{path}: cannot read (Permission denied)"


def test_kinds_asked_for_and_refused(tmp_path, tiny_model, rosinality_checkpoint):
    with pytest.raises(ValueError) as e:
        load_model(rosinality_checkpoint, kind="encoder")
    assert str(e.value) == ("kind must be one of ['attribute_classifier', 'generator', 'latent_classifier', 'psp', "
                            "'reference_editor', 'style_transformer']")
    assert _refusal(load_model, rosinality_checkpoint, "latent_classifier") == (
        f"{rosinality_checkpoint}: this is a generator checkpoint, but a latent classifier checkpoint is needed here")
    path = save_model(tiny_model, tmp_path / "st.safetensors")
    assert _refusal(load_model, path, "psp") == (
        f"{path}: this is a style transformer checkpoint, but a psp checkpoint is needed here")
    # an encoder serves as its generator
    psp = PSPModel(_psp(input_size=32, coarse=2, middle=5)).eval()
    psp_path = save_model(psp, tmp_path / "psp.safetensors")
    g = load_model(psp_path, kind="generator")
    assert isinstance(g, Generator) and g.cfg == psp.cfg.generator and not g.training
    assert all(not p.requires_grad for p in g.parameters())
    assert isinstance(load_model(psp_path), PSPModel)


def test_non_finite_weights_are_named(tmp_path, tiny_model):
    from style_transformer.checkpoints.io import read_checkpoint

    state = tiny_model.state_dict()
    floats = [k for k, v in state.items() if v.is_floating_point()]
    for n, tail in ((1, ""), (5, ""), (6, " and 1 more tensor"), (7, " and 2 more tensors")):
        bad = StyleTransformer(tiny_model.cfg)
        bad.load_state_dict(state)
        with torch.no_grad():
            for k in floats[:n]:
                t = bad.state_dict()[k]
                t[(0,) * t.dim()] = float("nan") if n != 5 else float("-inf")
        path = save_model(bad, tmp_path / f"bad{n}.safetensors")
        order = [k for k in read_checkpoint(path)[3] if k in floats[:n]]
        assert _refusal(load_model, path) == f"{path}: non-finite values (NaN/Inf) in {', '.join(order[:5])}{tail}"


def test_generator_file_without_latent_avg_says_what_it_uses(tmp_path, caplog):
    from safetensors.torch import save_file

    cfg = GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 8, 8))
    g = Generator(cfg)
    state = {k: v.contiguous() for k, v in g.state_dict().items() if k != "latent_avg"}
    path = tmp_path / "g.safetensors"
    save_file(state, str(path), metadata={"format": FORMAT, "kind": "generator", "config": cfg.to_json()})
    with caplog.at_level("INFO", logger="style_transformer.checkpoints.io"):
        loaded = load_model(path)
    assert f"{path} has no latent_avg; using the mean of 4096 mapped z (seed 0)" in caplog.messages
    torch.testing.assert_close(loaded.latent_avg, loaded.mean_latent(4096, seed=0))
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())


def test_a_pkl_file_is_read_as_an_nvidia_snapshot_whatever_its_bytes(tmp_path):
    from style_transformer.checkpoints.unpickle import read_snapshot

    for data in (b"", b"PK\x03\x04" + bytes(16)):
        path = tmp_path / "network-snapshot.pkl"
        path.write_bytes(data)
        assert _refusal(load_model, path) == _refusal(read_snapshot, path)


@pytest.mark.parametrize("error,reason", [(lambda: __import__("pickle").UnpicklingError(""), "UnpicklingError"),
                                          (lambda: __import__("pickle").UnpicklingError("x" * 300), "x" * 200),
                                          (lambda: RuntimeError("  "), "RuntimeError"),
                                          (lambda: RuntimeError("first\nsecond"), "first")])
def test_torch_s_reason_is_its_first_line_cut_to_200_chars_or_the_error_s_type(tmp_path, monkeypatch, error, reason):
    import pickle

    from style_transformer.checkpoints.official import torch_load_safe

    def failing(*args, **kwargs):
        raise error()

    monkeypatch.setattr(torch, "load", failing)
    path = tmp_path / "x.pt"
    if isinstance(error(), pickle.UnpicklingError):
        assert _refusal(torch_load_safe, path) == (
            f"{path}: refused: the checkpoint needs code beyond tensors to unpickle, and only weights_only loading "
            f"is allowed ({reason})")
    else:
        assert _refusal(torch_load_safe, path) == f"{path}: not a readable PyTorch checkpoint ({reason})"
