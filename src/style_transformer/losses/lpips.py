"""LPIPS perceptual distance (Zhang et al. 2018), standard and shift-tolerant, from local files.

Two networks:

* ``"alex"`` / ``"vgg"``: the standard LPIPS (v0.1): a torchvision AlexNet or VGG16 trunk plus the
  LPIPS linear heads. Both files are the user's: the trunk as torchvision saves it
  (``alexnet-owt-7be5be79.pth``, ``vgg16-397923af.pth``) and the heads as the ``lpips`` package
  ships them (``weights/v0.1/alex.pth``). Nothing is downloaded.
* ``"alex-st"``: the shift-tolerant LPIPS AlexNet (Ghildyal & Liu, ECCV 2022): anti-aliased
  (blur-pool) AlexNet trunk and heads in one file, ``weights/vST0.0/alex_shift_tolerant.pth`` of
  the PyPI wheel ``stlpips-pytorch``, which ``make`` installs without its dependencies. This is the
  offline default; only its weight file is used.

The distance: inputs in [-1, 1] are shifted and scaled per channel, each of the five ReLU feature
maps is unit-normalised over channels, the squared difference is weighted per channel by the
heads (1x1 convs without bias), averaged over space, and the five layers are summed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InputError

from ..utils import PathLike, packaged_file

NETS = ("alex-st", "alex", "vgg")
_CHANNELS = {"alex": (64, 192, 384, 256, 256), "alex-st": (64, 192, 384, 256, 256),
             "vgg": (64, 128, 256, 512, 512)}
# LPIPS input normalisation (the ImageNet statistics expressed for inputs in [-1, 1])
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class LPIPSError(InputError, RuntimeError):
    """LPIPS weights are missing or do not fit."""


class _BlurDown(nn.Module):
    """Anti-aliased stride-2 downsampling: reflect padding 2, [1, 2, 1]^2 / 16 depthwise, stride 2."""

    def __init__(self, channels: int):
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None, :]) / 16
        self.register_buffer("filt", k[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), self.filt, stride=2, groups=x.shape[1])


def _trunk(net: str) -> nn.ModuleList:
    """The five feature stages; each ends at the ReLU whose output LPIPS compares."""
    relu = nn.ReLU
    if net == "alex":
        return nn.ModuleList([
            nn.Sequential(nn.Conv2d(3, 64, 11, 4, 2), relu()),
            nn.Sequential(nn.MaxPool2d(3, 2), nn.Conv2d(64, 192, 5, padding=2), relu()),
            nn.Sequential(nn.MaxPool2d(3, 2), nn.Conv2d(192, 384, 3, padding=1), relu()),
            nn.Sequential(nn.Conv2d(384, 256, 3, padding=1), relu()),
            nn.Sequential(nn.Conv2d(256, 256, 3, padding=1), relu()),
        ])
    if net == "alex-st":
        return nn.ModuleList([
            nn.Sequential(nn.Conv2d(3, 64, 11, 1, 2), _BlurDown(64), relu()),
            nn.Sequential(nn.MaxPool2d(3, 1), _BlurDown(64), nn.Conv2d(64, 192, 5, padding=2), relu()),
            nn.Sequential(nn.MaxPool2d(3, 1), _BlurDown(192), nn.Conv2d(192, 384, 3, padding=1), relu()),
            nn.Sequential(nn.Conv2d(384, 256, 3, padding=1), relu()),
            nn.Sequential(nn.Conv2d(256, 256, 3, padding=1), relu()),
        ])
    if net == "vgg":
        def convs(cin, cout, n):
            layers: List[nn.Module] = []
            for i in range(n):
                layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, padding=1), relu()]
            return layers
        return nn.ModuleList([
            nn.Sequential(*convs(3, 64, 2)),
            nn.Sequential(nn.MaxPool2d(2, 2), *convs(64, 128, 2)),
            nn.Sequential(nn.MaxPool2d(2, 2), *convs(128, 256, 3)),
            nn.Sequential(nn.MaxPool2d(2, 2), *convs(256, 512, 3)),
            nn.Sequential(nn.MaxPool2d(2, 2), *convs(512, 512, 3)),
        ])
    raise LPIPSError(f"unknown LPIPS network {net!r}; choose from {NETS}")


def _weighted_modules(trunk: nn.ModuleList) -> List[nn.Module]:
    return [m for stage in trunk for m in stage if isinstance(m, (nn.Conv2d, _BlurDown))]


class LPIPS(nn.Module):
    """LPIPS distance ``d(img0, img1) -> [N]`` for images ``[N, 3, H, W]`` in [-1, 1].

    Build with ``LPIPS.load(...)`` to get pretrained weights; the constructor alone gives random
    weights (tests only). Frozen (no parameter needs gradients) but differentiable in its inputs.
    """

    def __init__(self, net: str = "alex-st"):
        super().__init__()
        self.net = net
        self.trunk = _trunk(net)
        self.lins = nn.ModuleList([nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS[net]])
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def _channels_last(self) -> None:
        # NHWC weights and activations: oneDNN's convolutions run faster on them on CPU (values unchanged)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)

    def features(self, img: torch.Tensor) -> List[torch.Tensor]:
        h = ((img - self.shift) / self.scale).contiguous(memory_format=torch.channels_last)
        out = []
        for stage in self.trunk:
            h = stage(h)
            out.append(h)
        return out

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        if img0.shape != img1.shape or img0.ndim != 4 or img0.shape[1] != 3:
            raise ValueError(f"LPIPS needs two [N, 3, H, W] batches of one shape, got {tuple(img0.shape)} "
                             f"and {tuple(img1.shape)}")
        n = img0.shape[0]
        if torch.is_grad_enabled() and img0.requires_grad != img1.requires_grad:
            # a loss against fixed targets: the target's features need no graph, and its half of the
            # backward pass (input gradients of every conv) is skipped: ~1.6x faster in training
            grad_side, fixed = (img0, img1) if img0.requires_grad else (img1, img0)
            f_grad = self.features(grad_side)
            with torch.no_grad():
                f_fixed = self.features(fixed)
            pairs = list(zip(f_grad, f_fixed))
        else:
            feats = self.features(torch.cat([img0, img1]))  # one pass for both halves
            pairs = [(f[:n], f[n:]) for f in feats]
        total = img0.new_zeros(n)
        for (a, b), lin in zip(pairs, self.lins):
            a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + lin((a - b).pow(2)).mean(dim=(1, 2, 3))
        return total

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, net: str = "alex-st", trunk: Optional[PathLike] = None, heads: Optional[PathLike] = None
             ) -> "LPIPS":
        """Pretrained LPIPS from local files.

        Args:
            net: ``"alex-st"`` (default, offline), ``"alex"`` or ``"vgg"``.
            trunk: ``alex-st``: the shift-tolerant file (default: found in the installed
                ``stlpips_pytorch`` wheel); ``alex``/``vgg``: the torchvision weight file.
            heads: ``alex``/``vgg`` only: the LPIPS v0.1 heads file.

        Raises:
            LPIPSError: a file is missing, unreadable or does not fit.
        """
        from ..checkpoints import CheckpointError, torch_load_safe

        model = cls(net)
        try:
            if net == "alex-st":
                path = Path(trunk) if trunk is not None else shift_tolerant_path()
                state = torch_load_safe(path)
                model._load_stlpips(state, path)
            else:
                if trunk is None or heads is None:
                    raise LPIPSError(f"LPIPS {net!r} needs two local files: trunk= (torchvision {net} weights) "
                                     "and heads= (lpips weights/v0.1 file); or use net='alex-st' (offline)")
                model._load_standard(torch_load_safe(Path(trunk)), torch_load_safe(Path(heads)), Path(trunk))
        except CheckpointError as e:
            raise LPIPSError(str(e)) from None
        model.source = str(path if net == "alex-st" else trunk)
        model._channels_last()
        return model

    def _assign(self, mapping: Dict[nn.Module, Dict[str, torch.Tensor]], where: Path) -> None:
        for module, tensors in mapping.items():
            for name, value in tensors.items():
                target = getattr(module, name)
                if not isinstance(value, torch.Tensor) or value.shape != target.shape:
                    got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                    raise LPIPSError(f"{where}: {name} of shape {got} where {tuple(target.shape)} is needed")
                if not torch.isfinite(value).all():
                    raise LPIPSError(f"{where}: non-finite values in the LPIPS weights")
                target.data.copy_(value.float())

    def _load_stlpips(self, state: Dict[str, torch.Tensor], where: Path) -> None:
        # key layout of the stlpips file: net.slice{k}.{index in the original Sequential}.*
        names = ["net.slice1.0", "net.slice1.1", "net.slice2.4", "net.slice2.5", "net.slice3.8", "net.slice3.9",
                 "net.slice4.11", "net.slice5.13"]
        mods = _weighted_modules(self.trunk)
        self._load_keys(state, where, names, mods, "lin{}.model.1.weight")

    def _load_standard(self, trunk: Dict[str, torch.Tensor], heads: Dict[str, torch.Tensor], where: Path) -> None:
        idx = {"alex": [0, 3, 6, 8, 10], "vgg": [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]}[self.net]
        trunk = {k.replace("module.", "", 1): v for k, v in trunk.items()}
        merged = {**trunk, **heads}
        self._load_keys(merged, where, [f"features.{i}" for i in idx], _weighted_modules(self.trunk),
                        "lin{}.model.1.weight")

    def _load_keys(self, state, where, names, mods, lin_key) -> None:
        mapping: Dict[nn.Module, Dict[str, torch.Tensor]] = {}
        missing = []
        for name, mod in zip(names, mods):
            fields = ("filt",) if isinstance(mod, _BlurDown) else ("weight", "bias")
            for f in fields:
                if f"{name}.{f}" not in state:
                    missing.append(f"{name}.{f}")
                else:
                    mapping.setdefault(mod, {})[f] = state[f"{name}.{f}"]
        for i, lin in enumerate(self.lins):
            key = lin_key.format(i)
            if key not in state:
                missing.append(key)
            else:
                mapping.setdefault(lin, {})["weight"] = state[key]
        if missing:
            raise LPIPSError(f"{where}: not LPIPS {self.net} weights (missing {', '.join(missing[:4])}"
                             + (f" and {len(missing) - 4} more" if len(missing) > 4 else "") + ")")
        self._assign(mapping, where)


def shift_tolerant_path() -> Path:
    """The shift-tolerant AlexNet LPIPS file inside the installed ``stlpips-pytorch`` wheel
    (or ``$STYLE_TRANSFORMER_STLPIPS``)."""
    return packaged_file("STYLE_TRANSFORMER_STLPIPS", "stlpips_pytorch", "weights/vST0.0/alex_shift_tolerant.pth",
                         LPIPSError, "shift-tolerant LPIPS weights not found: install them with "
                         "`pip install --no-deps stlpips-pytorch==0.0.2` (ships alex_shift_tolerant.pth), "
                         "or set STYLE_TRANSFORMER_STLPIPS to the file")
