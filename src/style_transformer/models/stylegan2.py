"""StyleGAN2 generator and discriminator, state-dict compatible with rosinality/stylegan2-pytorch.

Parameter and buffer names follow that layout exactly (``style.1.weight``, ``convs.0.conv.weight``,
``noises.noise_0``, ...), so ``g_ema``/``g``/``d`` state dicts of rosinality-format checkpoints (used by
pSp, e4e, ReStyle and the official Style Transformer) load with ``strict=True``. One addition: the
generator carries ``latent_avg`` ``[style_dim]`` (top-level in those checkpoints), the mean W used for
truncation and added to encoder codes.
"""

from __future__ import annotations

import math
import random
from typing import List, Mapping, Optional, Sequence, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from ..config import GeneratorConfig
from ..ops import IMPLS, fused_leaky_relu, make_kernel, modulated_conv2d, upfirdn2d


def set_ops_impl(module: nn.Module, impl: str) -> nn.Module:
    """Selects the op implementation (``"fast"`` or ``"ref"``) for every layer under ``module``.

    Args:
        module: any module tree containing StyleGAN2 layers.
        impl: one of ``ops.IMPLS``.

    Returns:
        ``module`` (for chaining).
    """
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    for m in module.modules():
        if hasattr(m, "impl"):
            m.impl = impl
    for m in module.modules():
        if hasattr(m, "impl_changed"):
            m.impl_changed()
    return module


class PixelNorm(nn.Module):
    """Normalise each vector to unit RMS over dim 1 (rosinality's axis)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class Blur(nn.Module):
    """FIR filter with padding; ``kernel`` buffer as in rosinality (gain up**2 when upsampling)."""

    def __init__(self, taps: Sequence[int], pad: Tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_kernel(taps, gain=upsample_factor ** 2))
        self.pad = pad
        self.impl = "fast"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad, impl=self.impl)


class Upsample(nn.Module):
    """2x FIR upsampling (ToRGB skip path)."""

    def __init__(self, taps: Sequence[int], factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(taps, gain=factor ** 2))
        p = len(taps) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)
        self.impl = "fast"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad, impl=self.impl)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate; optional fused bias + leaky ReLU."""

    def __init__(self, in_dim: int, out_dim: int, bias: bool = True, bias_init: float = 0.0,
                 lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.scale = 1.0 / math.sqrt(in_dim) * lr_mul
        self.lr_mul = lr_mul
        self.activation = activation
        self.impl = "fast"

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, in_dim] -> [N, out_dim]
        if self.activation:
            return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul,
                                    impl=self.impl)
        bias = self.bias * self.lr_mul if self.bias is not None else None
        return F.linear(x, self.weight * self.scale, bias)


class EqualConv2d(nn.Module):
    """Conv2d with equalized learning rate."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size ** 2)
        self.stride, self.padding = stride, padding
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.scale, self.bias, stride=self.stride, padding=self.padding)


class FusedLeakyReLU(nn.Module):
    """Bias + leaky ReLU(0.2) * sqrt(2), with a learned per-channel bias."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.impl = "fast"

    def forward(self, x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
        return fused_leaky_relu(x, self.bias, impl=self.impl, inplace=inplace)


class ScaledLeakyReLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x, 0.2) * math.sqrt(2)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution; ``weight`` is ``[1, C_out, C_in, k, k]`` as in rosinality."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, demodulate: bool = True,
                 upsample: bool = False, blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_ch, out_ch, kernel_size
        self.upsample, self.demodulate = upsample, demodulate
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.scale = 1.0 / math.sqrt(in_ch * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_ch, in_ch, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_ch, bias_init=1.0)
        self.impl = "fast"

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        # x [N, C_in, H, W], style [N, style_dim] -> [N, C_out, H', W']
        s = self.modulation(style)
        w_sq, w_prep = self._derived_weights()
        out = modulated_conv2d(x, self.weight[0], s, demodulate=self.demodulate, upsample=self.upsample,
                               padding=self.padding, weight_gain=self.scale, impl=self.impl,
                               weight_sq=w_sq, weight_prepared=w_prep)
        if self.upsample:
            out = self.blur(out)
        return out

    def _derived_weights(self) -> Tuple[Optional[torch.Tensor], Optional[torch.Tensor]]:
        """Inference cache of weight-only tensors (sum of squares, conv-ready layout), rebuilt
        whenever the weight changes (its version counter or storage); none while the weight is
        trained. It holds one extra copy of the conv weights."""
        w = self.weight
        if self.impl != "fast" or (torch.is_grad_enabled() and w.requires_grad):
            return None, None
        key = (w._version, w.data_ptr(), w.dtype, w.device)
        cache = self.__dict__.get("_derived")
        if cache is None or cache[0] != key:
            with torch.no_grad():
                w_sq = w[0].pow(2).sum([2, 3]) if self.demodulate else None
                if self.upsample:
                    w_prep = w[0].transpose(0, 1).contiguous()
                else:
                    w_prep = w[0].contiguous(memory_format=torch.channels_last)
            cache = (key, w_sq, w_prep)
            self.__dict__["_derived"] = cache
        return cache[1], cache[2]


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: Optional[torch.Tensor] = None, inplace: bool = False) -> torch.Tensor:
        if noise is None:
            n, _, h, w = x.shape
            noise = x.new_empty(n, 1, h, w).normal_()
        return x.add_(self.weight * noise) if inplace else x + self.weight * noise


