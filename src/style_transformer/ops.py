"""StyleGAN2's custom ops in pure PyTorch: a readable reference and a fast path for each.

* ``upfirdn2d``: upsample (zero insertion), pad, FIR filter, downsample.
* ``fused_leaky_relu``: bias + leaky ReLU + gain.
* ``modulated_conv2d``: StyleGAN2 weight (de)modulation.
* ``filtered_lrelu``: StyleGAN3's bias, upsample, leaky ReLU, clamp, downsample.

``impl="ref"`` follows the official pure-PyTorch code path step by step (the "native" ops of
rosinality/stylegan2-pytorch and the grouped-convolution modulated conv of the official code).
``impl="fast"`` computes the same function with fewer passes and better-shaped kernels, and is
differentiable to second order (lazy R1 needs it). Neither path compiles anything; both run on any
device the tensors live on. ``IMPLS`` lists the valid names.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

IMPLS = ("fast", "ref")
PadArg = Union[int, Sequence[int]]


def _exporting() -> bool:
    """Whether the op is being recorded into a graph (ONNX export, TorchScript tracing): the fast
    path then keeps to ops whose weights do not depend on the batch, and to no Python loops over it."""
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()


def _check_impl(impl: str) -> None:
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")


def _parse_pad(pad: PadArg) -> Tuple[int, int, int, int]:
    """Returns (x0, x1, y0, y1) from an int, (p0, p1) for both axes, or (x0, x1, y0, y1)."""
    if isinstance(pad, int):
        return pad, pad, pad, pad
    pad = tuple(int(p) for p in pad)
    if len(pad) == 2:
        return pad[0], pad[1], pad[0], pad[1]
    if len(pad) == 4:
        return pad  # type: ignore[return-value]
    raise ValueError(f"pad must have 1, 2 or 4 entries, got {pad}")


def make_kernel(taps: Sequence[float], gain: float = 1.0) -> torch.Tensor:
    """Separable 2-D FIR kernel from 1-D taps, normalised to sum ``gain``.

    Args:
        taps: 1-D filter taps, e.g. (1, 3, 3, 1).
        gain: sum of the returned kernel (``up**2`` keeps the mean when upsampling).

    Returns:
        Kernel ``[k, k]`` float32.
    """
    k = torch.tensor(taps, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum() * gain


# ---------------------------------------------------------------------------------------------
# upfirdn2d
# ---------------------------------------------------------------------------------------------

def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1,
              pad: PadArg = 0, impl: str = "fast") -> torch.Tensor:
    """Upsample, pad, filter (true convolution) and downsample a batch of images.

    Args:
        x: ``[N, C, H, W]``.
        kernel: ``[kh, kw]`` FIR filter, same dtype/device as ``x``.
        up: integer upsampling factor (zero insertion).
        down: integer downsampling factor (keep every ``down``-th sample).
        pad: padding after upsampling, negative values crop; int, (p0, p1) or (x0, x1, y0, y1).
        impl: ``"fast"`` or ``"ref"``.

    Returns:
        ``[N, C, (H*up + y0 + y1 - kh)//down + 1, (W*up + x0 + x1 - kw)//down + 1]``.
    """
    _check_impl(impl)
    assert x.ndim == 4 and kernel.ndim == 2, (x.shape, kernel.shape)
    x0, x1, y0, y1 = _parse_pad(pad)
    if impl == "ref":
        return _upfirdn2d_ref(x, kernel, up, down, x0, x1, y0, y1)
    return _upfirdn2d_fast(x, kernel, up, down, x0, x1, y0, y1)


def _upfirdn2d_ref(x, kernel, up, down, x0, x1, y0, y1):
    # The official "native" op: one image plane per batch row, explicit zero insertion.
    n, c, h, w = x.shape
    kh, kw = kernel.shape
    out = x.reshape(n * c, h, 1, w, 1)
    out = F.pad(out, [0, up - 1, 0, 0, 0, up - 1])
    out = out.reshape(n * c, 1, h * up, w * up)
    out = F.pad(out, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
    out = out[:, :, max(-y0, 0): out.shape[2] - max(-y1, 0), max(-x0, 0): out.shape[3] - max(-x1, 0)]
    weight = torch.flip(kernel, [0, 1]).view(1, 1, kh, kw)
    out = F.conv2d(out, weight)
    out = out[:, :, ::down, ::down]
    return out.reshape(n, c, out.shape[2], out.shape[3])


def _upfirdn2d_fast(x, kernel, up, down, x0, x1, y0, y1):
    # Depthwise convolution over the channel axis (no reshape to N*C planes). Upsampling uses a
    # strided transposed convolution, which skips the multiplications by inserted zeros; the
    # crop/pad that follows aligns it with zero insertion + pad + filter. (The channel count is a
    # constant of the layer: int() keeps it one when a graph is exported, so the filter's shape is known.)
    c = int(x.shape[1])
    kh, kw = kernel.shape
    if up > 1:
        weight = kernel.view(1, 1, kh, kw).expand(c, 1, kh, kw).contiguous()
        out = F.conv_transpose2d(x, weight, stride=up, groups=c)
        out = F.pad(out, [x0 - (kw - 1), up + x1 - kw, y0 - (kh - 1), up + y1 - kh])
        if down > 1:
            out = out[:, :, ::down, ::down]
        return out
    # a contiguous depthwise weight keeps oneDNN on its fast depthwise kernel
    weight = torch.flip(kernel, [0, 1]).view(1, 1, kh, kw).expand(c, 1, kh, kw).contiguous()
    if x0 == x1 >= 0 and y0 == y1 >= 0:
        # symmetric padding inside the convolution: no padded copy of a large activation
        return F.conv2d(x, weight, stride=down, padding=(y0, x0), groups=c)
    return F.conv2d(F.pad(x, [x0, x1, y0, y1]), weight, stride=down, groups=c)


# ---------------------------------------------------------------------------------------------
# fused bias + leaky ReLU
# ---------------------------------------------------------------------------------------------

def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor, negative_slope: float = 0.2,
                     scale: float = math.sqrt(2), impl: str = "fast", inplace: bool = False) -> torch.Tensor:
    """``leaky_relu(x + bias, negative_slope) * scale`` with the bias on dim 1.

    Args:
        x: ``[N, C, ...]``.
        bias: ``[C]``.
        negative_slope: slope for negative inputs (> 0).
        scale: output gain (sqrt(2) keeps the signal variance, as in StyleGAN2).
        impl: ``"fast"`` or ``"ref"``.
        inplace: (fast path) overwrite ``x``, which the caller must own (e.g. a fresh conv
            output). Fresh large tensors cost page faults on CPU, so this is the quicker form.

    Returns:
        Tensor shaped like ``x``.
    """
    _check_impl(impl)
    bias = bias.view(1, -1, *([1] * (x.ndim - 2)))
    if impl == "ref" or _exporting():  # an exported graph has no autograd Function
        return F.leaky_relu(x + bias, negative_slope) * scale
    return _FusedLeakyReLU.apply(x, bias, negative_slope, scale, inplace)


class _FusedLeakyReLU(torch.autograd.Function):
    """One output buffer, activated in place; backward reads only the output's sign.

    The gain ``scale`` or ``scale*slope`` is piecewise constant, so the backward is linear in the
    incoming gradient and built from differentiable ops: double backward (R1) works.
    """

    @staticmethod
    def forward(ctx, x, bias, negative_slope, scale, inplace):
        if inplace:
            ctx.mark_dirty(x)
            out = x.add_(bias)
        else:
            out = x + bias
        F.leaky_relu_(out, negative_slope)
        out.mul_(scale)
        ctx.save_for_backward(out)
        ctx.negative_slope = negative_slope
        ctx.scale = scale
        ctx.bias_shape = bias.shape
        return out

    @staticmethod
    def backward(ctx, grad_out):
        (out,) = ctx.saved_tensors
        # one fused kernel for the piecewise gain (the output's sign is the input's); it is itself
        # differentiable in grad_out, which double backward needs
        grad_x = torch.ops.aten.leaky_relu_backward(grad_out, out, ctx.negative_slope, True) * ctx.scale
        dims = [d for d in range(grad_x.ndim) if d != 1]
        grad_bias = grad_x.sum(dims).view(ctx.bias_shape) if ctx.needs_input_grad[1] else None
        return grad_x, grad_bias, None, None, None


# ---------------------------------------------------------------------------------------------
# modulated convolution
# ---------------------------------------------------------------------------------------------

def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True,
                     upsample: bool = False, padding: int = 0, weight_gain: float = 1.0,
                     impl: str = "fast", weight_sq: Optional[torch.Tensor] = None,
                     weight_prepared: Optional[torch.Tensor] = None) -> torch.Tensor:
    """StyleGAN2 modulated convolution (Karras et al. 2020, eq. 1-3), before any blur.

    Args:
        x: ``[N, C_in, H, W]``.
        weight: ``[C_out, C_in, k, k]``.
        styles: ``[N, C_in]`` per-sample input-channel scales.
        demodulate: normalise each output channel's modulated weight to unit norm.
        upsample: transposed convolution with stride 2 (output ``2H + k - 2``, unblurred).
        padding: zero padding of the plain convolution (ignored when upsampling).
        weight_gain: the equalized-learning-rate scale applied to ``weight``.
        weight_sq: (fast path) precomputed ``weight.pow(2).sum([2, 3])`` ``[C_out, C_in]``.
        weight_prepared: (fast path) the weight as the convolution wants it: NHWC-strided, or
            ``weight.transpose(0, 1)`` contiguous when upsampling. Both extras depend only on the
            weights, so inference may cache them across calls.

    Returns:
        ``[N, C_out, H', W']``.
    """
    _check_impl(impl)
    n, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    assert styles.shape == (n, c_in), (styles.shape, (n, c_in))
    if impl == "fast":
        # NHWC: oneDNN's direct and transposed convolutions run markedly faster on it (1.3-1.7x for
        # the transposed ones on CPU); elementwise ops that follow keep the layout.
        x = x.contiguous(memory_format=torch.channels_last)
    if impl == "ref":
        # The official computation: scale, modulate and demodulate the weights per sample, then
        # one grouped convolution over the batch folded into channels.
        wgt = (weight * weight_gain).unsqueeze(0) * styles.view(n, 1, c_in, 1, 1)  # [N, C_out, C_in, k, k]
        if demodulate:
            wgt = wgt * torch.rsqrt(wgt.pow(2).sum([2, 3, 4]) + 1e-8).view(n, c_out, 1, 1, 1)
        xg = x.reshape(1, n * c_in, h, w)
        if upsample:
            wgt = wgt.transpose(1, 2).reshape(n * c_in, c_out, kh, kw)
            out = F.conv_transpose2d(xg, wgt, stride=2, groups=n)
        else:
            out = F.conv2d(xg, wgt.reshape(n * c_out, c_in, kh, kw), padding=padding, groups=n)
        return out.reshape(n, c_out, out.shape[2], out.shape[3])
    if demodulate and weight_sq is None:
        weight_sq = weight.pow(2).sum([2, 3])  # [C_out, C_in]
    large_acts = (c_in + c_out) * h * w > c_out * c_in * kh * kw
    # (a graph being exported takes the shared-weight branch below: its batch axis stays dynamic)
    if large_acts and not _exporting() and (n == 1 or c_in * c_out * h * w * kh * kw > _LOOP_MACS):
        # Large activations (high resolution): modulating the weight once per sample is the cheaper
        # side, for a batch as a loop over samples, which pays off only when each sample's
        # convolution is large. No reshape of x: reshaping a size-1 batch rewrites its strides and
        # loses NHWC.
        if n > 1:
            return torch.cat([modulated_conv2d(x[i: i + 1], weight, styles[i: i + 1], demodulate, upsample,
                                               padding, weight_gain, impl, weight_sq, weight_prepared)
                              for i in range(n)])
        s = styles * weight_gain  # fold the equalized-lr gain into the styles: one pass fewer
        coef = s.view(1, c_in).expand(c_out, c_in)
        if demodulate:
            # sum_{i,k} (w[o,i,k] s[i])^2 = (s^2) @ (sum_k w^2)^T  -> [C_out]
            coef = coef * torch.rsqrt(s.pow(2) @ weight_sq.t() + 1e-8).view(c_out, 1)
        if upsample:
            w_t = weight.transpose(0, 1) if weight_prepared is None else weight_prepared
            return F.conv_transpose2d(x, w_t * coef.t().reshape(c_in, c_out, 1, 1), stride=2)
        return _conv2d_nhwc(x, weight * coef.reshape(c_out, c_in, 1, 1), padding)
    # Small activations (low resolution): scale them instead and run one batched convolution with
    # the shared weight, then demodulate the output.
    s = styles * weight_gain
    out = x * s.view(n, c_in, 1, 1)
    if weight_prepared is None:
        weight_prepared = weight.transpose(0, 1) if upsample else weight
    if upsample:
        out = F.conv_transpose2d(out, weight_prepared, stride=2)
    else:
        out = _conv2d_nhwc(out, weight_prepared, padding)
    if demodulate:
        out.mul_(torch.rsqrt(s.pow(2) @ weight_sq.t() + 1e-8).view(n, c_out, 1, 1))  # the conv output is ours
    return out


# Per-sample multiply-accumulates above which a batch is convolved sample by sample with modulated
# weights (measured: 256-px inversion layers gain; small 64-px training layers lose 20%).
_LOOP_MACS = 2e8


def _conv2d_nhwc(x: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """conv2d for NHWC ``x``; a 1x1 kernel runs as one matmul over pixels (oneDNN is slow for
    the 3-output ToRGB convolutions: a skinny GEMM is memory-bound and several times faster)."""
    if weight.shape[-2:] == (1, 1) and x.is_contiguous(memory_format=torch.channels_last):
        out = F.linear(x.permute(0, 2, 3, 1), weight[:, :, 0, 0])  # (N, H, W, C_out)
        return out.permute(0, 3, 1, 2)  # NHWC-strided [N, C_out, H, W]
    return F.conv2d(x, weight, padding=padding)


# ---------------------------------------------------------------------------------------------
# filtered_lrelu (StyleGAN3)
# ---------------------------------------------------------------------------------------------

def filtered_lrelu(x: torch.Tensor, fu: Optional[torch.Tensor], fd: Optional[torch.Tensor], b: torch.Tensor,
                   up: int = 1, down: int = 1, padding: Sequence[int] = (0, 0, 0, 0), gain: float = math.sqrt(2),
                   slope: float = 0.2, clamp: Optional[float] = None, impl: str = "fast") -> torch.Tensor:
    """StyleGAN3's activation: add the bias, upsample by ``up`` with the low-pass ``fu`` (gain up^2),
    apply ``leaky_relu(., slope) * gain`` and clamp to +-``clamp``, then low-pass with ``fd`` and
    keep every ``down``-th sample.

    Args:
        x: ``[N, C, H, W]``.
        fu, fd: FIR filters, 1-D ``[taps]`` (separable, applied along both axes) or 2-D ``[taps, taps]``
            (StyleGAN3-R's radial down filter); None is the identity.
        b: bias ``[C]``.
        padding: (x0, x1, y0, y1) of the upsampled signal before ``fu`` (negative crops).
        impl: ``"ref"`` runs zero insertion, padding and full-rate 2-D convolutions as NVIDIA's
            reference does; ``"fast"`` runs the same function as strided 1-D (transposed)
            convolutions per axis, never computing samples that downsampling drops.

    Returns:
        ``[N, C, H', W']``.
    """
    _check_impl(impl)
    x0, x1, y0, y1 = _parse_pad(padding)
    if impl == "ref":
        return _filtered_lrelu_ref(x, fu, fd, b, up, down, (x0, x1, y0, y1), gain, slope, clamp)
    return _filtered_lrelu_fast(x, fu, fd, b, up, down, (x0, x1, y0, y1), gain, slope, clamp)


def _as_2d(f: Optional[torch.Tensor], gain: float, like: torch.Tensor) -> torch.Tensor:
    if f is None:
        return like.new_full((1, 1), gain)
    f = f.to(like)
    return torch.outer(f, f) * gain if f.ndim == 1 else f * gain


def _activate(x: torch.Tensor, gain: float, slope: float, clamp: Optional[float]) -> torch.Tensor:
    x = F.leaky_relu(x, slope) * gain if slope != 1 else x * gain
    return x.clamp(-clamp, clamp) if clamp is not None else x


def _filtered_lrelu_ref(x, fu, fd, b, up, down, pad, gain, slope, clamp):
    x = x + b.to(x).view(1, -1, 1, 1)
    x = _upfirdn2d_ref(x, _as_2d(fu, up * up, x), up, 1, *pad)
    x = _activate(x, gain, slope, clamp)
    return _upfirdn2d_ref(x, _as_2d(fd, 1.0, x), 1, down, 0, 0, 0, 0)


def _fir_axis(x: torch.Tensor, f: torch.Tensor, up: int, down: int, p0: int, p1: int) -> torch.Tensor:
    """One axis of upfirdn along the last axis of ``[N, C, H, W]``, as a depthwise (transposed)
    convolution over N*C planes: with ``up > 1`` zero-insert, pad p0/p1 (negative crops) and convolve
    with 1-D ``f`` (every sample kept); with ``up == 1`` convolve and keep every ``down``-th sample
    (no padding: ``filtered_lrelu`` pads before its down-filter pass)."""
    n, c, h, w = x.shape
    taps = f.shape[0]
    planes = x.reshape(n * c, 1, h, w)
    if up > 1:
        # y[j] = sum_n x[n] f[j + taps-1-p0 - up*n]: a transposed convolution, then a window
        full = F.conv_transpose2d(planes, f.view(1, 1, 1, taps), stride=(1, up))
        out_len = w * up + p0 + p1 - taps + 1
        start = taps - 1 - p0
        lo, hi = max(0, -start), max(0, start + out_len - full.shape[3])
        if lo or hi:
            full = F.pad(full, (lo, hi))
        out = full.narrow(3, start + lo, out_len)
    else:
        assert p0 == p1 == 0, "the down-filter pass takes no padding"  # filtered_lrelu pads before it
        out = F.conv2d(planes, f.flip(0).view(1, 1, 1, taps), stride=(1, down))
    return out.reshape(n, c, out.shape[2], out.shape[3])


def _fir_matrix(f: torch.Tensor, length: int, up: int = 1, down: int = 1, p0: int = 0, p1: int = 0) -> torch.Tensor:
    """The banded matrix ``[length, out]`` of one axis of upfirdn (``y = x @ A``), made by running
    ``_fir_axis`` on the identity: on a CPU one matmul beats a depthwise convolution of the same
    function by an order of magnitude."""
    eye = torch.eye(length, dtype=f.dtype, device=f.device)[None, None]  # rows are unit impulses
    return _fir_axis(eye, f, up, down, p0, p1)[0, 0]


def _filtered_lrelu_fast(x, fu, fd, b, up, down, pad, gain, slope, clamp):
    x0, x1, y0, y1 = pad
    x = x + b.to(x).view(1, -1, 1, 1)
    if fu is None:
        if up != 1:
            raise ValueError("upsampling needs a filter")
        x = F.pad(x, [max(x0, 0), max(x1, 0), max(y0, 0), max(y1, 0)])
        x = x[:, :, max(-y0, 0): x.shape[2] - max(-y1, 0), max(-x0, 0): x.shape[3] - max(-x1, 0)]
    elif fu.ndim == 1:
        f = fu.to(x) * up  # the gain up^2, split over the two axes
        x = x @ _fir_matrix(f, x.shape[3], up=up, p0=x0, p1=x1)
        x = _fir_matrix(f, x.shape[2], up=up, p0=y0, p1=y1).t() @ x
    else:
        x = _upfirdn2d_ref(x, fu.to(x) * (up * up), up, 1, x0, x1, y0, y1)
    x = _activate(x, gain, slope, clamp)
    if fd is None:
        return x[:, :, ::down, ::down] if down > 1 else x
    if fd.ndim == 1:
        f = fd.to(x)
        x = x @ _fir_matrix(f, x.shape[3], down=down)
        return _fir_matrix(f, x.shape[2], down=down).t() @ x
    n, c, h, w = x.shape
    k = fd.to(x).flip([0, 1])[None, None]
    out = F.conv2d(x.reshape(n * c, 1, h, w), k, stride=down)
    return out.reshape(n, c, out.shape[2], out.shape[3])
