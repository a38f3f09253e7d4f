"""Import of official pickled ``.pt`` checkpoints (Style Transformer, pSp, e4e, rosinality StyleGAN2,
the Style Transformer's editing models).

Loading is ``torch.load(..., weights_only=True)`` only, with ``argparse.Namespace`` allow-listed (some
trainers store ``args``). A file that needs any other class is refused; we never retry unsafely.
The architecture is inferred from tensor shapes, never from ``opts``/``args``.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import pickle
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch

from ..errors import InputError

from ..config import (CELEBA_ATTRIBUTES, ConfigError, EncoderConfig, GeneratorConfig, LatentClassifierConfig,
                      PSPConfig, ReferenceEditorConfig, StyleTransformerConfig, _ROSINALITY_CHANNELS)

log = logging.getLogger(__name__)

StateDict = Dict[str, torch.Tensor]


class CheckpointError(InputError):
    """A checkpoint is missing, unreadable, unsafe, of the wrong kind, or does not fit the model."""


def torch_load_safe(path: Path) -> object:
    """``torch.load`` with ``weights_only=True`` (plus ``argparse.Namespace``), on CPU.

    Raises:
        CheckpointError: the file is unreadable or needs classes beyond tensors and containers.
    """
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: refused: the checkpoint needs code beyond tensors to unpickle, and only "
            f"weights_only loading is allowed ({first[:200]})") from None
    except Exception as e:  # noqa: BLE001 (a corrupt file surfaces as any of a dozen types inside torch.load)
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({msg[:200]})") from None


def strip_prefixes(state: Mapping[str, torch.Tensor]) -> StateDict:
    """Drops ``module.`` (DataParallel/DDP) and ``_orig_mod.`` (torch.compile) path components."""
    out = {}
    for k, v in state.items():
        parts = [p for p in k.split(".") if p not in ("module", "_orig_mod")]
        out[".".join(parts)] = v
    return out


def _sub(state: Mapping[str, torch.Tensor], prefix: str) -> StateDict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def infer_generator_config(g: Mapping[str, torch.Tensor], label_names: Optional[Sequence[str]] = None
                           ) -> GeneratorConfig:
    """Rebuilds a ``GeneratorConfig`` from a rosinality generator state dict's shapes.

    A conditional generator (an ``embed`` layer) takes its label names from ``label_names`` (shapes
    do not hold them).

    ``lr_mlp`` cannot be seen in shapes; the standard 0.01 is assumed (all public checkpoints).
    """
    try:
        style_dim = g["style.1.weight"].shape[0]
        n_mlp = len([k for k in g if re.fullmatch(r"style\.\d+\.weight", k)])
        n_rgb = len({k.split(".")[1] for k in g if k.startswith("to_rgbs.")})
        size = 2 ** (n_rgb + 2)
        widths = [g["conv1.conv.weight"].shape[1]]
        widths += [g[f"convs.{2 * i}.conv.weight"].shape[1] for i in range(n_rgb)]
    except KeyError as e:
        raise CheckpointError(f"not a StyleGAN2 generator state dict: missing key {e.args[0]}") from None
    widths = tuple(int(w) for w in widths)
    kw = dict(size=size, style_dim=int(style_dim), n_mlp=n_mlp)
    conditional = "embed.weight" in g  # a conditional mapping (this project's train-gan --conditional)
    # the first mapping layer reads z (and, conditional, the embedded label: style_dim more)
    z_dim = int(g["style.1.weight"].shape[1]) - (int(style_dim) if conditional else 0)
    if z_dim != style_dim:
        kw["z_dim"] = z_dim
    if conditional:
        kw.update(c_dim=int(g["embed.weight"].shape[1]),
                  label_combos=int(g["label_dist"].shape[0]) if "label_dist" in g else 0)
        names = tuple(label_names or ())
        if names and len(names) == kw["c_dim"]:
            kw["label_names"] = names
    for cm in (1, 2, 4):
        table = tuple(_ROSINALITY_CHANNELS[2 ** r] * (cm if 2 ** r >= 64 else 1) for r in range(2, n_rgb + 3))
        if table == widths:
            return GeneratorConfig(channel_multiplier=cm, **kw)
    return GeneratorConfig(channels=widths, **kw)


def _infer_backbone(e: Mapping[str, torch.Tensor]) -> Dict:
    """The IR(-SE) backbone fields of ``EncoderConfig`` from a state dict's shapes. Stage boundaries
    are the units with a convolutional shortcut (the width changes there)."""
    n_units = len({k.split(".")[1] for k in e if k.startswith("body.")})
    depths = [int(e[f"body.{i}.res_layer.1.weight"].shape[0]) for i in range(n_units)]
    starts = [i for i in range(n_units) if i == 0 or f"body.{i}.shortcut_layer.0.weight" in e]
    if len(starts) != 4:
        raise CheckpointError(f"cannot infer 4 backbone stages from the encoder (found {len(starts)})")
    bounds = starts + [n_units]
    se = "body.0.res_layer.5.fc1.weight" in e
    return dict(input_nc=int(e["input_layer.0.weight"].shape[1]), stem_channels=int(e["input_layer.0.weight"].shape[0]),
                stage_channels=tuple(depths[s] for s in starts),
                stage_units=tuple(bounds[i + 1] - bounds[i] for i in range(4)), se=se,
                se_reduction=depths[0] // int(e["body.0.res_layer.5.fc1.weight"].shape[0]) if se else 16)


def infer_psp_config(e: Mapping[str, torch.Tensor], generator: GeneratorConfig, arch: str) -> PSPConfig:
    """``PSPConfig`` of an official pSp / e4e encoder state dict (all sizes from the shapes)."""
    try:
        n_styles = len({k.split(".")[1] for k in e if k.startswith("styles.")})
        d = int(e["styles.0.linear.weight"].shape[0])
        n_convs = [len({k.split(".")[3] for k in e if k.startswith(f"styles.{i}.convs.")}) for i in range(n_styles)]
        coarse = next((i for i in range(n_styles) if n_convs[i] != n_convs[0]), n_styles)
        middle = next((i for i in range(coarse, n_styles) if n_convs[i] != n_convs[coarse]), n_styles) \
            if coarse < n_styles else n_styles
        # a coarse head halves its 1/16 map down to 1x1: its conv count gives the input size (4 -> 256)
        enc = EncoderConfig(**_infer_backbone(e), n_styles=n_styles, d_model=d, input_size=16 * 2 ** n_convs[0])
        return PSPConfig(arch=arch, encoder=enc, generator=generator, coarse_ind=coarse, middle_ind=middle)
    except KeyError as err:
        raise CheckpointError(f"not a pSp/e4e encoder state dict: missing key {err.args[0]}") from None
    except ConfigError as err:
        raise CheckpointError(f"encoder weights do not describe a valid pSp/e4e encoder: {err}") from None


def infer_encoder_config(e: Mapping[str, torch.Tensor]) -> EncoderConfig:
    """Rebuilds an ``EncoderConfig`` from an official encoder state dict's shapes.

    ``n_heads`` (4) and ``input_size`` (256) are not visible in shapes and take the paper's values.
    """
    try:
        z = e["z"]
        return EncoderConfig(
            **_infer_backbone(e), n_styles=int(z.shape[1]), d_model=int(z.shape[2]),
            ffn_dim=int(e["transformerlayer_coarse.linear1.weight"].shape[0]),
        )
    except KeyError as err:
        raise CheckpointError(f"not a Style Transformer encoder state dict: missing key {err.args[0]}") from None
    except ConfigError as err:
        raise CheckpointError(f"encoder weights do not describe a valid encoder: {err}") from None


def check_state_dict(expected: Mapping[str, torch.Tensor], got: Mapping[str, torch.Tensor], what: str) -> None:
    """Raises ``CheckpointError`` naming missing, unexpected and mis-shaped keys."""
    missing = [k for k in expected if k not in got]
    unexpected = [k for k in got if k not in expected]
    shapes = [f"{k} (model {tuple(expected[k].shape)}, file {tuple(got[k].shape)})"
              for k in expected if k in got and tuple(expected[k].shape) != tuple(got[k].shape)]
    problems: List[str] = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", shapes)):
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise CheckpointError(f"{what} does not match the model: " + "; ".join(problems))


# the official code's input transforms by ``opts.dataset_type`` (configs/transforms_config.py of the
# Style Transformer, pSp and e4e): Resize((h, w)) without keeping the aspect; every other dataset of
# those repositories is 256 x 256
_NON_SQUARE_INPUTS = {"cars_encode": 192}


def _opts_of(ckpt: dict) -> Dict:
    opts = ckpt.get("opts")
    return vars(opts) if isinstance(opts, argparse.Namespace) else (opts if isinstance(opts, dict) else {})


def official_input(opts: Mapping, generator: GeneratorConfig, what: str) -> Dict[str, int]:
    """``EncoderConfig`` fields of an official encoder's input transform, from ``opts.dataset_type``.

    The cars configuration (512 px generator) reads 192 x 256; without ``dataset_type`` a 512 px
    generator could be either, and that is an error rather than a guess.
    """
    dataset = opts.get("dataset_type")
    size = opts.get("output_size")
    if size is not None and int(size) != generator.size:
        raise CheckpointError(f"the {what} checkpoint's opts say output_size {size}, but its generator "
                              f"is {generator.size} px")
    if dataset is None:
        if generator.size == 512:
            raise CheckpointError(f"cannot tell the {what} checkpoint's input transform: a 512 px generator is "
                                  "the official cars configuration (192x256 input) or a square one, and its opts "
                                  "have no dataset_type")
        return {}
    if not isinstance(dataset, str):
        raise CheckpointError(f"the {what} checkpoint's opts.dataset_type is not a name: {dataset!r}")
    height = _NON_SQUARE_INPUTS.get(dataset)
    return {"input_height": height} if height else {}


def _state_dict_of(ckpt: dict) -> StateDict:
    """The weights of an official file: its ``state_dict`` entry, or the file itself when it is one."""
    sd = ckpt.get("state_dict", ckpt)
    return strip_prefixes({k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}) if isinstance(sd, dict) else {}


def detect_kind(ckpt: object) -> str:
    """Returns ``"style_transformer"``, ``"generator"``, ``"latent_classifier"`` or ``"reference_editor"``
    for a loaded official checkpoint dict."""
    if isinstance(ckpt, dict):
        keys = _state_dict_of(ckpt).keys()
        if any(k.startswith("encoder.z") for k in keys) and any(k.startswith("decoder.") for k in keys):
            return "style_transformer"
        if any(k.startswith("encoder.styles.0.convs.") for k in keys) and any(k.startswith("decoder.") for k in keys):
            return "psp"
        if isinstance(ckpt.get("g_ema"), dict):
            return "generator"
        if any(k.startswith("classifier.fcs.") for k in keys):
            return "latent_classifier"
        if any(k.startswith("encoder.transformerlayer.") for k in keys):
            return "reference_editor"
    raise CheckpointError("not a Style Transformer inversion checkpoint ({'state_dict', 'latent_avg'}), a StyleGAN2 "
                          "checkpoint ({'g_ema', ...}), nor an official editing model (LCNet_40, edit encoder)")


def convert_official(ckpt: dict) -> Tuple[str, object, StateDict]:
    """Maps an official checkpoint dict to ``(kind, config, native state dict)``.

    Native keys: ``encoder.*`` / ``decoder.*`` (Style Transformer) or the generator's own keys, plus
    ``[decoder.]latent_avg``.
    """
    kind = detect_kind(ckpt)
    try:
        return _convert(kind, ckpt)
    except KeyError as e:
        raise CheckpointError(f"the {kind.replace('_', ' ')} checkpoint lacks the key {e}") from None


def _convert(kind: str, ckpt: dict) -> Tuple[str, object, StateDict]:
    if kind == "latent_classifier":
        sd = _sub(_state_dict_of(ckpt), "classifier.")
        n_fcs = len({k.split(".")[1] for k in sd if k.startswith("fcs.")})
        first = sd["fcs.0.weight"]
        n_out = len({k.split(".")[1] for k in sd if k.startswith("output_fcs.")})
        w_dim = 512  # W+ is flattened in this format; 18 x 512 is the only official shape
        if first.shape[1] % w_dim:
            raise CheckpointError(f"LCNet input width {first.shape[1]} is not a multiple of w_dim {w_dim}")
        names = CELEBA_ATTRIBUTES if n_out == len(CELEBA_ATTRIBUTES) else tuple(f"attr_{i}" for i in range(n_out))
        cfg = LatentClassifierConfig(attributes=names, num_ws=first.shape[1] // w_dim, w_dim=w_dim,
                                     hidden=tuple(int(sd[f"fcs.{i}.weight"].shape[0]) for i in range(n_fcs)),
                                     embed_dim=int(sd["indep_fcs.0.weight"].shape[0]))
        return kind, cfg, sd
    if kind == "reference_editor":
        sd = {k: v for k, v in _sub(_state_dict_of(ckpt), "encoder.").items() if k.startswith("transformerlayer.")}
        d = int(sd["transformerlayer.linear1.weight"].shape[1])
        cfg = ReferenceEditorConfig(d_model=d, n_heads=4, ffn_dim=int(sd["transformerlayer.linear1.weight"].shape[0]))
        return kind, cfg, sd
    if kind == "psp":
        sd = _state_dict_of(ckpt)
        enc, dec = _sub(sd, "encoder."), _sub(sd, "decoder.")
        opts = _opts_of(ckpt)
        encoder_type = opts.get("encoder_type", "GradualStyleEncoder")
        arch = {"GradualStyleEncoder": "psp", "Encoder4Editing": "e4e"}.get(encoder_type)
        if arch is None:
            raise CheckpointError(f"unsupported pSp-family encoder_type {encoder_type!r} "
                                  "(GradualStyleEncoder = pSp, Encoder4Editing = e4e)")
        cfg = infer_psp_config(enc, infer_generator_config(dec), arch)
        cfg = dataclasses.replace(cfg, encoder=dataclasses.replace(
            cfg.encoder, **official_input(opts, cfg.generator, arch.replace("psp", "pSp"))))
        state = {**{f"encoder.{k}": v for k, v in enc.items()}, **{f"decoder.{k}": v for k, v in dec.items()}}
        latent_avg = ckpt.get("latent_avg")
        if latent_avg is None:
            raise CheckpointError("the pSp/e4e checkpoint has no 'latent_avg' (its codes are offsets from it)")
        state["decoder.latent_avg"] = latent_avg.reshape(-1, latent_avg.shape[-1])[0].float()
        return kind, cfg, state
    if kind == "style_transformer":
        sd = strip_prefixes(ckpt["state_dict"])
        enc, dec = _sub(sd, "encoder."), _sub(sd, "decoder.")
        gen = infer_generator_config(dec)
        enc_cfg = infer_encoder_config(enc)
        enc_cfg = dataclasses.replace(enc_cfg, **official_input(_opts_of(ckpt), gen, "Style Transformer"))
        cfg = StyleTransformerConfig(encoder=enc_cfg, generator=gen)
        latent_avg = ckpt.get("latent_avg")
        if latent_avg is None:
            raise CheckpointError("the Style Transformer checkpoint has no 'latent_avg' (the encoder's codes "
                                  "are offsets from it)")
        state = {**{f"encoder.{k}": v for k, v in enc.items()}, **{f"decoder.{k}": v for k, v in dec.items()}}
        # stored as [w_dim] or repeated as [num_ws, w_dim]; the rows are identical
        state["decoder.latent_avg"] = latent_avg.reshape(-1, latent_avg.shape[-1])[0].float()
        return kind, cfg, state
    g = strip_prefixes(ckpt["g_ema"])
    run = ckpt.get("config")  # train-gan's checkpoints carry the run's config
    names = run.get("generator", {}).get("label_names") if isinstance(run, dict) else None
    cfg = infer_generator_config(g, names if isinstance(names, (list, tuple)) else None)
    state = dict(g)
    if ckpt.get("latent_avg") is not None:
        la = ckpt["latent_avg"]
        state["latent_avg"] = la.reshape(-1, la.shape[-1])[0].float()
    return kind, cfg, state
