"""The FID InceptionV3 (TF-FID weights) as an eager PyTorch module, loaded from the TorchScript file.

The TorchScript file ``default_1.pt`` holds NVIDIA's export of the TensorFlow FID network: every
convolution is followed by a batch normalisation without scale (``beta``, ``mean``, ``var``, eps 1e-3)
and a ReLU; average pools exclude padding. Its weights are read from the file's state dict (the file's
code is not run); the architecture is written out here. What makes it faster than the TorchScript
module on CPU: the normalisation folded into each convolution's weight and bias, channels-last
activations throughout, and in-place ReLUs.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Dict, List, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

_BN_EPS = 1e-3
Pad = Union[int, Tuple[int, int]]


class _ConvBN(nn.Module):
    """conv (no bias) + BN (no scale) + ReLU, with the BN folded into the conv."""

    def __init__(self, stride: int = 1, padding: Pad = 0):
        super().__init__()
        self.stride, self.padding = stride, padding
        self.weight: torch.Tensor
        self.bias: torch.Tensor

    def load(self, state: Dict[str, torch.Tensor], prefix: str) -> None:
        w, beta = state[prefix + "weight"].float(), state[prefix + "beta"].float()
        mean, var = state[prefix + "mean"].float(), state[prefix + "var"].float()
        inv = torch.rsqrt(var.double() + _BN_EPS).float()
        self.register_buffer("weight", (w * inv[:, None, None, None]).contiguous(memory_format=torch.channels_last))
        self.register_buffer("bias", beta - mean * inv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu_(F.conv2d(x, self.weight, self.bias, self.stride, self.padding))


def _avg3(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


def _max3(x: torch.Tensor, stride: int = 2, pad: int = 0) -> torch.Tensor:
    return F.max_pool2d(x, 3, stride, pad)


class InceptionV3(nn.Module):
    """InceptionV3 to the 2048-d pool features; input ``[N, 3, 299, 299]`` in the network's range."""

    # (name, stride, padding) of the stem convolutions
    _STEM = (("conv", 2, 0), ("conv_1", 1, 0), ("conv_2", 1, 1), ("conv_3", 1, 0), ("conv_4", 1, 0))

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleDict()
        for name, stride, pad in self._STEM:
            self._add(name, stride, pad)
        for i in ("mixed", "mixed_1", "mixed_2"):  # 35x35 blocks
            self._add(f"{i}.conv")
            self._add(f"{i}.tower.conv"), self._add(f"{i}.tower.conv_1", 1, 2)
            self._add(f"{i}.tower_1.conv"), self._add(f"{i}.tower_1.conv_1", 1, 1)
            self._add(f"{i}.tower_1.conv_2", 1, 1), self._add(f"{i}.tower_2.conv")
        self._add("mixed_3.conv", 2), self._add("mixed_3.tower.conv"), self._add("mixed_3.tower.conv_1", 1, 1)
        self._add("mixed_3.tower.conv_2", 2)
        for i in ("mixed_4", "mixed_5", "mixed_6", "mixed_7"):  # 17x17 blocks, factorised 7x7
            self._add(f"{i}.conv"), self._add(f"{i}.tower.conv")
            self._add(f"{i}.tower.conv_1", 1, (0, 3)), self._add(f"{i}.tower.conv_2", 1, (3, 0))
            self._add(f"{i}.tower_1.conv")
            for k, pad in enumerate(((3, 0), (0, 3), (3, 0), (0, 3)), start=1):
                self._add(f"{i}.tower_1.conv_{k}", 1, pad)
            self._add(f"{i}.tower_2.conv")
        self._add("mixed_8.tower.conv"), self._add("mixed_8.tower.conv_1", 2)
        self._add("mixed_8.tower_1.conv"), self._add("mixed_8.tower_1.conv_1", 1, (0, 3))
        self._add("mixed_8.tower_1.conv_2", 1, (3, 0)), self._add("mixed_8.tower_1.conv_3", 2)
        for i in ("mixed_9", "mixed_10"):  # 8x8 blocks
            self._add(f"{i}.conv"), self._add(f"{i}.tower_conv")
            self._add(f"{i}.tower_mixed_conv", 1, (0, 1)), self._add(f"{i}.tower_mixed_conv_1", 1, (1, 0))
            self._add(f"{i}.tower_1_conv"), self._add(f"{i}.tower_1_conv_1", 1, 1)
            self._add(f"{i}.tower_1_mixed_conv", 1, (0, 1)), self._add(f"{i}.tower_1_mixed_conv_1", 1, (1, 0))
            self._add(f"{i}.tower_2_conv")

    def _add(self, name: str, stride: int = 1, padding: Pad = 0) -> None:
        self.convs[name.replace(".", "__")] = _ConvBN(stride, padding)

    def _c(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return self.convs[name.replace(".", "__")](x)

    def load_file_state(self, state: Dict[str, torch.Tensor], prefix: str = "net.layers.") -> None:
        """Loads the weights of the TorchScript file's state dict (every key must be used)."""
        used: List[str] = []
        for key, module in self.convs.items():
            name = prefix + key.replace("__", ".") + "."
            module.load(state, name)
            used += [name + s for s in ("weight", "beta", "mean", "var")]
        unused = sorted(set(state) - set(used))
        if unused:
            raise KeyError(f"unexpected InceptionV3 weights: {unused[:5]}")

    def _block35(self, i: str, x: torch.Tensor) -> torch.Tensor:
        a = self._c(f"{i}.conv", x)
        b = self._c(f"{i}.tower.conv_1", self._c(f"{i}.tower.conv", x))
        c = self._c(f"{i}.tower_1.conv_2", self._c(f"{i}.tower_1.conv_1", self._c(f"{i}.tower_1.conv", x)))
        d = self._c(f"{i}.tower_2.conv", _avg3(x))
        return torch.cat([a, b, c, d], 1)

    def _block17(self, i: str, x: torch.Tensor) -> torch.Tensor:
        a = self._c(f"{i}.conv", x)
        b = self._c(f"{i}.tower.conv_2", self._c(f"{i}.tower.conv_1", self._c(f"{i}.tower.conv", x)))
        c = self._c(f"{i}.tower_1.conv", x)
        for k in range(1, 5):
            c = self._c(f"{i}.tower_1.conv_{k}", c)
        d = self._c(f"{i}.tower_2.conv", _avg3(x))
        return torch.cat([a, b, c, d], 1)

    def _block8(self, i: str, x: torch.Tensor, pool) -> torch.Tensor:
        a = self._c(f"{i}.tower_conv", x)
        b = self._c(f"{i}.tower_1_conv_1", self._c(f"{i}.tower_1_conv", x))
        return torch.cat([self._c(f"{i}.conv", x), self._c(f"{i}.tower_mixed_conv", a),
                          self._c(f"{i}.tower_mixed_conv_1", a), self._c(f"{i}.tower_1_mixed_conv", b),
                          self._c(f"{i}.tower_1_mixed_conv_1", b), self._c(f"{i}.tower_2_conv", pool(x))], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x ``[N, 3, 299, 299]`` -> features ``[N, 2048]``."""
        x = x.contiguous(memory_format=torch.channels_last)
        x = self._c("conv_2", self._c("conv_1", self._c("conv", x)))
        x = self._c("conv_4", self._c("conv_3", _max3(x)))
        x = _max3(x)
        for i in ("mixed", "mixed_1", "mixed_2"):
            x = self._block35(i, x)
        x = torch.cat([self._c("mixed_3.conv", x),
                       self._c("mixed_3.tower.conv_2", self._c("mixed_3.tower.conv_1", self._c("mixed_3.tower.conv", x))),
                       _max3(x)], 1)
        for i in ("mixed_4", "mixed_5", "mixed_6", "mixed_7"):
            x = self._block17(i, x)
        a = self._c("mixed_8.tower.conv_1", self._c("mixed_8.tower.conv", x))
        b = self._c("mixed_8.tower_1.conv", x)
        for k in range(1, 4):
            b = self._c(f"mixed_8.tower_1.conv_{k}", b)
        x = torch.cat([a, b, _max3(x)], 1)
        x = self._block8("mixed_9", x, _avg3)
        x = self._block8("mixed_10", x, lambda t: _max3(t, 1, 1))
        return x.mean((2, 3))


def load_inception(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> InceptionV3:
    """The eager InceptionV3 with the weights of the TorchScript file at ``path``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is the file's format
        state = {k: v for k, v in torch.jit.load(str(path), map_location="cpu").state_dict().items()}
    model = InceptionV3()
    model.load_file_state(state)
    return model.to(device).eval().requires_grad_(False)

