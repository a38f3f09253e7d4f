"""StyleGAN3 generator (Karras et al., "Alias-Free Generative Adversarial Networks", NeurIPS 2021),
configs T and R, in pure PyTorch.

The mapping network is StyleGAN2's (``StyleGenerator``). The synthesis network starts from Fourier
features on a sampling grid, rotated and translated by the first w (``SynthesisInput``), then runs
modulated convolutions whose activations are filtered leaky ReLUs: upsample with a low-pass filter,
leaky ReLU at the higher rate, low-pass and downsample (``ops.filtered_lrelu``), which keeps the
non-linearity from aliasing. Its output is scaled by ``output_scale``.

It renders W+ codes like the StyleGAN2 generator (``synthesis(ws)``, ``num_ws`` rows, ``latent_avg``),
so encoders, inversion, editing and evaluation work on it unchanged. It has no noise inputs.

State-dict keys: the mapping as in ``Generator`` (``style.*``, ``embed.*``, ``latent_avg``), the
synthesis under ``net.`` with NVIDIA's own names (``net.input.freqs``, ``net.L0_36_512.weight``, ...).
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch
from torch import nn
import torch.nn.functional as F

from ..config import StyleGAN3Config
from ..ops import filtered_lrelu
from .stylegan2 import EqualLinear, StyleGenerator


def modulated_conv2d_sg3(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                         padding: int = 0, input_gain: Optional[torch.Tensor] = None) -> torch.Tensor:
    """StyleGAN3's modulated convolution: with demodulation, the weight and the styles are first
    normalised to unit mean square (the styles over the whole batch, as NVIDIA does), then
    modulated, demodulated, and scaled per input channel by ``input_gain``.

    Args:
        x: ``[N, I, H, W]``; weight ``[O, I, k, k]``; styles ``[N, I]``.
        padding: zero padding of the convolution (StyleGAN3 uses k - 1, a "full" convolution).
        input_gain: scalar or ``[I]``: the inverse RMS of the layer's input (``magnitude_ema``).
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    w = weight
    s = styles
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
    w = w.unsqueeze(0) * s[:, None, :, None, None]  # [N, O, I, k, k]
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()[:, :, None, None, None]
    if input_gain is not None:
        w = w * input_gain.expand(n, in_ch)[:, None, :, None, None]
    out = F.conv2d(x.reshape(1, n * in_ch, *x.shape[2:]), w.reshape(n * out_ch, in_ch, kh, kw).to(x.dtype),
                   padding=padding, groups=n)
    return out.reshape(n, out_ch, *out.shape[2:])


