"""Hostile input to every loader: the short seeded fuzz run (``make fuzz`` runs the long one), the
minimal inputs of what it found, and structured cases (shapes, dtypes, NaN/inf, empty and huge
arrays) drawn by hypothesis."""

import json
import resource
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))

from fuzz_loaders import run_fuzz  # noqa: E402

from style_transformer.checkpoints import CheckpointError, load_model, save_model  # noqa: E402
from style_transformer.data.datasets import LabelError, load_labels  # noqa: E402
from style_transformer.errors import InputError, StyleTransformerError  # noqa: E402
from style_transformer.workflow import load_latents  # noqa: E402

pytestmark = pytest.mark.slow  # fuzzing the loaders: `make test` runs it, `make test-fast` does not


def test_short_fuzz_run_finds_nothing(tmp_path):
    report = run_fuzz(2700, seed=1, tmp=tmp_path)
    assert report.total == 2700 and all(sum(c.values()) >= 300 for c in report.counts.values())
    assert report.findings == [], "\n".join(f"{f.target}: {f.error}: {f.message}" for f in report.findings[:10])
    assert all(c["refused"] > 0 and c["loaded"] > 0 for c in report.counts.values())  # both outcomes exercised


# -- what the harness found, as minimal inputs ---------------------------------------------------------
def test_label_file_that_is_not_utf8(tmp_path):
    p = tmp_path / "attributes.csv"
    p.write_bytes(b"file,Smiling\n\xff.png,1\n")
    with pytest.raises(LabelError, match="not UTF-8"):
        load_labels(p)


def test_celeba_list_with_one_line(tmp_path):
    p = tmp_path / "list_attr_celeba.txt"
    p.write_bytes(b"3\n")
    with pytest.raises(LabelError, match="count line and a line of names"):
        load_labels(p)


def test_pt_whose_zip_header_lengths_are_edited(tmp_path):
    """The official-format seed with its first zip entry's name and extra-field lengths set to 0xFFFF:
    torch.load ends in an IndexError ("pop from empty list") inside its weights-only unpickler."""
    from fuzz_loaders import _model_files

    _, pts = _model_files(tmp_path)
    bad = bytearray(pts[1])
    bad[26:30] = b"\xff\xff\xff\xff"
    p = tmp_path / "bad.pt"
    p.write_bytes(bytes(bad))
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_model(p)


def test_directions_index_that_is_not_utf8_or_points_outside(tmp_path):
    from style_transformer.editing import Direction, DirectionError, load_directions, save_directions

    save_directions([Direction("Smiling", torch.ones(1, 4) / 2, "interfacegan")], tmp_path / "d")
    index = tmp_path / "d" / "directions.json"
    text = index.read_text()
    index.write_bytes(text.encode().replace(b"Smiling.npy", b"Smiling\xa0.npy"))
    with pytest.raises(DirectionError, match="invalid JSON"):
        load_directions(tmp_path / "d")
    index.write_text(text.replace("Smiling.npy", "../../outside.npy"))
    with pytest.raises(DirectionError, match="a name inside the folder"):
        load_directions(tmp_path / "d")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("body,words", [
    (b"N" + b"r" + (2 ** 31 - 1).to_bytes(4, "little") + b".", "memo index"),  # LONG_BINPUT 2^31: a 16 GB memo
    (b"\x95" + (2 ** 62).to_bytes(8, "little") + b"N.", "truncated"),  # FRAME of 2^62 bytes
    (b"\x8e" + (2 ** 40).to_bytes(8, "little") + b"abc", "truncated"),  # BINBYTES8 of 2^40 bytes
])
def test_pickle_declaring_huge_sizes_is_refused_before_allocating(tmp_path, body, words):
    p = tmp_path / "snap.pkl"
    p.write_bytes(b"\x80\x04" + body)
    before = _peak_rss_mb()
    with pytest.raises(CheckpointError, match=words):
        load_model(p)
    assert _peak_rss_mb() - before < 200


