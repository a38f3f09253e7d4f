"""NVIDIA snapshot pickles: read safely (no NVIDIA code imported, no embedded source run), converted
to this project's StyleGAN2, and checked against outputs of NVIDIA's own code (tests/data/nvidia)."""

import pickle
import sys
import types
from pathlib import Path

import pytest
import torch

from style_transformer import CheckpointError, Generator, GeneratorConfig, load_model
from style_transformer.checkpoints.unpickle import UnsafePickleError, read_snapshot

DATA = Path(__file__).parents[1] / "data" / "nvidia"
SG2 = ["sg2ada_uncond32", "sg2ada_cond32", "sg3repo_stylegan2_32"]
SG3 = ["sg3_t32", "sg3_r32"]
NVIDIA_MODULES = ("dnnlib", "torch_utils", "training", "legacy")


def _refs(name):
    return torch.load(DATA / f"{name}_refs.pt", weights_only=True)


@pytest.mark.parametrize("name", SG2)
def test_stylegan2_snapshot_matches_nvidia_outputs(name):
    g = load_model(DATA / f"{name}.pkl", kind="generator")
    refs = _refs(name)
    assert not [m for m in sys.modules if m.split(".")[0] in NVIDIA_MODULES]
    assert torch.equal(g.latent_avg, refs["w_avg"])
    c = refs["c"] if g.conditional else None
    with torch.no_grad():
        w = g.mapping(refs["z"], c)
        assert (w - refs["ws_psi1"][:, 0]).abs().max() < 1e-4
        w7 = g.latent_avg + 0.7 * (w - g.latent_avg)
        assert (w7 - refs["ws_psi0.7"][:, 0]).abs().max() < 1e-4
        for psi in ("1", "0.7"):
            ws = refs[f"ws_psi{psi}"]
            const = g.synthesis(ws)  # the stored noise: NVIDIA's noise_mode='const'
            none = g.synthesis(ws, noise=[torch.zeros_like(n) for n in g.stored_noise()])
            assert (const - refs[f"img_const_psi{psi}"]).abs().max() < 1e-4
            assert (none - refs[f"img_none_psi{psi}"]).abs().max() < 1e-4
            assert (const - none).abs().max() > 0.1  # the noise does matter
        # the whole z -> image path, as `generate` runs it
        img, _ = g([refs["z"]], c=c, truncation=0.7, randomize_noise=False)
        assert (img - refs["img_const_psi0.7"]).abs().max() < 1e-4


@pytest.mark.parametrize("name", SG2 + SG3)
def test_every_fixture_reads_bit_exactly(name):
    import hashlib
    import json

    snap = read_snapshot(DATA / f"{name}.pkl")
    sd = snap["G_ema"].state_dict()
    meta = json.loads((DATA / "manifest.json").read_text())[name]
    assert list(sd) == [k for k, _ in meta]
    for (k, digest) in meta:
        assert hashlib.sha256(sd[k].contiguous().numpy().tobytes()).hexdigest() == digest, k


def test_conditional_snapshot_samples_a_class(tmp_path):
    from style_transformer.cli import main

    path = DATA / "sg2ada_cond32.pkl"
    g = load_model(path)
    assert g.cfg.c_dim == 4 and g.cfg.label_combos == 0 and g.cfg.n_mlp == 8 and g.cfg.conv_clamp == 256
    refs = _refs("sg2ada_cond32")
    c = refs["c"][:1]
    cls = int(c.argmax())
    assert torch.equal(g.class_labels(1, cls), c)
    assert main(["generate", "--generator", str(path), "--n", "2", "--class", str(cls), "--out",
                 str(tmp_path / "s")]) == 0
    assert len(list((tmp_path / "s").glob("*.png"))) == 2
    assert main(["generate", "--generator", str(path), "--n", "2", "--class", "7", "--out",
                 str(tmp_path / "bad")]) == 2


def test_convert_writes_native_file_with_same_numbers(tmp_path):
    from style_transformer.cli import main

    src = DATA / "sg2ada_uncond32.pkl"
    assert main(["convert", str(src), str(tmp_path / "g.safetensors")]) == 0
    assert main(["convert", str(src), str(tmp_path / "g16.safetensors"), "--fp16"]) == 0
    a, b, h = load_model(src), load_model(tmp_path / "g.safetensors"), load_model(tmp_path / "g16.safetensors")
    assert b.cfg == a.cfg
    ws = _refs("sg2ada_uncond32")["ws_psi1"]
    with torch.no_grad():
        assert torch.equal(a.synthesis(ws), b.synthesis(ws))
        assert (a.synthesis(ws) - h.synthesis(ws)).abs().max() < 0.1
    assert (tmp_path / "g16.safetensors").stat().st_size < (tmp_path / "g.safetensors").stat().st_size * 0.6