class SynthesisInput(nn.Module):
    """Fourier features on a ``size`` grid: frequencies and phases fixed at creation, rotated and
    translated by an affine of the first w, then a trainable channel mixing."""

    def __init__(self, w_dim: int, channels: int, size: Sequence[int], sampling_rate: float, bandwidth: float):
        super().__init__()
        self.channels = channels
        self.size = (int(size[0]), int(size[1]))  # (width, height)
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = EqualLinear(w_dim, 4)
        with torch.no_grad():
            self.affine.weight.zero_()
            self.affine.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.register_buffer("transform", torch.eye(3))
        freqs = torch.randn(channels, 2)
        radii = freqs.square().sum(1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(channels) - 0.5)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """w ``[N, w_dim]`` -> features ``[N, channels, height, width]``."""
        n = w.shape[0]
        t = self.affine(w)  # (cos, sin, tx, ty) up to scale
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        eye = torch.eye(3, device=w.device, dtype=w.dtype)
        rot = eye.repeat(n, 1, 1)
        rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1] = t[:, 0], -t[:, 1], t[:, 1], t[:, 0]
        shift = eye.repeat(n, 1, 1)
        shift[:, 0, 2], shift[:, 1, 2] = -t[:, 2], -t[:, 3]
        transforms = rot @ shift @ self.transform.unsqueeze(0)  # rotate the image, then translate
        freqs = self.freqs.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        # fade out frequencies the transform pushed beyond the band
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.zeros(1, 2, 3, device=w.device, dtype=w.dtype)
        theta[0, 0, 0] = 0.5 * self.size[0] / self.sampling_rate
        theta[0, 1, 1] = 0.5 * self.size[1] / self.sampling_rate
        grid = F.affine_grid(theta, [1, 1, self.size[1], self.size[0]], align_corners=False)  # [1, H, W, 2]
        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = torch.sin((x + phases[:, None, None, :]) * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayerSG3(nn.Module):
    """Modulated convolution + filtered leaky ReLU (or, for the ToRGB layer, a 1x1 modulated
    convolution without demodulation and a clamped linear output)."""

    def __init__(self, w_dim: int, in_channels: int, out_channels: int, conv_kernel: int, up: int, down: int,
                 up_taps: int, down_taps: int, down_radial: bool, padding: Sequence[int], is_torgb: bool,
                 conv_clamp: Optional[float]):
        super().__init__()
        self.in_channels, self.out_channels, self.conv_kernel = in_channels, out_channels, conv_kernel
        self.up, self.down, self.padding, self.is_torgb = up, down, tuple(padding), is_torgb
        self.conv_clamp = conv_clamp
        self.affine = EqualLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, conv_kernel, conv_kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        if up_taps > 1:
            self.register_buffer("up_filter", torch.zeros(up_taps))
        else:
            self.up_filter = None
        if down_taps > 1:
            self.register_buffer("down_filter", torch.zeros((down_taps, down_taps) if down_radial else (down_taps,)))
        else:
            self.down_filter = None
        self.impl = "fast"

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles / math.sqrt(self.in_channels * self.conv_kernel ** 2)
        x = modulated_conv2d_sg3(x, self.weight, styles, demodulate=not self.is_torgb, padding=self.conv_kernel - 1,
                                 input_gain=self.magnitude_ema.rsqrt())
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias, up=self.up, down=self.down,
                              padding=self.padding, gain=1.0 if self.is_torgb else math.sqrt(2),
                              slope=1.0 if self.is_torgb else 0.2, clamp=self.conv_clamp, impl=self.impl)


class _SynthesisNet(nn.Module):
    def __init__(self, cfg: StyleGAN3Config):
        super().__init__()
        self.input = SynthesisInput(cfg.style_dim, cfg.input_channels, cfg.input_size, cfg.sampling_rate,
                                    cfg.bandwidth)
        self.layer_names: List[str] = []
        for name, cin, cout, k, up, down, up_taps, down_taps, radial, pad, torgb in cfg.layers:
            setattr(self, name, SynthesisLayerSG3(cfg.style_dim, cin, cout, k, up, down, up_taps, down_taps, radial,
                                                  pad, torgb, cfg.conv_clamp))
            self.layer_names.append(name)


class StyleGAN3Generator(StyleGenerator):
    """StyleGAN3 mapping + synthesis (configs T and R).

    Args:
        cfg: architecture (``StyleGAN3Config``; built from NVIDIA's snapshots by the loader).
    """

    num_layers = 0  # no noise inputs

    def __init__(self, cfg: StyleGAN3Config):
        super().__init__(cfg)
        self.net = _SynthesisNet(cfg)
        self.register_buffer("latent_avg", torch.zeros(cfg.style_dim))

    def stored_noise(self) -> List[torch.Tensor]:
        return []

    def synthesis(self, ws: torch.Tensor, noise=None, randomize_noise: bool = False) -> torch.Tensor:
        """Renders W+ codes ``[N, >=num_ws, w_dim]`` (rows past ``num_ws`` are ignored) to images
        ``[N, 3, size, size]``; ``noise`` and ``randomize_noise`` are accepted for the StyleGAN2 API
        and ignored (StyleGAN3 has no noise inputs)."""
        if ws.ndim != 3 or ws.shape[1] < self.n_latent or ws.shape[2] != self.style_dim:
            raise ValueError(f"ws must be [N, >={self.n_latent}, {self.style_dim}], got {tuple(ws.shape)}")
        ws = ws.float()
        x = self.net.input(ws[:, 0])
        for i, name in enumerate(self.net.layer_names):
            x = getattr(self.net, name)(x, ws[:, i + 1])
        return x * self.cfg.output_scale


def build_generator(cfg) -> StyleGenerator:
    """The generator a config describes: ``Generator`` (StyleGAN2) or ``StyleGAN3Generator``."""
    from .stylegan2 import Generator

    return StyleGAN3Generator(cfg) if isinstance(cfg, StyleGAN3Config) else Generator(cfg)
