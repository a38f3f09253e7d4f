"""Identity loss (pSp): 1 - cosine similarity of ArcFace IR-SE50 embeddings of input and output.

The network is the ArcFace IR-SE50 of TreB1eN's InsightFace port, in the layout of the official
``model_ir_se50.pth`` that pSp, e4e and the Style Transformer use: ``input_layer`` (conv, BN, PReLU),
``body.0..23`` (IR-SE units, the same ``BottleneckIR`` as the encoder's backbone) and
``output_layer`` (BN2d, dropout, flatten, linear 512*7*7 -> 512, BN1d). Weights come from a local
file only. Faces are cropped as pSp does for 256x256 inputs (rows 35:223, columns 32:220, scaled to
other sizes) and pooled to 112x112.

For the built-in rendered-face domain there is no identity network: the loss is off there
(``id_lambda = 0``), as documented in the README.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

from ..models.encoder import BottleneckIR
from ..utils import PathLike



class IDLossError(InputError, RuntimeError):
    """The ArcFace weights are missing or do not fit."""


class ArcFaceIRSE(nn.Module):
    """ArcFace IR-SE backbone and embedding head. ``forward``: img ``[N, 3, 112, 112]`` in [-1, 1] ->
    unit embeddings ``[N, embedding]``.

    Args:
        stage_channels, stage_units: the four stages (IR-SE50: 64/128/256/512 with 3/4/14/3 units).
        embedding: embedding width.
        input_size: side of the input (112; the head's linear layer expects input_size / 16 squared).
    """

    def __init__(self, stage_channels: Sequence[int] = (64, 128, 256, 512), stage_units: Sequence[int] = (3, 4, 14, 3),
                 embedding: int = 512, input_size: int = 112):
        super().__init__()
        self.input_size = input_size
        self.input_layer = nn.Sequential(nn.Conv2d(3, stage_channels[0], 3, 1, 1, bias=False),
                                         nn.BatchNorm2d(stage_channels[0]), nn.PReLU(stage_channels[0]))
        units = []
        in_ch = stage_channels[0]
        for depth, n in zip(stage_channels, stage_units):
            for u in range(n):
                units.append(BottleneckIR(in_ch, depth, 2 if u == 0 else 1, True, 16))
                in_ch = depth
        self.body = nn.Sequential(*units)
        side = input_size // 16
        self.output_layer = nn.Sequential(nn.BatchNorm2d(in_ch), nn.Dropout(0.4), nn.Flatten(),
                                          nn.Linear(in_ch * side * side, embedding), nn.BatchNorm1d(embedding))

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        emb = self.output_layer(self.body(self.input_layer(img)))
        return F.normalize(emb, dim=1)


class IDLoss(nn.Module):
    """``forward(y, x)`` -> ``[N]``: 1 - cos(ArcFace(crop(y)), ArcFace(crop(x))); frozen, eval mode.

    Args:
        net: the ArcFace network (``IDLoss.load`` builds it from ``model_ir_se50.pth``).
    """

    def __init__(self, net: ArcFaceIRSE):
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    @classmethod
    def load(cls, path: PathLike) -> "IDLoss":
        """ArcFace IR-SE50 from the official ``model_ir_se50.pth`` (a plain state dict)."""
        from ..checkpoints import CheckpointError, torch_load_safe

        path = Path(path)
        try:
            state = torch_load_safe(path)
        except CheckpointError as e:
            raise IDLossError(str(e)) from None
        if not isinstance(state, dict) or "output_layer.3.weight" not in state:
            raise IDLossError(f"{path}: not ArcFace IR-SE50 weights (no output_layer.3.weight)")
        state = {k.replace("module.", "", 1) if k.startswith("module.") else k: v for k, v in state.items()}
        net = ArcFaceIRSE()
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            raise IDLossError(f"{path}: does not fit ArcFace IR-SE50 ({first[1].strip() if len(first) > 1 else first[0]})") from None
        return cls(net)

    def embed(self, img: torch.Tensor) -> torch.Tensor:
        """img ``[N, 3, H, W]`` in [-1, 1] -> unit embeddings; crops the face as pSp (256 -> 188 px)."""
        h, w = img.shape[-2:]
        top, bottom = round(35 / 256 * h), round(223 / 256 * h)
        left, right = round(32 / 256 * w), round(220 / 256 * w)
        face = F.adaptive_avg_pool2d(img[:, :, top:bottom, left:right], self.net.input_size)
        return self.net(face)

    def forward(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return 1 - (self.embed(y) * self.embed(x).detach()).sum(1)
