"""ONNX export: the encoder, the synthesis network and the mapping network as separate graphs.

An exported folder holds

- ``encoder.onnx`` (inversion models only): ``image`` ``[N, 3, H, W]`` in [-1, 1] (RGB, NCHW, the
  model's input size) -> ``wplus`` ``[N, n_styles, w_dim]``, ``latent_avg`` included;
- ``synthesis.onnx``: ``wplus`` ``[N, num_ws, w_dim]`` -> ``image`` ``[N, 3, S, S]`` in [-1, 1], with the
  generator's stored noise (the deterministic rendering every command uses by default);
- ``mapping.onnx``: ``z`` ``[N, z_dim]`` (and ``c`` ``[N, c_dim]`` for a conditional generator) -> ``w``
  ``[N, w_dim]``;
- ``manifest.json``: what a runtime needs to feed them (sizes, preprocessing) and the source file's
  SHA-256; ``latent_avg.npy`` (the W mean, for truncation).

Every graph has a dynamic batch axis. Resizing and alignment stay outside the graphs. The folder is
written next to its destination and renamed into place, so it is either whole or absent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Optional

import torch
from torch import nn

from ..errors import InputError, OutputError, StyleTransformerError
from ..utils import PathLike, _umask

MANIFEST = "manifest.json"
FORMAT = "style_transformer-onnx"
FORMAT_VERSION = 1
OPSET = 17


class ExportError(StyleTransformerError):
    """A model cannot be exported (an architecture the exporter does not take)."""

    exit_code = 2


class _Encode(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.encode(image)


class _Synthesis(nn.Module):
    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, wplus: torch.Tensor) -> torch.Tensor:
        return self.generator.synthesis(wplus, randomize_noise=False)


class _Mapping(nn.Module):
    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        return self.generator.mapping(z, c)


def file_sha256(path: PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _export_graph(module: nn.Module, inputs: tuple, names: list, output: str, path: Path, opset: int) -> None:
    import onnx

    axes = {n: {0: "batch"} for n in names + [output]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer notes on constant shapes: the channel counts are constants
        example = module.eval()(*inputs)
        torch.onnx.export(module, inputs, str(path), input_names=names, output_names=[output],
                          dynamic_axes=axes, opset_version=opset, dynamo=False)
    # the output's shape written out (the exporter names every non-batch axis symbolically)
    graph = onnx.load(str(path))
    dims = graph.graph.output[0].type.tensor_type.shape.dim
    for d, size in zip(dims[1:], example.shape[1:]):
        d.ClearField("dim_param")
        d.dim_value = int(size)
    onnx.save(graph, str(path))


def export_model(model: nn.Module, out: PathLike, source: Optional[PathLike] = None, opset: int = OPSET,
                 generator: Optional[nn.Module] = None) -> Dict[str, Any]:
    """Exports an inversion model (Style Transformer, pSp, e4e) or a generator to ONNX graphs.

    Args:
        model: what ``load_model`` returned.
        out: the folder to write (replaced when it holds an earlier export; any other existing
            non-empty folder is refused).
        source: the checkpoint file it came from (its SHA-256 goes into the manifest).
        opset: ONNX opset.
        generator: render with this generator instead of the inversion model's own decoder.

    Returns:
        The manifest (also written as ``OUT/manifest.json``).

    Raises:
        ExportError: the architecture cannot be exported (StyleGAN3).
        OutputError: ``out`` is an unrelated folder, or cannot be written.
    """
    import numpy as np

    from ..models import StyleGenerator
    from ..models.stylegan3 import StyleGAN3Generator

    import importlib.util

    if importlib.util.find_spec("onnx") is None:
        from ..errors import UsageError

        raise UsageError("export needs the onnx package: pip install 'style-transformer[deploy]' (or pip install onnx)")
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise OutputError(f"{out}: exists and is not an exported folder; choose another output")
    encoder = None if isinstance(model, StyleGenerator) else model
    g = model if encoder is None else (generator if generator is not None else model.decoder)
    if isinstance(g, StyleGAN3Generator):
        raise ExportError("StyleGAN3 generators cannot be exported to ONNX yet (their filtered_lrelu "
                          "resampling has no graph form here); export StyleGAN2 models, or run with "
                          "--runtime torch")
    g = g.float().eval()
    manifest: Dict[str, Any] = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "opset": opset,
        "source": Path(source).name if source else None,
        "source_sha256": file_sha256(source) if source and Path(source).is_file() else None,
        "graphs": {}, "generator": {"resolution": g.size, "num_ws": g.num_ws, "w_dim": g.style_dim,
                                    "z_dim": g.z_dim, "c_dim": g.cfg.c_dim,
                                    "label_names": list(g.cfg.label_names)},
        "output": {"layout": "NCHW", "channels": "RGB", "range": [-1, 1],
                   "to_uint8": "clip((x + 1) * 127.5, 0, 255), truncated"},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as e:
        raise OutputError(f"{out}: cannot write ({e.strerror or e})") from None
    try:
        if encoder is not None:
            encoder = encoder.float().eval()
            e = encoder.cfg.encoder
            h, w = e.input_shape
            _export_graph(_Encode(encoder), (torch.zeros(2, e.input_nc, h, w),), ["image"], "wplus",
                          tmp / "encoder.onnx", opset)
            manifest["graphs"]["encoder"] = "encoder.onnx"
            manifest["encoder"] = {
                "input_size": [h, w], "n_styles": e.n_styles, "w_dim": g.style_dim,
                "preprocessing": {"layout": "NCHW", "channels": "RGB", "range": [-1, 1],
                                  "from_uint8": "x / 127.5 - 1",
                                  "resize": f"to {h}x{w} (bilinear, antialiased; no crop: align faces first)"},
                "latent_avg_included": True}
        ws = g.mean_latent(64, seed=0)[None, None].expand(2, g.num_ws, -1).contiguous()
        _export_graph(_Synthesis(g), (ws,), ["wplus"], "image", tmp / "synthesis.onnx", opset)
        manifest["graphs"]["synthesis"] = "synthesis.onnx"
        z = torch.randn(2, g.z_dim, generator=torch.Generator().manual_seed(0))
        if g.conditional:
            _export_graph(_Mapping(g), (z, torch.zeros(2, g.cfg.c_dim)), ["z", "c"], "w", tmp / "mapping.onnx", opset)
        else:
            _export_graph(_Mapping(g), (z,), ["z"], "w", tmp / "mapping.onnx", opset)
        manifest["graphs"]["mapping"] = "mapping.onnx"
        np.save(tmp / "latent_avg.npy", g.latent_avg.detach().float().cpu().numpy())
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        os.chmod(tmp, 0o777 & ~_umask())
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except OSError as e:
        raise OutputError(f"{out}: cannot write ({e.strerror or e})") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def export_onnx(checkpoint: PathLike, out: PathLike, generator: Optional[PathLike] = None,
                opset: int = OPSET, int8_calibration=None, calibration_n: int = 300) -> Dict[str, Any]:
    """``export_model`` of what ``load_model(checkpoint)`` reads (any supported format); ``generator``
    renders instead of an inversion model's own decoder. ``int8_calibration`` (image files and/or
    folders): also quantise the encoder (``deploy.quantize``), calibrated on up to ``calibration_n`` of
    them; the images are read before anything is written."""
    from ..checkpoints import load_model

    model = load_model(checkpoint)
    gen = load_model(generator, kind="generator") if generator is not None else None
    images = None
    if int8_calibration:
        from .quantize import calibration_images

        if not hasattr(model, "encode"):
            from ..errors import UsageError

            raise UsageError(f"{checkpoint}: a generator; --int8 quantises an encoder (an inversion checkpoint)")
        images = calibration_images(int8_calibration, model.cfg.encoder.input_shape, calibration_n)
    manifest = export_model(model, out, source=checkpoint, opset=opset, generator=gen)
    if images is not None:
        from .quantize import quantize_encoder

        manifest = quantize_encoder(out, images, source=", ".join(map(str, int8_calibration)))
    return manifest


def read_manifest(folder: PathLike) -> Dict[str, Any]:
    """The manifest of an exported folder, checked.

    Raises:
        InputError: not an exported folder, or a graph it names is missing.
    """
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{folder}: not an exported folder (no {MANIFEST})") from None
    except (OSError, ValueError) as e:
        raise InputError(f"{path}: unreadable ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"{path}: not a style_transformer ONNX manifest")
    graphs = manifest.get("graphs")
    if not isinstance(graphs, dict) or "synthesis" not in graphs:
        raise InputError(f"{path}: names no synthesis graph")
    for name, file in graphs.items():
        if not isinstance(file, str) or Path(file).name != file or not (folder / file).is_file():
            raise InputError(f"{folder}: the {name} graph {file!r} is missing")
    return manifest


def describe_export(folder: PathLike) -> Dict[str, Any]:
    """``inspect``'s dict for an exported folder: the manifest plus each graph's inputs and outputs."""
    import onnx

    folder = Path(folder)
    manifest = read_manifest(folder)
    info: Dict[str, Any] = {"file": str(folder), "kind": "onnx_export", "manifest": manifest, "graphs": {}}
    for name, file in manifest["graphs"].items():
        try:
            model = onnx.load(str(folder / file), load_external_data=False)
        except Exception as e:  # a damaged graph file: protobuf raises its own DecodeError
            raise InputError(f"{folder / file}: not a readable ONNX graph ({type(e).__name__})") from None

        def dims(v):
            return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]

        info["graphs"][name] = {"file": file, "bytes": (folder / file).stat().st_size,
                                "inputs": {v.name: dims(v) for v in model.graph.input},
                                "outputs": {v.name: dims(v) for v in model.graph.output},
                                "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                                             default=None)}
    return info


def format_export(info: Dict[str, Any]) -> str:
    """The human-readable form of ``describe_export``'s dict."""
    m = info["manifest"]
    g = m["generator"]
    lines = [info["file"], "  kind          exported ONNX graphs",
             f"  source        {m.get('source') or '(in memory)'}"
             + (f" (sha256 {m['source_sha256'][:16]}...)" if m.get("source_sha256") else ""),
             f"  generator     {g['resolution']} px, {g['num_ws']} ws, w_dim {g['w_dim']}, z_dim {g['z_dim']}, "
             f"c_dim {g['c_dim']}"]
    if "encoder" in m:
        e = m["encoder"]
        lines.append(f"  encoder       input {e['input_size'][0]}x{e['input_size'][1]} RGB in [-1, 1], "
                     f"{e['n_styles']} codes (latent_avg included)")
    for name, graph in info["graphs"].items():
        shapes = ", ".join(f"{k} {v}" for k, v in graph["inputs"].items()) + " -> " + \
            ", ".join(f"{k} {v}" for k, v in graph["outputs"].items())
        lines.append(f"  {name + ':':<13} {graph['file']} ({graph['bytes'] / 1e6:.1f} MB, opset {graph['opset']}): {shapes}")
    return "\n".join(lines)