def _dump_with_fake_modules(obj_factory, tmp_path, name="x.pkl", protocol=4):
    """Pickles what ``obj_factory(fake)`` builds while fake NVIDIA modules exist, then removes them."""
    fake = types.ModuleType("torch_utils.persistence")
    pkg = types.ModuleType("torch_utils")

    def _reconstruct_persistent_obj(meta):  # never called: the test only pickles
        raise AssertionError

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    fake._reconstruct_persistent_obj = _reconstruct_persistent_obj
    sys.modules["torch_utils"], sys.modules["torch_utils.persistence"] = pkg, fake
    try:
        path = tmp_path / name
        path.write_bytes(pickle.dumps(obj_factory(_reconstruct_persistent_obj), protocol=protocol))
    finally:
        del sys.modules["torch_utils"], sys.modules["torch_utils.persistence"]
    return path


class _Persistent:
    def __init__(self, fn, meta):
        self.fn, self.meta = fn, meta

    def __reduce__(self):
        return (self.fn, (self.meta,))


def _meta(src, **state):
    base = dict(_parameters={}, _buffers={}, _modules={}, training=False)
    return dict(type="class", version=6, module_src=src, class_name="Generator", state={**base, **state})


def test_embedded_source_is_never_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    src = "open('PWNED_BY_MODULE_SRC', 'w').write('x')\nclass Generator: pass\n"
    path = _dump_with_fake_modules(lambda fn: {"G_ema": _Persistent(fn, _meta(src)), "G": None}, tmp_path)
    snap = read_snapshot(path)
    assert snap["G_ema"].module_src == src  # kept as text
    assert not (tmp_path / "PWNED_BY_MODULE_SRC").exists()
    with pytest.raises(CheckpointError, match="synthesis"):
        load_model(path)
    assert not (tmp_path / "PWNED_BY_MODULE_SRC").exists()


class _System:
    def __reduce__(self):
        import os
        return (os.system, ("touch PWNED_BY_OS_SYSTEM",))


def test_os_system_is_refused_and_not_run(tmp_path, monkeypatch):
    from style_transformer.cli import main

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"G_ema": _System()}))
    with pytest.raises(UnsafePickleError, match="system"):
        read_snapshot(path)
    assert main(["convert", str(path), str(tmp_path / "out.safetensors")]) == 2
    assert not (tmp_path / "PWNED_BY_OS_SYSTEM").exists()
    assert not (tmp_path / "out.safetensors").exists()


def test_clear_errors_for_files_that_are_not_snapshots(tmp_path, capsys):
    from style_transformer.cli import main

    good = (DATA / "sg2ada_uncond32.pkl").read_bytes()
    cases = {}
    (tmp_path / "trunc.pkl").write_bytes(good[: len(good) // 2])
    cases["trunc.pkl"] = "truncated"
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"a": 1, "b": [1, 2]}))
    cases["plain.pkl"] = "not an NVIDIA network snapshot"
    # a TF-era snapshot: a tuple of dnnlib.tflib.network.Network objects (GLOBAL, NEWOBJ, BUILD)
    net = b"cdnnlib.tflib.network\nNetwork\n)\x81}(X\x04\x00\x00\x00nameX\x01\x00\x00\x00Gub"
    (tmp_path / "tf.pkl").write_bytes(b"\x80\x02" + net + net + net + b"\x87.")
    cases["tf.pkl"] = "TensorFlow"
    _dump_with_fake_modules(lambda fn: {"G": _Persistent(fn, _meta("")), "D": None}, tmp_path, "nog.pkl")
    cases["nog.pkl"] = "no G_ema"
    for name, words in cases.items():
        with pytest.raises(CheckpointError, match=words):
            load_model(tmp_path / name)
        out = tmp_path / f"{name}.safetensors"
        assert main(["convert", str(tmp_path / name), str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0] and "Traceback" not in err[0]
        assert not out.exists()


def test_protocol3_and_numpy1_spellings_load(tmp_path):
    """The conditional fixture is protocol 3; respelled for numpy < 2 it reads the same."""
    raw = (DATA / "sg2ada_cond32.pkl").read_bytes()
    assert raw[:2] == b"\x80\x03" and b"numpy._core.multiarray" in raw
    old = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    # protocol 3 stores the module name with a length prefix only in SHORT_BINUNICODE; GLOBAL is text
    (tmp_path / "old.pkl").write_bytes(old)
    a, b = read_snapshot(DATA / "sg2ada_cond32.pkl"), read_snapshot(tmp_path / "old.pkl")
    sa, sb = a["G_ema"].state_dict(), b["G_ema"].state_dict()
    assert list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a["G_ema"].child("mapping.fc0").get("weight_gain") == b["G_ema"].child("mapping.fc0").get("weight_gain")


def test_conv_clamp_bounds_every_layer_output_as_nvidia_does():
    cfg = GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 8, 8))
    torch.manual_seed(0)
    g = Generator(cfg).eval()
    for p in g.parameters():  # large activations
        p.data.mul_(4)
    clamped = Generator(GeneratorConfig(**{**cfg.to_dict(), "channels": cfg.channels, "conv_clamp": 2.0})).eval()
    clamped.load_state_dict(g.state_dict())
    loose = Generator(GeneratorConfig(**{**cfg.to_dict(), "channels": cfg.channels, "conv_clamp": 1e6})).eval()
    loose.load_state_dict(g.state_dict())
    seen = []
    for m in list(clamped.convs) + [clamped.conv1, clamped.to_rgb1]:
        m.register_forward_hook(lambda mod, i, o: seen.append(o.abs().max().item()))
    for m in clamped.to_rgbs:  # the layer's own output is clamped, then the upsampled skip is added
        m.register_forward_hook(lambda mod, i, o: seen.append((o - mod.upsample(i[2])).abs().max().item()))
    ws = torch.randn(2, g.num_ws, 16)
    with torch.no_grad():
        assert torch.equal(loose.synthesis(ws), g.synthesis(ws))
        out = clamped.synthesis(ws)
    assert max(seen) <= 2.0 + 1e-6 and len(seen) == 2 * 3 + 1 + 4 and max(seen) > 1.99
    # the skip sum is not clamped: the image may exceed the clamp
    assert out.abs().max() > 2.0
    assert not torch.allclose(out, g.synthesis(ws))


