"""The deterministic weight rule of ../shared/parity/README.md, written from its text.

Builds full official-format checkpoints (key names, shapes, dtypes from the manifests) whose values
follow the rule for a seed, so that the official reference outputs can be reproduced.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from pathlib import Path
from typing import Dict, List, Tuple

import torch

DATA = Path(__file__).parent / "data" / "parity"
_GEN_PREFIXES = ("style.", "input.", "conv1.", "to_rgb1.", "convs.", "to_rgbs.", "noises.")
_KERNEL = torch.tensor([1.0, 3.0, 3.0, 1.0])
_KERNEL = torch.outer(_KERNEL, _KERNEL) / 16


def load_manifest(name: str) -> List[Tuple[str, List[int], str]]:
    return [tuple(e) for e in json.loads((DATA / f"manifest_{name}.json").read_text())]


def rule_value(key: str, shape, dtype: str, seed: int, keys: set) -> torch.Tensor:
    s = tuple(shape)
    g = torch.Generator().manual_seed((zlib.crc32(key.encode()) + seed) % 2 ** 31)
    if key.endswith("running_var"):  # rand/randn is the generator's first draw here
        return (1 + 0.1 * torch.rand(s, generator=g)).to(_dtype(dtype))
    if key.endswith("running_mean"):
        return (0.1 * torch.randn(s, generator=g)).to(_dtype(dtype))
    r = torch.randn(s, generator=g)
    if key.endswith("running_var"):
        v = 1 + 0.1 * torch.rand(s, generator=g)
    elif key.endswith("running_mean"):
        v = 0.1 * torch.randn(s, generator=g)
    elif key.endswith("num_batches_tracked"):
        v = torch.tensor(0)
    elif key.endswith(".kernel"):
        v = _KERNEL.clone()
    elif key == "latent_avg":
        v = 0.1 * r
    elif key.endswith("bias"):
        v = 0.1 * r
    elif key.startswith("decoder.") or key.startswith(_GEN_PREFIXES):
        if re.search(r"(^|\.)style\.\d+\.weight$", key):
            v = 100 * r
        elif key.endswith("noise.weight"):
            v = 0.1 * r
        else:
            v = r
    elif len(s) == 1 and key.endswith(".weight"):
        m = key[: -len(".weight")]
        if m + ".running_mean" in keys or re.search(r"norm\d*$", m):
            v = 1 + 0.1 * r
        else:
            v = 0.25 + 0.01 * r
    elif len(s) >= 2 and key.endswith("weight"):
        v = r / math.sqrt(math.prod(s[1:]))
    else:
        v = r
    return v.to(_dtype(dtype))


def _dtype(name: str) -> torch.dtype:
    return getattr(torch, name.split(".")[-1])


def rule_state_dict(name: str, seed: int) -> Dict[str, torch.Tensor]:
    manifest = load_manifest(name)
    keys = {k for k, _, _ in manifest}
    return {k: rule_value(k, s, d, seed, keys) for k, s, d in manifest}


def official_styletransformer_checkpoint(seed: int) -> dict:
    """``{'state_dict', 'opts', 'latent_avg'}`` as the official training code saves it."""
    return {
        "state_dict": rule_state_dict("styletransformer", seed),
        "opts": {"output_size": 256, "encoder_type": "Encoder4Editing", "n_styles": 18},
        "latent_avg": rule_value("latent_avg", (512,), "torch.float32", seed, set()),
    }


def official_cars_checkpoint(seed: int, opts: bool = True) -> dict:
    """The official Stanford Cars inversion checkpoint's layout (512 px generator, 192x256 input)."""
    ckpt = {"state_dict": rule_state_dict("styletransformer_cars", seed),
            "latent_avg": rule_value("latent_avg", (512,), "torch.float32", seed, set())}
    if opts:
        ckpt["opts"] = {"dataset_type": "cars_encode", "output_size": 512, "n_styles": 16,
                        "start_from_latent_avg": True, "learn_in_w": False, "label_nc": 0}
    return ckpt


def rosinality_g256_checkpoint(seed: int) -> dict:
    """``{'g_ema', 'latent_avg'}`` as rosinality/stylegan2-pytorch saves it."""
    return {"g_ema": rule_state_dict("g256", seed),
            "latent_avg": rule_value("latent_avg", (512,), "torch.float32", seed, set())}


def kept_rows(images, ref: dict):
    """The rows of output images that a reference file keeps of the official outputs (every
    ``images_row_step``-th row, 1 when absent: each layer's output still reaches every kept row)."""
    return images[..., ::int(ref.get("images_row_step", 1)), :]