class ConstantInput(nn.Module):
    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, batch: int) -> torch.Tensor:
        return self.input.repeat(batch, 1, 1, 1)


class StyledConv(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, style_dim: int, upsample: bool = False,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1), conv_clamp: Optional[float] = None):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, kernel_size, style_dim, upsample=upsample,
                                    blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_ch)
        self.conv_clamp = conv_clamp

    def forward(self, x: torch.Tensor, style: torch.Tensor, noise: Optional[torch.Tensor] = None) -> torch.Tensor:
        # The fast path updates the fresh conv output in place (convolution backward does not need
        # its output, so autograd allows it); the reference path allocates, as the official code.
        inplace = self.conv.impl == "fast"
        out = self.noise(self.conv(x, style), noise, inplace=inplace)
        out = self.activate(out, inplace=inplace)
        if self.conv_clamp is not None:  # NVIDIA: clamp(lrelu(x + b) * sqrt(2), +-conv_clamp)
            out = out.clamp(-self.conv_clamp, self.conv_clamp)
        return out


class ToRGB(nn.Module):
    def __init__(self, in_ch: int, style_dim: int, upsample: bool = True, blur_kernel: Sequence[int] = (1, 3, 3, 1),
                 conv_clamp: Optional[float] = None):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_ch, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))
        self.conv_clamp = conv_clamp

    def forward(self, x: torch.Tensor, style: torch.Tensor, skip: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = self.conv(x, style) + self.bias
        if self.conv_clamp is not None:  # NVIDIA clamps the layer's output, before the skip sum
            out = out.clamp(-self.conv_clamp, self.conv_clamp)
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class StyleGenerator(nn.Module):
    """What every style-based generator here shares: the mapping network (z and an optional label to
    w), label sampling, truncation and the rosinality-style call. Subclasses add ``synthesis``.

    Args:
        cfg: the architecture (``GeneratorConfig`` or ``StyleGAN3Config``).
    """

    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.size, self.style_dim = cfg.size, cfg.style_dim
        self.z_dim = cfg.z_dim or cfg.style_dim
        self.n_latent = cfg.num_ws
        layers: List[nn.Module] = [PixelNorm()]
        # conditional (NVIDIA's layout): the embedded label, normalised like z, is joined to z, so
        # the first mapping layer reads z_dim + style_dim features
        in_dims = [self.z_dim + (cfg.style_dim if cfg.conditional else 0)] + [cfg.style_dim] * (cfg.n_mlp - 1)
        layers += [EqualLinear(d, cfg.style_dim, lr_mul=cfg.lr_mlp, activation=True) for d in in_dims]
        self.style = nn.Sequential(*layers)
        if cfg.conditional:
            self.embed = EqualLinear(cfg.c_dim, cfg.style_dim)
            if cfg.label_combos:
                # the joint label distribution of the training data: rows of labels, then probability
                self.register_buffer("label_dist", torch.zeros(cfg.label_combos, cfg.c_dim + 1))

    @property
    def num_ws(self) -> int:
        return self.n_latent

    @property
    def conditional(self) -> bool:
        return self.cfg.conditional

    def mapping(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Maps z ``[..., z_dim]`` to w ``[..., style_dim]`` (PixelNorm + MLP per vector).

        Args:
            z: latents ``[..., z_dim]`` (``z_dim`` is ``style_dim`` unless the config says otherwise).
            c: labels ``[..., c_dim]`` of a conditional generator (ignored when unconditional). None
                gives the all-zero label: a fixed, label-free code (what an encoder's query tokens use);
                to sample as the training data is labelled, use ``sample_w``.
        """
        if z.shape[-1] != self.z_dim:
            raise ValueError(f"z must be [..., {self.z_dim}], got {tuple(z.shape)}")
        shape = (*z.shape[:-1], self.style_dim)
        z = z.reshape(-1, self.z_dim)
        if not self.conditional:
            return self.style(z).reshape(shape)
        if c is None:
            c = z.new_zeros(z.shape[0], self.cfg.c_dim)
        c = c.reshape(-1, self.cfg.c_dim).to(z)
        if c.shape[0] != z.shape[0]:
            raise ValueError(f"{z.shape[0]} latents but {c.shape[0]} labels")
        x = torch.cat([self.style[0](z), self.style[0](self.embed(c))], 1)
        return self.style[1:](x).reshape(shape)

    def sample_labels(self, n: int, generator: Optional[torch.Generator] = None,
                      given: Optional[Mapping[str, float]] = None) -> Optional[torch.Tensor]:
        """Labels ``[n, c_dim]`` drawn as the training data's were (its joint distribution, stored in
        ``label_dist``; uniform one-hot classes without one); None for an unconditional generator.
        Drawn on the CPU with ``generator`` (default: the global RNG).

        Args:
            n: how many.
            generator: the RNG.
            given: fixed values by label name (e.g. ``{"Smiling": 1}``); the other labels are drawn
                from the joint distribution conditioned on them.
        """
        if not self.conditional:
            if given:
                raise ValueError("this generator is not conditional: it takes no labels")
            return None
        if not self.cfg.label_combos:
            if given:
                raise ValueError("this generator's labels are one-hot classes without names: choose a class")
            cls = torch.randint(self.cfg.c_dim, (n,), generator=generator)
            return F.one_hot(cls, self.cfg.c_dim).float()
        table = self.label_dist.detach().float().cpu()
        keep = torch.ones(len(table), dtype=torch.bool)
        names = list(self.cfg.label_names)
        for name, value in (given or {}).items():
            if name not in names:
                raise ValueError(f"no label {name!r}; this generator's labels are {', '.join(names) or '(unnamed)'}")
            keep &= table[:, names.index(name)] == float(value)
        probs = table[:, -1].clamp_min(0) * keep
        if not probs.sum() > 0:
            wanted = ", ".join(f"{k}={v:g}" for k, v in (given or {}).items())
            raise ValueError(f"no training label combination has {wanted}" if given
                             else "this conditional generator has no stored label distribution")
        rows = torch.multinomial(probs, n, replacement=True, generator=generator)
        return table[rows, :-1].contiguous()

    def class_labels(self, n: int, cls: int) -> torch.Tensor:
        """``n`` one-hot labels of class ``cls`` (NVIDIA-style class-conditional generators)."""
        if not self.conditional:
            raise ValueError("this generator is not conditional: it takes no class")
        if self.cfg.label_combos:
            raise ValueError("this generator is conditioned on named labels, not classes: fix them by name")
        if not 0 <= cls < self.cfg.c_dim:
            raise ValueError(f"class {cls} is out of range: this generator has classes 0..{self.cfg.c_dim - 1}")
        return F.one_hot(torch.full((n,), int(cls)), self.cfg.c_dim).float()

    def sample_w(self, z: torch.Tensor, c: Optional[torch.Tensor] = None,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """w ``[N, style_dim]`` of random samples: ``mapping(z, c)``, with labels drawn by
        ``sample_labels`` when a conditional generator gets none (sampling "unconditionally")."""
        if self.conditional and c is None:
            c = self.sample_labels(z.shape[0], generator)
        return self.mapping(z, c.to(z) if c is not None else None)

    @torch.no_grad()
    def mean_latent(self, n: int = 4096, seed: int = 0) -> torch.Tensor:
        """Mean of mapped random z ``[style_dim]`` (deterministic for a seed; a conditional
        generator's labels are drawn from its label distribution)."""
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=g).to(self.latent_avg)
        return self.sample_w(z, generator=g).mean(0)

    def forward(self, styles: Sequence[torch.Tensor], input_is_latent: bool = False,
                truncation: float = 1.0, truncation_latent: Optional[torch.Tensor] = None,
                inject_index: Optional[int] = None, noise=None, randomize_noise: bool = True,
                return_latents: bool = False, c: Optional[torch.Tensor] = None):
        """rosinality-compatible call: ``G([z or w or ws], ...) -> (img, ws or None)``.

        Args:
            styles: one or two tensors: z/w ``[N, style_dim]`` or ws ``[N, num_ws', style_dim]``.
                Two give style mixing at ``inject_index`` (random when None).
            input_is_latent: styles are already w (skip mapping).
            truncation: psi; < 1 pulls w toward ``truncation_latent`` (default ``latent_avg``).
            noise, randomize_noise: see ``synthesis``.
            return_latents: also return the W+ that was rendered.
            c: labels ``[N, c_dim]`` of a conditional generator (for every mapped style).

        Returns:
            (img ``[N, 3, size, size]``, ws ``[N, num_ws, style_dim]`` or None).
        """
        if not input_is_latent:
            styles = [self.mapping(s, c) for s in styles]
        if truncation < 1:
            t = self.latent_avg if truncation_latent is None else truncation_latent
            styles = [t + truncation * (s - t) for s in styles]
        if len(styles) < 2:
            s = styles[0]
            ws = s.unsqueeze(1).repeat(1, self.n_latent, 1) if s.ndim < 3 else s
        else:
            if inject_index is None:
                inject_index = random.randint(1, self.n_latent - 1)
            a, b = styles[0], styles[1]
            a = a.unsqueeze(1).repeat(1, inject_index, 1) if a.ndim < 3 else a[:, :inject_index]
            b = (b.unsqueeze(1).repeat(1, self.n_latent - inject_index, 1) if b.ndim < 3
                 else b[:, inject_index:self.n_latent])
            ws = torch.cat([a, b], 1)
        img = self.synthesis(ws, noise=noise, randomize_noise=randomize_noise)
        return img, (ws if return_latents else None)



class Generator(StyleGenerator):
    """StyleGAN2 synthesis + mapping network.

    Args:
        cfg: architecture.
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__(cfg)
        bk, clamp = cfg.blur_kernel, cfg.conv_clamp
        self.input = ConstantInput(cfg.channel(4))
        self.conv1 = StyledConv(cfg.channel(4), cfg.channel(4), 3, cfg.style_dim, blur_kernel=bk, conv_clamp=clamp)
        self.to_rgb1 = ToRGB(cfg.channel(4), cfg.style_dim, upsample=False, conv_clamp=clamp)
        self.log_size = cfg.log_size
        self.num_layers = cfg.num_noises

        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for layer_idx in range(self.num_layers):
            res = (layer_idx + 5) // 2
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(1, 1, 2 ** res, 2 ** res))
        in_ch = cfg.channel(4)
        for i in range(3, self.log_size + 1):
            out_ch = cfg.channel(2 ** i)
            self.convs.append(StyledConv(in_ch, out_ch, 3, cfg.style_dim, upsample=True, blur_kernel=bk,
                                         conv_clamp=clamp))
            self.convs.append(StyledConv(out_ch, out_ch, 3, cfg.style_dim, blur_kernel=bk, conv_clamp=clamp))
            self.to_rgbs.append(ToRGB(out_ch, cfg.style_dim, blur_kernel=bk, conv_clamp=clamp))
            in_ch = out_ch
        self.register_buffer("latent_avg", torch.zeros(cfg.style_dim))

    def stored_noise(self) -> List[torch.Tensor]:
        return [getattr(self.noises, f"noise_{i}") for i in range(self.num_layers)]

    def synthesis(self, ws: torch.Tensor, noise: Optional[Sequence[Optional[torch.Tensor]]] = None,
                  randomize_noise: bool = False) -> torch.Tensor:
        """Renders W+ codes.

        Args:
            ws: ``[N, num_ws', style_dim]`` with ``num_ws' >= num_ws``; rows past ``num_ws`` are
                ignored, as in the official generator.
            noise: per-layer noise maps, overriding the stored/random choice.
            randomize_noise: fresh Gaussian noise instead of the stored ``noises.noise_i`` buffers.

        Returns:
            img ``[N, 3, size, size]``, nominally in [-1, 1] (not clamped).
        """
        if ws.ndim != 3 or ws.shape[1] < self.n_latent or ws.shape[2] != self.style_dim:
            raise ValueError(f"ws must be [N, >={self.n_latent}, {self.style_dim}], got {tuple(ws.shape)}")
        if noise is None:
            noise = [None] * self.num_layers if randomize_noise else self.stored_noise()
        out = self.input(ws.shape[0])
        out = self.conv1(out, ws[:, 0], noise=noise[0])
        skip = self.to_rgb1(out, ws[:, 1])
        i = 1
        for conv_up, conv, noise1, noise2, to_rgb in zip(self.convs[::2], self.convs[1::2], noise[1::2],
                                                         noise[2::2], self.to_rgbs):
            out = conv_up(out, ws[:, i], noise=noise1)
            out = conv(out, ws[:, i + 1], noise=noise2)
            skip = to_rgb(out, ws[:, i + 2], skip)
            i += 2
        return skip

class ConvLayer(nn.Sequential):
    """[Blur] + EqualConv2d + [FusedLeakyReLU | ScaledLeakyReLU]; indices as in rosinality."""

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int, downsample: bool = False,
                 blur_kernel: Sequence[int] = (1, 3, 3, 1), bias: bool = True, activate: bool = True):
        layers: List[nn.Module] = []
        if downsample:
            p = (len(blur_kernel) - 2) + (kernel_size - 1)
            layers.append(Blur(blur_kernel, pad=((p + 1) // 2, p // 2)))
            stride, padding = 2, 0
        else:
            stride, padding = 1, kernel_size // 2
        layers.append(EqualConv2d(in_ch, out_ch, kernel_size, padding=padding, stride=stride,
                                  bias=bias and not activate))
        if activate:
            layers.append(FusedLeakyReLU(out_ch) if bias else ScaledLeakyReLU())
        super().__init__(*layers)


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, blur_kernel: Sequence[int] = (1, 3, 3, 1)):
        super().__init__()
        self.conv1 = ConvLayer(in_ch, in_ch, 3)
        self.conv2 = ConvLayer(in_ch, out_ch, 3, downsample=True, blur_kernel=blur_kernel)
        self.skip = ConvLayer(in_ch, out_ch, 1, downsample=True, activate=False, bias=False,
                              blur_kernel=blur_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.conv2(self.conv1(x)) + self.skip(x)) / math.sqrt(2)


class Discriminator(nn.Module):
    """StyleGAN2 residual discriminator with minibatch standard deviation.

    Args:
        cfg: architecture (same config as the generator it trains against).
        channels: the discriminator's own widths for resolutions 4, 8, ..., size (empty: the
            generator's, ``cfg.channel``).
    """

    def __init__(self, cfg: GeneratorConfig, channels: Sequence[int] = ()):
        super().__init__()
        self.cfg = cfg
        if channels and len(channels) != cfg.log_size - 1:
            raise ValueError(f"discriminator channels need {cfg.log_size - 1} widths (4..{cfg.size} px), "
                             f"got {len(channels)}")
        width = (lambda res: int(channels[int(math.log2(res)) - 2])) if channels else cfg.channel
        convs: List[nn.Module] = [ConvLayer(3, width(cfg.size), 1)]
        in_ch = width(cfg.size)
        for i in range(cfg.log_size, 2, -1):
            out_ch = width(2 ** (i - 1))
            convs.append(ResBlock(in_ch, out_ch, cfg.blur_kernel))
            in_ch = out_ch
        self.convs = nn.Sequential(*convs)
        self.stddev_group, self.stddev_feat = 4, 1
        self.final_conv = ConvLayer(in_ch + 1, width(4), 3)
        # conditional (NVIDIA's projection): the last layer gives cmap_dim features whose dot product
        # with the mapped label, / sqrt(cmap_dim), is the logit
        self.cmap_dim = width(4) if cfg.conditional else 1
        self.final_linear = nn.Sequential(
            EqualLinear(width(4) * 16, width(4), activation=True),
            EqualLinear(width(4), self.cmap_dim),
        )
        if cfg.conditional:
            self.c_embed = EqualLinear(cfg.c_dim, self.cmap_dim)
            self.c_mapping = nn.Sequential(PixelNorm(), *[EqualLinear(self.cmap_dim, self.cmap_dim, lr_mul=cfg.lr_mlp,
                                                                      activation=True) for _ in range(2)])

    def forward(self, img: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """img ``[N, 3, size, size]`` (and labels ``c`` ``[N, c_dim]`` when conditional) -> logits
        ``[N, 1]``; N must be divisible by min(N, 4)."""
        if self.cfg.conditional and (c is None or c.shape != (img.shape[0], self.cfg.c_dim)):
            raise ValueError(f"a conditional discriminator needs labels [{img.shape[0]}, {self.cfg.c_dim}], "
                             f"got {None if c is None else tuple(c.shape)}")
        out = self.convs(img)
        n, ch, h, w = out.shape
        group = min(n, self.stddev_group)
        if n % group:
            raise ValueError(f"discriminator batch {n} must be divisible by {group}")
        std = out.view(group, -1, self.stddev_feat, ch // self.stddev_feat, h, w)
        std = torch.sqrt(std.var(0, unbiased=False) + 1e-8).mean([2, 3, 4], keepdim=True).squeeze(2)
        out = torch.cat([out, std.repeat(group, 1, h, w)], 1)
        out = self.final_conv(out)
        out = self.final_linear(out.view(n, -1))
        if not self.cfg.conditional:
            return out
        cmap = self.c_mapping(self.c_embed(c.to(out)))
        return (out * cmap).sum(1, keepdim=True) / math.sqrt(self.cmap_dim)