def test_z_wider_than_w():
    cfg = GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 8, 8), z_dim=24, c_dim=3)
    g = Generator(cfg).eval()
    assert g.style[1].weight.shape == (16, 24 + 16)
    w = g.sample_w(torch.randn(5, 24))
    assert w.shape == (5, 16)
    assert g.mean_latent(64).shape == (16,)
    with pytest.raises(ValueError, match="z must be"):
        g.mapping(torch.randn(2, 16))


def test_train_encoder_and_invert_with_a_snapshot_generator(tmp_path):
    """The encoder's tokens follow the generator's w (and z) width; the result inverts."""
    from style_transformer import StyleTransformer, save_model
    from style_transformer.cli import main
    from style_transformer.data.synthetic import write_dataset

    write_dataset(tmp_path / "faces", 16, size=32, seed=0)  # 5% (1 image) validates
    wide_z = Generator(GeneratorConfig(size=32, style_dim=16, n_mlp=2, channels=(16, 16, 8, 8), z_dim=24))
    save_model(wide_z, tmp_path / "wide_z.safetensors")
    for name, gen in (("nv", DATA / "sg2ada_cond32.pkl"), ("wz", tmp_path / "wide_z.safetensors")):
        run = tmp_path / name
        assert main(["train-encoder", "--generator", str(gen), "--data", str(tmp_path / "faces"), "--out", str(run),
                     "--preset", "tiny", "--steps", "2", "--batch-size", "2", "--val-every", "2",
                     "--val-images", "2"]) == 0
        model = load_model(run / "best.safetensors")
        assert isinstance(model, StyleTransformer)
        g = load_model(gen)
        assert model.cfg.encoder.d_model == g.style_dim and model.cfg.encoder.n_styles == g.num_ws
        assert model.encoder.z.shape[-1] == g.z_dim
        assert main(["invert", "--checkpoint", str(run / "best.safetensors"), "--out", str(tmp_path / f"inv_{name}"),
                     str(tmp_path / "faces" / "000000.png")]) == 0
        assert (tmp_path / f"inv_{name}" / "latents.npz").exists()
        # the Python API: a pipeline that renders with the snapshot given as the generator
        from style_transformer import load_pipeline

        pipe = load_pipeline(checkpoint=run / "best.safetensors", generator=gen, device="cpu")
        res = pipe.invert([tmp_path / "faces" / "000001.png"])
        assert res.ws.shape == (1, g.num_ws, g.style_dim) and res.images.shape == (1, 3, 32, 32)
    # InterFaceGAN directions from the snapshot's own samples, judged by the image classifier
    assert main(["directions", "fit", "--samples", "40", "--generator", str(DATA / "sg2ada_uncond32.pkl"),
                 "--out", str(tmp_path / "dirs")]) == 0
    assert (tmp_path / "dirs" / "directions.json").exists()


