"""What a checkpoint file is, read from the file alone (``style-transformer inspect``)."""

from __future__ import annotations

from collections import Counter
from typing import Any, Dict

from ..config import GeneratorConfig, StyleGAN3Config
from .io import PathLike, read_checkpoint

KIND_NAMES = {"generator": "generator", "style_transformer": "Style Transformer encoder",
              "psp": "pSp encoder", "e4e": "e4e encoder", "attribute_classifier": "image attribute classifier",
              "latent_classifier": "W+ attribute classifier", "reference_editor": "reference editing model"}
SOURCE_NAMES = {"native": "native safetensors", "nvidia": "NVIDIA network snapshot (.pkl)",
                "official": "official .pt", "rosinality": "rosinality StyleGAN2 .pt"}


def _generator_fields(g) -> Dict[str, Any]:
    if isinstance(g, StyleGAN3Config):
        return {"architecture": "StyleGAN3-" + g.architecture[-1].upper(),
                "resolution": g.size, "num_ws": g.num_ws, "w_dim": g.style_dim,
                "z_dim": g.z_dim or g.style_dim, "c_dim": g.c_dim, "mapping_layers": g.n_mlp,
                "channels": {layer[0]: layer[2] for layer in g.layers},
                "conv_clamp": g.conv_clamp, "labels": list(g.label_names) or None}
    return {"architecture": "StyleGAN2", "resolution": g.size, "num_ws": g.num_ws, "w_dim": g.style_dim,
            "z_dim": g.z_dim or g.style_dim, "c_dim": g.c_dim, "mapping_layers": g.n_mlp,
            "channels": {str(2 ** r): g.channel(2 ** r) for r in range(2, g.log_size + 1)},
            "conv_clamp": g.conv_clamp, "labels": list(g.label_names) or None}


def inspect_checkpoint(path: PathLike) -> Dict[str, Any]:
    """A JSON-able description of one checkpoint: kind, source format, the generator's architecture
    (resolution, num_ws, w_dim, z_dim, c_dim, mapping depth, channel table), parameters, dtypes and
    whether ``latent_avg`` is stored.

    Raises:
        CheckpointError: the file is not a supported checkpoint.
    """
    path, kind, cfg, state, source = read_checkpoint(path)
    if kind == "psp" and getattr(cfg, "arch", "psp") == "e4e":
        kind = "e4e"
    if source == "official" and kind == "generator":
        source = "rosinality"
    info: Dict[str, Any] = {"file": str(path), "kind": kind, "kind_name": KIND_NAMES.get(kind, kind),
                            "source": source, "source_name": SOURCE_NAMES[source]}
    gen = cfg if isinstance(cfg, (GeneratorConfig, StyleGAN3Config)) else getattr(cfg, "generator", None)
    if isinstance(gen, (GeneratorConfig, StyleGAN3Config)):
        info.update(_generator_fields(gen))
    enc = getattr(cfg, "encoder", None)
    if enc is not None:
        info.update(encoder_input=list(enc.input_shape), encoder_codes=enc.n_styles)
    for name in ("attributes",):
        if getattr(cfg, name, None):
            info[name] = list(getattr(cfg, name))
    if kind == "reference_editor":
        info["attribute"] = cfg.attribute
    tensors = [v for v in state.values() if hasattr(v, "numel")]
    # learned tensors only: the stored noise, filter kernels, latent_avg and label table are buffers
    info["parameters"] = int(sum(v.numel() for k, v in state.items() if hasattr(v, "numel") and v.is_floating_point()
                                 and "noises." not in k and not k.endswith(("kernel", "latent_avg", "label_dist"))))
    info["tensors"] = len(tensors)
    dtypes = Counter(str(v.dtype).replace("torch.", "") for v in tensors if v.is_floating_point())
    info["dtype"] = ", ".join(d for d, _ in dtypes.most_common())
    if isinstance(gen, (GeneratorConfig, StyleGAN3Config)):
        info["latent_avg"] = any(k.endswith("latent_avg") for k in state)
    return info


def format_inspection(info: Dict[str, Any]) -> str:
    """The human-readable form of ``inspect_checkpoint``'s dict."""
    lines = [info["file"], f"  kind          {info['kind_name']}", f"  source        {info['source_name']}"]
    if "architecture" in info:
        lines += [f"  architecture  {info['architecture']}, {info['resolution']} px, {info['num_ws']} ws",
                  f"  w_dim / z_dim {info['w_dim']} / {info['z_dim']}",
                  f"  c_dim         {info['c_dim']}" + (f" ({', '.join(info['labels'])})" if info.get("labels") else ""),
                  f"  mapping       {info['mapping_layers']} layers",
                  "  channels      " + " ".join(f"{r}:{c}" for r, c in info["channels"].items())]
        if info["architecture"].startswith("StyleGAN3"):
            lines[-1] = "  layers        " + " ".join(info["channels"])
        if info.get("conv_clamp") is not None:
            lines.append(f"  conv_clamp    {info['conv_clamp']:g}")
    if "encoder_input" in info:
        h, w = info["encoder_input"]
        lines.append(f"  encoder       {h}x{w} input, {info['encoder_codes']} codes")
    if "attributes" in info:
        lines.append(f"  attributes    {', '.join(info['attributes'])}")
    if "attribute" in info:
        lines.append(f"  attribute     {info['attribute']}")
    lines.append(f"  parameters    {info['parameters']:,} ({info['tensors']} tensors, {info['dtype']})")
    if "latent_avg" in info:
        lines.append(f"  latent_avg    {'stored' if info['latent_avg'] else 'not stored (computed on load)'}")
    return "\n".join(lines)
