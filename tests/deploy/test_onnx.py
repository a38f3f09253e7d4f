"""ONNX export and the graph runtimes: the exported encoder, synthesis and mapping graphs give what
the PyTorch modules give (W+ within 1e-4, images within 1e-3) on ONNX Runtime and OpenVINO, for the
shipped model and for checkpoints in the official formats; the folder, the manifest, the refusals."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from style_transformer import load_model, load_pipeline
from style_transformer.cli import main
from style_transformer.config import EncoderConfig, GeneratorConfig, PSPConfig
from style_transformer.deploy import ExportedModel, export_model, export_onnx, read_manifest
from style_transformer.errors import UsageError
from style_transformer.models import PSPModel
from style_transformer.pretrained import default_path

RUNTIMES = ("onnxruntime", "openvino")
W_TOL, IMG_TOL = 1e-4, 1e-3


def _check_graphs(folder, model, generator, runtime, batches=(1, 3)):
    """Every graph of ``folder`` against the torch modules, at several batch sizes (the dynamic axis)."""
    graphs = ExportedModel(folder, runtime)
    gen = torch.Generator().manual_seed(0)
    for n in batches:
        with torch.no_grad():
            if model is not None:
                h, w = model.cfg.encoder.input_shape
                x = torch.rand(n, 3, h, w, generator=gen) * 2 - 1
                ref = model.encode(x)
                got = graphs.encode(x)
                assert got.shape == ref.shape and (got - ref).abs().max() < W_TOL
            z = torch.randn(n, generator.z_dim, generator=gen)
            c = generator.sample_labels(n, gen) if generator.conditional else None
            w_ref = generator.mapping(z, c)
            assert (graphs.map(z, c) - w_ref).abs().max() < W_TOL
            ws = w_ref[:, None].expand(-1, generator.num_ws, -1).contiguous()
            img = generator.synthesis(ws, randomize_noise=False)
            got = graphs.synthesize(ws)
            assert got.shape == img.shape and (got - img).abs().max() < IMG_TOL


@pytest.fixture(scope="module")
def shipped_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "shipped"
    assert main(["export", str(default_path("style_transformer")), str(out), "--format", "onnx"]) == 0
    return out


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_shipped_model_graphs_match_torch(shipped_export, runtime):
    model = load_model(default_path("style_transformer")).eval()
    _check_graphs(shipped_export, model, model.decoder, runtime)


def test_manifest_and_inspect(shipped_export, capsys):
    m = read_manifest(shipped_export)
    assert set(m["graphs"]) == {"encoder", "synthesis", "mapping"}
    assert m["encoder"]["input_size"] == [64, 64] and m["encoder"]["n_styles"] == 10
    assert m["generator"]["num_ws"] == 10 and m["generator"]["w_dim"] == 256
    import hashlib

    assert m["source_sha256"] == hashlib.sha256(default_path("style_transformer").read_bytes()).hexdigest()
    model = load_model(default_path("style_transformer"))
    np.testing.assert_array_equal(np.load(shipped_export / "latent_avg.npy"), model.decoder.latent_avg.numpy())
    capsys.readouterr()
    assert main(["inspect", str(shipped_export)]) == 0
    out = capsys.readouterr().out
    assert "exported ONNX graphs" in out and "encoder.onnx" in out and "['batch', 3, 64, 64]" in out
    assert main(["inspect", "--json", str(shipped_export)]) == 0
    info = json.loads(capsys.readouterr().out)[0]
    assert info["graphs"]["synthesis"]["inputs"] == {"wplus": ["batch", 10, 256]}


def test_the_graphs_run_with_the_runtime_alone(shipped_export):
    """What a deployment does: onnxruntime and the manifest, no style_transformer code."""
    import onnxruntime as ort

    m = json.loads((shipped_export / "manifest.json").read_text())
    enc = ort.InferenceSession(str(shipped_export / m["graphs"]["encoder"]), providers=["CPUExecutionProvider"])
    syn = ort.InferenceSession(str(shipped_export / m["graphs"]["synthesis"]), providers=["CPUExecutionProvider"])
    from style_transformer.data.synthetic import render_dataset_batch

    faces = render_dataset_batch(4000, range(4), 64).images  # uint8 NHWC
    x = (faces.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)  # the manifest's from_uint8
    ws = enc.run(None, {"image": x})[0]
    img = syn.run(None, {"wplus": ws})[0]
    pipe = load_pipeline(device="cpu")
    ref = pipe.invert(list(faces))
    assert np.abs(ws - ref.ws.numpy()).max() < W_TOL and np.abs(img - ref.images.numpy()).max() < IMG_TOL


@pytest.mark.openvino
@pytest.mark.slow  # heavy: full-size network(s)
def test_official_style_transformer_and_rosinality_generator(official_checkpoint, rosinality_checkpoint, tmp_path):
    out = tmp_path / "official"
    export_onnx(official_checkpoint, out)
    model = load_model(official_checkpoint).eval()
    _check_graphs(out, model, model.decoder, "onnxruntime", batches=(2,))
    out = tmp_path / "rosinality"
    export_onnx(rosinality_checkpoint, out)
    assert "encoder" not in read_manifest(out)["graphs"]
    _check_graphs(out, None, load_model(rosinality_checkpoint, kind="generator").eval(), "openvino", batches=(1, 2))


@pytest.mark.slow  # heavy: full-size network(s)
@pytest.mark.parametrize("arch,encoder_type", [("psp", "GradualStyleEncoder"), ("e4e", "Encoder4Editing")])
def test_official_psp_and_e4e_files(tmp_path, arch, encoder_type):
    cfg = PSPConfig(encoder=EncoderConfig(input_size=32, stem_channels=8, stage_channels=(8, 16, 24, 32),
                                          stage_units=(1, 1, 1, 1), se_reduction=4, n_styles=8, d_model=32),
                    generator=GeneratorConfig(size=32, style_dim=32, n_mlp=2, channels=(32, 32, 16, 16)),
                    coarse_ind=2, middle_ind=5, arch=arch)
    torch.manual_seed(0)
    model = PSPModel(cfg).eval()
    with torch.no_grad():
        model.decoder.latent_avg.normal_()
    sd = {k: v for k, v in model.state_dict().items() if k != "decoder.latent_avg"}
    path = tmp_path / "official.pt"
    torch.save({"state_dict": {k.replace("encoder.", "encoder.module.", 1): v for k, v in sd.items()},
                "latent_avg": model.decoder.latent_avg.repeat(8, 1), "opts": {"encoder_type": encoder_type}}, path)
    export_onnx(path, tmp_path / "out")
    loaded = load_model(path).eval()
    _check_graphs(tmp_path / "out", loaded, loaded.decoder, "onnxruntime", batches=(1, 2))


@pytest.mark.parametrize("name", ["sg2ada_uncond32", "sg2ada_cond32", "sg3repo_stylegan2_32"])
def test_nvidia_snapshots(tmp_path, name):
    from pathlib import Path

    pkl = Path(__file__).parents[1] / "data" / "nvidia" / f"{name}.pkl"
    export_onnx(pkl, tmp_path / "out")
    g = load_model(pkl, kind="generator").eval()
    graphs = read_manifest(tmp_path / "out")["graphs"]
    assert set(graphs) == {"synthesis", "mapping"}
    _check_graphs(tmp_path / "out", None, g, "onnxruntime", batches=(1, 3))


def test_stylegan3_is_refused_in_one_line(tmp_path, capsys):
    from pathlib import Path

    pkl = Path(__file__).parents[1] / "data" / "nvidia" / "sg3_t32.pkl"
    assert main(["export", str(pkl), str(tmp_path / "out"), "--format", "onnx"]) == 2
    err = capsys.readouterr().err
    assert "StyleGAN3" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def test_an_unrelated_folder_is_not_overwritten(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    assert main(["export", str(tiny_checkpoint), str(out)]) == 2
    assert "not an exported folder" in capsys.readouterr().err and (out / "notes.txt").read_text() == "keep"
    # an earlier export is replaced whole
    fresh = tmp_path / "fresh"
    assert main(["export", str(tiny_checkpoint), str(fresh)]) == 0
    (fresh / "stale.onnx").write_text("x")
    assert main(["export", str(tiny_checkpoint), str(fresh)]) == 0
    assert not (fresh / "stale.onnx").exists() and read_manifest(fresh)


def test_damaged_exports_are_one_line_errors(tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "e"
    export_onnx(tiny_checkpoint, out)
    (out / "encoder.onnx").unlink()
    assert main(["inspect", str(out)]) == 2
    assert "encoder graph" in capsys.readouterr().err
    assert main(["inspect", str(tmp_path)]) == 2
    assert "not an exported folder" in capsys.readouterr().err


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_cli_runtime_invert_generate_edit_match_torch(tmp_path, runtime, monkeypatch, tiny_editing, tiny_checkpoint):
    monkeypatch.setenv("STYLE_TRANSFORMER_CACHE", str(tmp_path / "cache"))
    faces = tiny_editing / "faces"
    for rt in ("torch", runtime):
        assert main(["invert", str(faces), "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / rt),
                     "--runtime", rt]) == 0
        assert main(["edit", str(faces / "000000.png"), "--checkpoint", str(tiny_checkpoint), "--editing",
                     str(tiny_editing / "editing"), "--attribute", "Smiling", "--strength", "2", "--out",
                     str(tmp_path / f"edit_{rt}"), "--runtime", rt]) == 0
        assert main(["generate", "--generator", str(tiny_checkpoint), "--n", "3", "--out", str(tmp_path / f"gen_{rt}"),
                     "--runtime", rt]) == 0
    a, b = np.load(tmp_path / "torch" / "latents.npz"), np.load(tmp_path / runtime / "latents.npz")
    assert sorted(a.files) == sorted(b.files) and all(np.abs(a[k] - b[k]).max() < W_TOL for k in a.files)
    from PIL import Image

    for folder in ("", "edit_", "gen_"):
        for png in sorted((tmp_path / f"{folder}torch").glob("*.png")):
            x = np.asarray(Image.open(png), dtype=int)
            y = np.asarray(Image.open(tmp_path / f"{folder}{runtime}" / png.name), dtype=int)
            assert np.abs(x - y).max() <= 1, png  # 8-bit files: 1e-3 in [-1, 1] is under one level
    # one export for invert and edit (the same encoder file), one for generate (its generator), reused
    assert len(list((tmp_path / "cache" / "onnx").iterdir())) == 2


def test_runtime_refusals(tmp_path, capsys, monkeypatch, tiny_checkpoint, image_dir):
    assert main(["invert", str(image_dir), "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "o"),
                 "--runtime", "onnxruntime", "--noise", "random"]) == 2
    assert "--noise random needs --runtime torch" in capsys.readouterr().err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    assert main(["invert", str(image_dir), "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "o"),
                 "--runtime", "openvino"]) == 2
    err = capsys.readouterr().err.strip()
    assert "pip install 'style-transformer[deploy]'" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="stored noise"):
        pipe = load_pipeline(checkpoint=tiny_checkpoint, device="cpu", runtime="onnxruntime")
        pipe.generate(torch.zeros(1, pipe.generator.num_ws, pipe.generator.style_dim), randomize_noise=True)


@pytest.mark.openvino
@pytest.mark.slow  # heavy: NNCF and ONNX Runtime quantise a graph
def test_int8_encoder_export_and_runtime(tmp_path, tiny_checkpoint, tiny_editing, capsys):
    """``--int8`` writes one int8 encoder per runtime (ONNX Runtime's QDQ graph, OpenVINO IR by NNCF),
    each giving the fp32 codes up to quantisation error."""
    out = tmp_path / "q"
    assert main(["export", str(tiny_checkpoint), str(out), "--int8", "--calibration", str(tiny_editing / "faces"),
                 "--calibration-n", "32"]) == 0
    m = read_manifest(out)
    assert m["graphs"]["encoder_int8"] == "encoder.int8.onnx" and m["int8"]["calibration_images"] == 32
    assert m["graphs"]["encoder_int8_openvino"] == "encoder.int8.xml" and (out / "encoder.int8.bin").is_file()
    assert sorted(m["int8"]["methods"]) == ["encoder_int8", "encoder_int8_openvino"]
    assert not [p for p in out.iterdir() if p.is_dir()]  # no temporary folder left behind
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    fp32 = ExportedModel(out, "onnxruntime").encode(x)
    for runtime in RUNTIMES:
        int8 = ExportedModel(out, runtime, precision="int8").encode(x)
        assert int8.shape == fp32.shape
        # quantised, so not equal, but the same codes up to quantisation error
        rel = ((int8 - fp32).norm() / (fp32 - fp32.mean((0, 1))).norm()).item()
        assert 0 < rel < 0.2, (runtime, rel)
    with pytest.raises(Exception, match="no int8 encoder"):
        export_onnx(tiny_checkpoint, tmp_path / "plain")
        ExportedModel(tmp_path / "plain", "onnxruntime", precision="int8")


def test_int8_without_nncf_writes_the_onnxruntime_encoder_only(tmp_path, tiny_checkpoint, tiny_editing, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nncf" else real(name, *a))
    export_onnx(tiny_checkpoint, tmp_path / "q", int8_calibration=[tiny_editing / "faces"], calibration_n=32)
    m = read_manifest(tmp_path / "q")
    assert "encoder_int8" in m["graphs"] and "encoder_int8_openvino" not in m["graphs"]
    with pytest.raises(UsageError, match="no int8 encoder for openvino.*nncf"):
        ExportedModel(tmp_path / "q", "openvino", precision="int8")
    from style_transformer.deploy.quantize import quantize_encoder

    with pytest.raises(UsageError, match="int8 for openvino needs nncf"):
        quantize_encoder(tmp_path / "q", np.zeros((2, 3, 32, 32), np.float32), runtimes=["openvino"])


@pytest.mark.parametrize("argv, message", [
    (["export", "{ckpt}", "{tmp}/a", "--int8"], "--int8 needs --calibration"),
    (["export", "{ckpt}", "{tmp}/a", "--calibration", "{tmp}"], "--calibration is for --int8"),
    (["export", "{ckpt}", "{tmp}/a", "--int8", "--calibration", "{tmp}"], "no image files found"),
    (["invert", "{tmp}", "--checkpoint", "{ckpt}", "--out", "{tmp}/a", "--precision", "int8"], "add --runtime"),
    (["invert", "{tmp}", "--checkpoint", "{ckpt}", "--out", "{tmp}/a", "--precision", "int8", "--runtime",
      "onnxruntime"], "calibrates on images of the model's domain"),
    (["generate", "--n", "1", "--out", "{tmp}/a", "--precision", "int8", "--runtime", "onnxruntime"], "no encoder"),
])
def test_int8_refusals(tmp_path, tiny_checkpoint, capsys, monkeypatch, argv, message):
    monkeypatch.setenv("STYLE_TRANSFORMER_CACHE", str(tmp_path / "cache"))
    argv = [a.format(ckpt=tiny_checkpoint, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "a").exists()


@pytest.mark.slow  # heavy: full-size network(s)
def test_official_cars_model_through_the_runtime(tmp_path, monkeypatch):
    """The official cars checkpoint (192x256 input, 512 px output) run as graphs gives the official
    implementation's codes and images, as the torch pipeline does."""
    import parity_rule
    from pathlib import Path

    monkeypatch.setenv("STYLE_TRANSFORMER_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "cars.pt"
    torch.save(parity_rule.official_cars_checkpoint(1), path)
    ref = torch.load(Path(__file__).parents[1] / "data" / "parity" / "public_styletransformer_cars.pt",
                     weights_only=True)
    pipe = load_pipeline(checkpoint=path, device="cpu", runtime="onnxruntime")
    torch_pipe = load_pipeline(checkpoint=path, device="cpu")
    assert pipe.input_shape == (192, 256)
    x = torch.rand(2, 3, 192, 256, generator=torch.Generator().manual_seed(3)) * 2 - 1
    got, want = pipe.invert(list(x)), torch_pipe.invert(list(x))
    assert (got.ws - want.ws).abs().max() < W_TOL and (got.images - want.images).abs().max() < IMG_TOL
    assert got.images.shape == (2, 3, 512, 512)
    res = pipe.invert(ref["inputs"]["x"])  # the official implementation's outputs (tests/test_parity.py's bound)
    torch.testing.assert_close(res.ws, ref["outputs"]["codes"], rtol=0, atol=1e-3)
    torch.testing.assert_close(parity_rule.kept_rows(res.images, ref), ref["outputs"]["images"], rtol=0, atol=1e-3)
