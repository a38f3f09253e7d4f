"""The one checkpoint loader, and the native safetensors format.

Native format: ``model.safetensors`` whose metadata (str -> str) holds ``format="style_transformer"``,
``format_version``, ``kind`` (``style_transformer`` | ``generator`` | ``attribute_classifier`` |
``latent_classifier`` | ``reference_editor``) and ``config`` (JSON). A
``config.json`` beside the file (``{"kind": ..., "config": {...}}``) is also accepted. Loading rebuilds
the model from the config and calls ``load_state_dict(strict=True)``. fp16 files are upcast to float32.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Optional, Tuple

import torch
from torch import nn

from ..config import (AttributeClassifierConfig, ConfigError, GeneratorConfig, LatentClassifierConfig, PSPConfig,
                      ReferenceEditorConfig, StyleTransformerConfig, generator_config_from_dict)
from ..models import (AttributeClassifier, Generator, LatentClassifier, PSPModel, ReferenceEditor, StyleGenerator,
                      StyleTransformer, build_generator)
from .official import CheckpointError, check_state_dict, convert_official, torch_load_safe
from .nvidia import architecture, convert_stylegan2, convert_stylegan3
from .unpickle import is_pickle, read_snapshot
from ..utils import PathLike, atomic_path

log = logging.getLogger(__name__)

FORMAT = "style_transformer"
FORMAT_VERSION = "1"
KINDS = {"style_transformer": (StyleTransformer, StyleTransformerConfig), "generator": (Generator, GeneratorConfig),
         "attribute_classifier": (AttributeClassifier, AttributeClassifierConfig),
         "latent_classifier": (LatentClassifier, LatentClassifierConfig),
         "reference_editor": (ReferenceEditor, ReferenceEditorConfig), "psp": (PSPModel, PSPConfig)}


def kind_of(model: nn.Module) -> str:
    if isinstance(model, StyleGenerator):
        return "generator"
    for kind, (cls, _) in KINDS.items():
        if isinstance(model, cls):
            return kind
    raise TypeError(f"cannot save a {type(model).__name__}")


def save_model(model: nn.Module, path: PathLike, dtype: Optional[torch.dtype] = None) -> Path:
    """Writes ``model`` (Generator or StyleTransformer) as native safetensors, atomically.

    Args:
        model: the model; its ``cfg`` goes into the metadata.
        path: output file (``.safetensors``).
        dtype: cast floating tensors (e.g. ``torch.float16`` for shipped weights); None keeps them.

    Returns:
        The written path.
    """
    from safetensors.torch import save_file

    path = Path(path)
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        state[k] = v.contiguous()
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind_of(model),
            "config": model.cfg.to_json()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return path


def _read_safetensors(path: Path) -> Tuple[str, object, dict]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({str(e)[:200]})") from None
    if "config" not in meta:
        side = path.parent / "config.json"
        if not side.is_file():
            raise CheckpointError(f"{path}: no config in its metadata and no config.json beside it")
        try:
            meta = {**meta, **{k: (v if isinstance(v, str) else json.dumps(v))
                               for k, v in json.loads(side.read_text()).items()}}
        except json.JSONDecodeError as e:
            raise CheckpointError(f"{side}: invalid JSON ({e})") from None
    if meta.get("format", FORMAT) != FORMAT:
        raise CheckpointError(f"{path}: metadata format {meta.get('format')!r} is not {FORMAT!r}")
    kind = meta.get("kind")
    if kind not in KINDS:
        raise CheckpointError(f"{path}: unknown model kind {kind!r} in metadata")
    try:
        cfg = (generator_config_from_dict(json.loads(meta["config"])) if kind == "generator"
               else KINDS[kind][1].from_json(meta["config"]))
    except (ConfigError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: invalid config in metadata ({e})") from None
    return kind, cfg, state


def read_checkpoint(path: PathLike) -> Tuple[Path, str, object, dict, str]:
    """Reads any supported file without building the model: ``(path, kind, config, state dict,
    source format)``; the source format is ``"native"``, ``"official"`` (a pickled ``.pt`` of the
    official code or of rosinality's trainer) or ``"nvidia"`` (a StyleGAN2-ADA / StyleGAN3 snapshot)."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    if path.suffix == ".safetensors" or (len(head) == 8 and not head.startswith(b"PK") and not head.startswith(b"\x80")):
        return (path, *_read_safetensors(path), "native")
    if path.suffix == ".pkl" or is_pickle(head):
        return (path, *read_nvidia_generator(path), "nvidia")
    ckpt = torch_load_safe(path)
    try:
        return (path, *convert_official(ckpt), "official")  # type: ignore[arg-type]
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None


def read_nvidia_generator(path: Path) -> Tuple[str, object, dict]:
    """``("generator", config, state)`` of an NVIDIA snapshot's ``G_ema``."""
    snap = read_snapshot(path)
    try:
        arch = architecture(snap["G_ema"])
        cfg, state = (convert_stylegan2 if arch == "stylegan2" else convert_stylegan3)(snap["G_ema"])
    except CheckpointError as e:  # the converters' own refusals name no file
        raise CheckpointError(f"{path}: {e}") from None
    except KeyError as e:
        raise CheckpointError(f"{path}: the StyleGAN2 generator lacks {e}") from None
    except ConfigError as e:
        raise CheckpointError(f"{path}: unsupported generator configuration ({e})") from None
    except (TypeError, AttributeError, ValueError, IndexError, RuntimeError) as e:  # records of the wrong types
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: a malformed G_ema in the snapshot ({msg[:150]})") from None
    return "generator", cfg, state


def load_model(path: PathLike, kind: Optional[str] = None) -> nn.Module:
    """Loads any supported checkpoint into a float32 model in eval mode, on CPU.

    Accepts native ``.safetensors`` (or a folder holding ``model.safetensors``), official Style
    Transformer ``.pt`` files, rosinality StyleGAN2 ``.pt`` files, the official editing models
    (LCNet_40 W+ classifier, reference edit encoder) and NVIDIA StyleGAN2-ADA / StyleGAN3-repo
    snapshot pickles (their ``G_ema``, read without running any code from the file).

    Args:
        path: checkpoint file or folder.
        kind: required kind (``"style_transformer"``, ``"generator"`` or ``"attribute_classifier"``); a Style Transformer
            checkpoint also satisfies ``"generator"`` (its decoder is returned).

    Returns:
        ``StyleTransformer``, ``Generator`` or ``AttributeClassifier``.

    Raises:
        CheckpointError: missing/unreadable/unsafe file, wrong kind, or keys that do not fit.
    """
    path, file_kind, cfg, state, _ = read_checkpoint(path)
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}")
    encoders = ("style_transformer", "psp")
    if kind is not None and file_kind != kind and not (kind == "generator" and file_kind in encoders):
        raise CheckpointError(f"{path}: this is a {file_kind.replace('_', ' ')} checkpoint, "
                              f"but a {kind.replace('_', ' ')} checkpoint is needed here")
    def build() -> nn.Module:
        return build_generator(cfg) if file_kind == "generator" else KINDS[file_kind][0](cfg)

    with torch.device("meta"):  # shapes only, no memory: a config that disagrees with the file is refused
        shell = build().state_dict()  # before a model of its size is allocated
    probe = dict(state)
    if file_kind == "generator" and "latent_avg" not in probe:
        probe["latent_avg"] = shell["latent_avg"]
    check_state_dict(shell, probe, str(path))
    model = build()
    expected = model.state_dict()
    if file_kind == "generator" and "latent_avg" not in state:
        state = dict(state)
        state["latent_avg"] = expected["latent_avg"]  # filled below from the mapping network
        needs_mean = True
    else:
        needs_mean = False
    check_state_dict(expected, state, str(path))
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        more = len(bad) - 5
        raise CheckpointError(f"{path}: non-finite values (NaN/Inf) in {', '.join(bad[:5])}"
                              + (f" and {more} more tensor{'s' if more > 1 else ''}" if more > 0 else ""))
    state = {k: v.to(expected[k].dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    if needs_mean:
        log.info("%s has no latent_avg; using the mean of 4096 mapped z (seed 0)", path)
        model.latent_avg.copy_(model.mean_latent(4096, seed=0))
    model.eval().requires_grad_(False)
    if kind == "generator" and file_kind in encoders:
        return model.decoder
    return model