def test_safetensors_whose_config_declares_a_huge_model(tmp_path):
    """The metadata's config says 2^20 channels; the tensors are tiny: refused by shape, before a model
    of that size is built."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from style_transformer import Generator, GeneratorConfig

    g = Generator(GeneratorConfig(size=32, style_dim=8, n_mlp=1, channels=(8, 8, 8, 8)))
    path = save_model(g, tmp_path / "g.safetensors")
    with safe_open(str(path), "pt") as f:
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    cfg = json.loads(meta["config"])
    cfg["channels"] = [2 ** 20] * 4
    meta["config"] = json.dumps(cfg)
    save_file(state, tmp_path / "huge.safetensors", metadata=meta)
    before = _peak_rss_mb()
    with pytest.raises(CheckpointError, match="does not match the model"):
        load_model(tmp_path / "huge.safetensors")
    assert _peak_rss_mb() - before < 200


def test_decompression_bomb_image_is_refused(tmp_path):
    from PIL import Image

    from style_transformer.data.images import ImageLoadError, load_image

    p = tmp_path / "bomb.png"
    Image.new("1", (20000, 20000)).save(p)  # 50 kB on disk, 400 M pixels (1.2 GB as RGB)
    before = _peak_rss_mb()
    with pytest.raises(ImageLoadError, match="bomb|exceeds|pixels"):
        load_image(p)
    assert _peak_rss_mb() - before < 200


# -- structured cases -----------------------------------------------------------------------------------
_DTYPES = ["float32", "float16", "float64", "int8", "uint8", "bool", "complex64", "U3", "V2"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shapes=st.lists(st.lists(st.integers(0, 6), min_size=0, max_size=4), min_size=0, max_size=3),
       dtype=st.sampled_from(_DTYPES), special=st.sampled_from([None, np.nan, np.inf, -np.inf]))
def test_latents_npz_of_any_shape_and_dtype_loads_or_is_refused(tmp_path, shapes, dtype, special):
    arrays = {}
    for k, shape in enumerate(shapes):
        a = np.zeros(shape, dtype=dtype)
        if special is not None and a.size and a.dtype.kind == "f":
            a.flat[0] = special
        arrays[f"k{k}"] = a
    path = tmp_path / "latents.npz"
    np.savez(path, **arrays)
    try:
        out = load_latents(path)
    except InputError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return
    assert set(out) == set(arrays) and all(v.dtype.kind in "fiub" for v in out.values())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(shape=st.lists(st.integers(0, 5), min_size=0, max_size=4), value=st.sampled_from([0.0, np.nan, np.inf]),
       key=st.sampled_from(["mapping.0.weight", "latent_avg", "conv1.conv.weight", "nonsense"]))
def test_generator_tensors_of_any_shape_or_value_load_or_are_refused(tmp_path, shape, value, key):
    from style_transformer import Generator, GeneratorConfig

    g = Generator(GeneratorConfig(size=32, style_dim=8, n_mlp=1, channels=(8, 8, 8, 8)))
    path = save_model(g, tmp_path / "g.safetensors")
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as f:
        meta, state = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    state[key] = torch.full(shape, value)
    save_file(state, tmp_path / "edited.safetensors", metadata=meta)
    try:
        load_model(tmp_path / "edited.safetensors")
    except StyleTransformerError as e:
        assert "\n" not in str(e)
        return
    assert value == 0.0 and (key == "nonsense") is False


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("ab,.-01 9e\n\tx")), max_size=120))
def test_label_text_of_any_shape_loads_or_is_refused(tmp_path, text):
    for name in ("attributes.csv", "list_attr_celeba.txt"):
        p = tmp_path / name
        p.write_text(text)
        try:
            names, table = load_labels(p)
        except LabelError as e:
            assert "\n" not in str(e)
            continue
        assert all(len(v) == len(names) for v in table.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(settings_json=st.recursive(st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers()
                                  | st.text(max_size=5),
                                  lambda c: st.lists(c, max_size=3) | st.dictionaries(
                                      st.sampled_from(["strengths", "layers", "classifier_keep",
                                                       "reference_remove", "classifier_metric", "interfacegan",
                                                       "Smiling", "x"]), c, max_size=4), max_leaves=12))
def test_editing_json_of_any_structure_loads_or_is_refused(tmp_path, settings_json):
    from style_transformer.editing import Direction, DirectionError
    from style_transformer.editing.toolkit import EditingModels

    folder = tmp_path / "ed"
    if not folder.exists():
        EditingModels(directions={"Smiling": Direction("Smiling", torch.ones(1, 4) / 2, "interfacegan")}).save(folder)
    (folder / "editing.json").write_text(json.dumps(settings_json))
    try:
        models = EditingModels.load(folder)
    except DirectionError as e:
        assert "\n" not in str(e)
        return
    for per in models.settings.values():  # what loads is usable: numbers where numbers belong
        for s in per.values():
            assert s.strength is None or np.isfinite(s.strength)


def test_snapshot_whose_records_hold_the_wrong_types(tmp_path, monkeypatch):
    """What a mutated snapshot once gave: a parameter keyed by a tensor instead of a name (a TypeError
    while converting)."""
    from style_transformer.checkpoints import io as ckio
    from style_transformer.checkpoints.unpickle import PersistentObject

    g = PersistentObject(class_name="Generator", version=0, module_src="", parameters={torch.zeros(1): torch.zeros(1)},
                         init_kwargs={"z_dim": 8, "w_dim": 8, "img_resolution": 32, "img_channels": 3})
    monkeypatch.setattr(ckio, "read_snapshot", lambda path: {"G_ema": g})
    monkeypatch.setattr(ckio, "architecture", lambda g: "stylegan2")
    (tmp_path / "snap.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(CheckpointError, match="malformed G_ema|lacks|unsupported"):
        load_model(tmp_path / "snap.pkl")
