"""NVIDIA StyleGAN2-ADA-PyTorch / StyleGAN3 snapshots as this package's models.

``checkpoints.unpickle.read_snapshot`` reads a snapshot without executing it (records of parameters,
buffers, children and constructor arguments); this module says which architecture a generator record
is (``architecture``) and converts it (``convert_stylegan2``, ``convert_stylegan3``) into a
``Generator`` / ``StyleGAN3Generator`` with the same outputs.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
import torch

from .official import CheckpointError
from .unpickle import PersistentObject, UnsafePickleError, is_pickle, read_snapshot  # noqa: F401 (the old home)


def architecture(g: PersistentObject) -> str:
    """``"stylegan2"``, ``"stylegan3-t"`` or ``"stylegan3-r"``, told apart by structure (class names in
    the file are not qualified by module)."""
    try:
        syn = g.child("synthesis")
    except KeyError:
        raise CheckpointError("the generator has no synthesis network") from None
    if "b4" in syn.modules:
        return "stylegan2"
    if "input" in syn.modules and syn.get("layer_names"):
        first = syn.child(syn.get("layer_names")[0])
        return "stylegan3-r" if int(first.get("conv_kernel", 3)) == 1 else "stylegan3-t"
    raise CheckpointError("the generator is neither StyleGAN2 (synthesis.b4) nor StyleGAN3 (synthesis.input)")


def _mapping(g: PersistentObject, sd: Dict[str, torch.Tensor]):
    """What StyleGAN2 and StyleGAN3 share: the checks, sizes and converted tensors of the mapping
    network (``style.*``, ``embed.*``, ``latent_avg``). Returns (w_dim, z_dim, c_dim, n_mlp, lr_mlp, state)."""
    w_dim, z_dim, c_dim = int(g.get("w_dim")), int(g.get("z_dim")), int(g.get("c_dim") or 0)
    if g.get("img_channels", 3) != 3:
        raise CheckpointError(f"the generator draws {g.get('img_channels')} channels; only RGB (3) is supported")
    if c_dim and sd["mapping.embed.weight"].shape[0] != w_dim:
        raise CheckpointError("the label embedding width differs from w_dim; not supported")
    if z_dim == 0:
        raise CheckpointError("a generator without z (z_dim 0) is not supported")
    mapping = g.child("mapping")
    n_mlp = int(mapping.get("num_layers"))
    out: Dict[str, torch.Tensor] = {}
    for i in range(n_mlp):
        out[f"style.{i + 1}.weight"] = sd[f"mapping.fc{i}.weight"]
        out[f"style.{i + 1}.bias"] = sd[f"mapping.fc{i}.bias"]
    if c_dim:
        out["embed.weight"] = sd["mapping.embed.weight"]
        out["embed.bias"] = sd["mapping.embed.bias"]
    out["latent_avg"] = sd["mapping.w_avg"]
    return w_dim, z_dim, c_dim, n_mlp, float(mapping.child("fc0").get("bias_gain")), out


def convert_stylegan2(g: PersistentObject):
    """NVIDIA's StyleGAN2 ``G_ema`` -> ``(GeneratorConfig, state dict)`` in this project's (rosinality)
    layout. The raw tensors copy 1:1 (both sides keep equalized-lr weights unscaled and the
    modulation bias with its +1); the conv weights gain a leading axis; the stored noise becomes
    ``noises.noise_i``; ``mapping.w_avg`` becomes ``latent_avg``."""
    from ..config import GeneratorConfig
    from ..ops import make_kernel

    sd = g.state_dict()
    syn = g.child("synthesis")
    res = int(g.get("img_resolution") or syn.get("img_resolution"))
    log2 = res.bit_length() - 1
    w_dim, z_dim, c_dim, n_mlp, lr_mlp, out = _mapping(g, sd)
    for r in (2 ** i for i in range(3, log2 + 1)):
        arch = syn.child(f"b{r}").get("architecture", "skip")
        if arch != "skip":
            raise CheckpointError(f"synthesis architecture {arch!r} is not supported (NVIDIA trains 'skip')")
    filt = make_kernel((1, 3, 3, 1))
    for k, v in sd.items():
        if k.endswith("resample_filter") and not torch.allclose(v.float(), filt, atol=1e-7):
            raise CheckpointError(f"{k} is not the [1,3,3,1] filter; other resampling filters are not supported")
    clamps = {syn.child(f"b{2 ** i}").child(n).get("conv_clamp") for i in range(2, log2 + 1)
              for n in ("conv0", "conv1", "torgb") if n in syn.child(f"b{2 ** i}").modules}
    if len(clamps) != 1:
        raise CheckpointError(f"the layers use different conv_clamp values {sorted(map(str, clamps))}")
    clamp = clamps.pop()
    widths = tuple(int(sd[f"synthesis.b{2 ** i}.conv1.weight"].shape[0]) for i in range(2, log2 + 1))
    cfg = GeneratorConfig(size=res, style_dim=w_dim, n_mlp=n_mlp, channels=widths, lr_mlp=lr_mlp, c_dim=c_dim,
                          z_dim=0 if z_dim == w_dim else z_dim,
                          conv_clamp=None if clamp is None else float(clamp))

    def layer(dst: str, src: str, noise_index: int) -> None:
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.activate.bias"] = sd[f"{src}.bias"]
        if f"{src}.noise_strength" in sd:  # use_noise=False: no noise (strength 0)
            out[f"{dst}.noise.weight"] = sd[f"{src}.noise_strength"].reshape(1)
            out[f"noises.noise_{noise_index}"] = sd[f"{src}.noise_const"][None, None]
        else:
            out[f"{dst}.noise.weight"] = torch.zeros(1)
            size = 2 ** ((noise_index + 5) // 2)
            out[f"noises.noise_{noise_index}"] = torch.zeros(1, 1, size, size)

    def torgb(dst: str, src: str) -> None:
        out[f"{dst}.conv.weight"] = sd[f"{src}.weight"][None]
        out[f"{dst}.conv.modulation.weight"] = sd[f"{src}.affine.weight"]
        out[f"{dst}.conv.modulation.bias"] = sd[f"{src}.affine.bias"]
        out[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(1, -1, 1, 1)

    out["input.input"] = sd["synthesis.b4.const"][None]
    layer("conv1", "synthesis.b4.conv1", 0)
    torgb("to_rgb1", "synthesis.b4.torgb")
    for k in range(3, log2 + 1):
        b = f"synthesis.b{2 ** k}"
        layer(f"convs.{2 * (k - 3)}", f"{b}.conv0", 2 * k - 5)
        out[f"convs.{2 * (k - 3)}.conv.blur.kernel"] = sd[f"{b}.conv0.resample_filter"] * 4
        layer(f"convs.{2 * (k - 3) + 1}", f"{b}.conv1", 2 * k - 4)
        torgb(f"to_rgbs.{k - 3}", f"{b}.torgb")
        out[f"to_rgbs.{k - 3}.upsample.kernel"] = sd[f"{b}.resample_filter"] * 4
    return cfg, {k: v.float().contiguous() for k, v in out.items()}


def convert_stylegan3(g: PersistentObject):
    """NVIDIA's StyleGAN3 ``G_ema`` (config T or R) -> ``(StyleGAN3Config, state dict)``: the layer
    geometry NVIDIA designed (sizes, filter lengths, padding) goes into the config, the synthesis
    tensors keep their names under ``net.``, the mapping takes this project's layout."""
    from ..config import StyleGAN3Config

    sd = g.state_dict()
    syn = g.child("synthesis")
    inp = syn.child("input")
    w_dim, z_dim, c_dim, n_mlp, lr_mlp, out = _mapping(g, sd)
    layers, clamps = [], set()
    for name in syn.get("layer_names"):
        layer = syn.child(name)
        fu, fd = layer.buffers.get("up_filter"), layer.buffers.get("down_filter")
        if fu is not None and fu.ndim != 1:
            raise CheckpointError(f"synthesis.{name}: a 2-D up filter is not supported")
        pad = [int(p) for p in layer.get("padding")]
        layers.append((name, int(layer.get("in_channels")), int(layer.get("out_channels")),
                       int(layer.get("conv_kernel")), int(layer.get("up_factor")), int(layer.get("down_factor")),
                       1 if fu is None else int(fu.shape[0]), 1 if fd is None else int(fd.shape[0]),
                       fd is not None and fd.ndim == 2, tuple(pad), bool(layer.get("is_torgb"))))
        clamps.add(layer.get("conv_clamp"))
    if len(clamps) != 1:
        raise CheckpointError(f"the layers use different conv_clamp values {sorted(map(str, clamps))}")
    clamp = clamps.pop()
    size = [int(v) for v in np.asarray(inp.get("size")).reshape(-1)]
    cfg = StyleGAN3Config(architecture=architecture(g), size=int(g.get("img_resolution")), style_dim=w_dim,
                          z_dim=0 if z_dim == w_dim else z_dim, n_mlp=n_mlp, lr_mlp=lr_mlp, c_dim=c_dim,
                          input_channels=int(inp.get("channels")), input_size=(size[0], size[-1]),
                          sampling_rate=float(inp.get("sampling_rate")), bandwidth=float(inp.get("bandwidth")),
                          layers=tuple(layers), conv_clamp=None if clamp is None else float(clamp),
                          output_scale=float(syn.get("output_scale")))
    for k, v in sd.items():
        if k.startswith("synthesis."):
            out["net." + k[len("synthesis."):]] = v
    return cfg, {k: v.float().contiguous() for k, v in out.items()}
