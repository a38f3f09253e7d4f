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
                         padding: int = 0, input_gain: Optional[torch.Tensor] = None,
                         impl: str = "ref") -> torch.Tensor:
    """StyleGAN3's modulated convolution: with demodulation, the weight and the styles are first
    normalised to unit mean square (the styles over the whole batch, as NVIDIA does), then
    modulated, demodulated, and scaled per input channel by ``input_gain``.

    Args:
        x: ``[N, I, H, W]``; weight ``[O, I, k, k]``; styles ``[N, I]``.
        padding: zero padding of the convolution (StyleGAN3 uses k - 1, a "full" convolution).
        input_gain: scalar or ``[I]``: the inverse RMS of the layer's input (``magnitude_ema``).
        impl: ``"ref"``: per-sample weights in one grouped convolution, as NVIDIA's code; ``"fast"``:
            the same function as one convolution with the shared weight between a per-sample scaling
            of the input channels (styles, gain) and of the output channels (demodulation).
    """
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    w = weight
    s = styles
    if demodulate:
        w = w * w.square().mean([1, 2, 3], keepdim=True).rsqrt()
        s = s * s.square().mean().rsqrt()
    if impl == "fast":
        scale = s if input_gain is None else s * input_gain.expand(n, in_ch)
        out = F.conv2d(x * scale.to(x.dtype)[:, :, None, None], w.to(x.dtype), padding=padding)
        if demodulate:  # 1 / |w * s| per sample and output channel
            d = (s.square() @ w.square().sum([2, 3]).t() + 1e-8).rsqrt()
            out = out * d.to(x.dtype)[:, :, None, None]
        return out
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
                                 input_gain=self.magnitude_ema.rsqrt(), impl=self.impl)
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


def lowpass_filter(taps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> Optional[torch.Tensor]:
    """Kaiser-windowed low-pass FIR filter, normalised to unit DC gain: a sinc (separable, ``[taps]``)
    or a jinc (radially symmetric, ``[taps, taps]``); None for one tap. The Kaiser window's beta
    follows Kaiser's formula for the attenuation a transition band of ``width`` allows."""
    if taps <= 1:
        return None
    atten = 2.285 * (taps - 1) * math.pi * (width / (fs / 2)) + 7.95
    beta = 0.1102 * (atten - 8.7) if atten > 50 else (0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
                                                      if atten > 21 else 0.0)
    window = torch.kaiser_window(taps, periodic=False, beta=beta, dtype=torch.float64)
    pos = torch.arange(taps, dtype=torch.float64) - (taps - 1) / 2
    if not radial:
        c = cutoff / (fs / 2)
        f = c * torch.sinc(c * pos) * window
        return (f / f.sum()).float()
    x = pos / fs
    r = torch.hypot(x[None, :], x[:, None])
    f = torch.special.bessel_j1(2 * cutoff * math.pi * r) / (math.pi * r)
    f = f * torch.outer(window, window)
    return (f / f.sum()).float()


def new_stylegan3(size: int, style_dim: int = 512, n_mlp: int = 2, radial: bool = False, channel_base: int = 32768,
                  channel_max: int = 512, num_layers: int = 14, num_critical: int = 2, margin: int = 10,
                  filter_size: int = 6, conv_clamp: Optional[float] = 256.0, seed: int = 0) -> StyleGAN3Generator:
    """A freshly initialised StyleGAN3 (config T, or R with ``radial``) designed as in the paper: cutoffs
    rise geometrically from 2 to size/2 over the layers (the last ``num_critical`` critically sampled),
    stopbands from 2^2.1 to size/2 * 2^0.3, sampling rates the powers of two above twice the
    stopband, widths ``channel_base / 2 / cutoff`` capped at ``channel_max``, activations at twice the
    rate, filters of ``filter_size`` taps per rate step.

    Returns:
        The generator with its designed filters, Fourier frequencies and random weights.
    """
    torch.manual_seed(seed)
    n = num_layers
    last_cutoff = size / 2
    idx = torch.arange(n + 1, dtype=torch.float64)
    exponents = torch.clamp(idx / (n - num_critical), max=1.0)
    cutoffs = 2.0 * (last_cutoff / 2.0) ** exponents
    stopbands = 2 ** 2.1 * (last_cutoff * 2 ** 0.3 / 2 ** 2.1) ** exponents
    rates = torch.exp2(torch.ceil(torch.log2(torch.clamp(stopbands * 2, max=float(size)))))
    half_widths = torch.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + margin * 2
    sizes[-2:] = size
    channels = torch.round(torch.clamp((channel_base / 2) / cutoffs, max=channel_max))
    channels[-1] = 3
    kernel = 1 if radial else 3
    layers, filters = [], {}
    for i in range(n + 1):
        prev = max(i - 1, 0)
        torgb, critical = i == n, i >= n - num_critical
        k = 1 if torgb else kernel
        in_rate, out_rate = int(rates[prev]), int(rates[i])
        tmp_rate = max(in_rate, out_rate) * (1 if torgb else 2)
        up = int(round(tmp_rate / in_rate))
        down = int(round(tmp_rate / out_rate))
        up_taps = filter_size * up if up > 1 and not torgb else 1
        down_taps = filter_size * down if down > 1 and not torgb else 1
        down_radial = radial and not critical
        in_size, out_size = int(sizes[prev]), int(sizes[i])
        pad_total = (out_size - 1) * down + 1 - (in_size + k - 1) * up + up_taps + down_taps - 2
        lo = (pad_total + up) // 2
        name = f"L{i}_{out_size}_{int(channels[i])}"
        layers.append((name, int(channels[prev]), int(channels[i]), k, up, down, up_taps, down_taps, down_radial,
                       (lo, pad_total - lo, lo, pad_total - lo), torgb))
        filters[name] = (lowpass_filter(up_taps, float(cutoffs[prev]), float(half_widths[prev]) * 2, tmp_rate),
                         lowpass_filter(down_taps, float(cutoffs[i]), float(half_widths[i]) * 2, tmp_rate,
                                        radial=down_radial))
    cfg = StyleGAN3Config(architecture="stylegan3-r" if radial else "stylegan3-t", size=size, style_dim=style_dim,
                          n_mlp=n_mlp, input_channels=int(channels[0]), input_size=(int(sizes[0]), int(sizes[0])),
                          sampling_rate=float(rates[0]), bandwidth=float(cutoffs[0]), layers=tuple(layers),
                          conv_clamp=conv_clamp)
    g = StyleGAN3Generator(cfg)
    with torch.no_grad():
        for name, (fu, fd) in filters.items():
            layer = getattr(g.net, name)
            if fu is not None:
                layer.up_filter.copy_(fu)
            if fd is not None:
                layer.down_filter.copy_(fd)
    return g