def test_inspect_tells_files_apart(tmp_path, capsys):
    import json

    from style_transformer import save_model
    from style_transformer.cli import main

    g = Generator(GeneratorConfig(size=32, style_dim=16, n_mlp=3, channels=(16, 16, 8, 8), z_dim=24))
    save_model(g, tmp_path / "native.safetensors")
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    files = [DATA / "sg2ada_cond32.pkl", DATA / "sg3repo_stylegan2_32.pkl", tmp_path / "native.safetensors"]
    assert main(["inspect", "--json", *map(str, files)]) == 0
    infos = json.loads(capsys.readouterr().out)
    cond, sg3repo, native = infos
    assert cond["source"] == "nvidia" and cond["kind"] == "generator" and cond["architecture"] == "StyleGAN2"
    assert (cond["resolution"], cond["num_ws"], cond["w_dim"], cond["z_dim"], cond["c_dim"],
            cond["mapping_layers"]) == (32, 8, 64, 64, 4, 8)
    assert cond["channels"] == {"4": 64, "8": 64, "16": 64, "32": 32} and cond["latent_avg"] is True
    # every learned tensor of NVIDIA's G_ema (its w_avg, filters and stored noise are buffers)
    nv = read_snapshot(DATA / "sg2ada_cond32.pkl")["G_ema"]
    learned = sum(v.numel() for k, v in nv.state_dict().items()
                  if not k.endswith(("w_avg", "resample_filter", "noise_const")))
    assert cond["parameters"] == learned
    assert sg3repo["mapping_layers"] == 8 and sg3repo["c_dim"] == 0
    assert native["source"] == "native" and native["z_dim"] == 24 and native["mapping_layers"] == 3
    assert native["parameters"] == sum(p.numel() for p in g.parameters())
    assert main(["inspect", str(DATA / "sg2ada_uncond32.pkl")]) == 0
    text = capsys.readouterr().out
    assert "NVIDIA network snapshot" in text and "StyleGAN2, 32 px, 8 ws" in text and "conv_clamp    256" in text
    assert main(["inspect", str(tmp_path / "notes.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "notes.txt" in err[0]


@pytest.mark.parametrize("name, arch", [("sg3_t32", "stylegan3-t"), ("sg3_r32", "stylegan3-r")])
def test_stylegan3_snapshots_load_as_stylegan3(name, arch):
    g = load_model(DATA / f"{name}.pkl", kind="generator")
    assert g.cfg.architecture == arch
    snap = read_snapshot(DATA / f"{name}.pkl")
    assert torch.equal(g.latent_avg, snap["G_ema"].state_dict()["mapping.w_avg"])


def test_malformed_generator_records_are_one_line_naming_the_file(tmp_path, monkeypatch):
    from style_transformer.checkpoints import io as ckio
    from style_transformer.config import ConfigError

    def snapshot_with(synthesis_modules):
        return _dump_with_fake_modules(lambda fn: {"G_ema": _Persistent(fn, _meta("", _modules={
            "synthesis": _Persistent(fn, _meta("", _modules=synthesis_modules))}))}, tmp_path)

    def refused(path, message):
        with pytest.raises(CheckpointError) as e:
            ckio.read_nvidia_generator(path)
        assert str(e.value) == f"{path}: {message}"

    path = _dump_with_fake_modules(lambda fn: {"G_ema": _Persistent(fn, _meta(""))}, tmp_path)
    refused(path, "the generator has no synthesis network")
    path = snapshot_with({"b4": None})

    def raising(error):
        def convert(g):
            raise error
        return convert

    for error, message in ((KeyError("mapping.w_avg"), "the StyleGAN2 generator lacks 'mapping.w_avg'"),
                           (ConfigError("size 33"), "unsupported generator configuration (size 33)"),
                           (TypeError("bad record\nmore"), "a malformed G_ema in the snapshot (bad record)"),
                           (IndexError(), "a malformed G_ema in the snapshot (IndexError)"),
                           (ValueError("v" * 300), f"a malformed G_ema in the snapshot ({'v' * 150})")):
        monkeypatch.setattr(ckio, "convert_stylegan2", raising(error))
        refused(path, message)


def test_a_snapshot_without_g_ema_is_told_apart_from_a_foreign_pickle(tmp_path):
    path = _dump_with_fake_modules(lambda fn: {"D": _Persistent(fn, _meta(""))}, tmp_path)
    with pytest.raises(CheckpointError) as e:
        read_snapshot(path)
    assert str(e.value) == f"{path}: the snapshot has no G_ema (the generator every command uses)"
