"""Ops: both implementations against naive float64 references, gradcheck, and double backward."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from style_transformer.ops import fused_leaky_relu, make_kernel, modulated_conv2d, upfirdn2d


def naive_upfirdn2d(x: np.ndarray, k: np.ndarray, up: int, down: int, pad) -> np.ndarray:
    """Direct definition with loops, float64: zero-insert, pad (negative crops), convolve, decimate."""
    x0, x1, y0, y1 = pad
    n, c, h, w = x.shape
    u = np.zeros((n, c, h * up, w * up))
    u[:, :, ::up, ::up] = x
    hp, wp = h * up + y0 + y1, w * up + x0 + x1
    p = np.zeros((n, c, hp, wp))
    for i in range(hp):
        for j in range(wp):
            si, sj = i - y0, j - x0
            if 0 <= si < h * up and 0 <= sj < w * up:
                p[:, :, i, j] = u[:, :, si, sj]
    kh, kw = k.shape
    oh, ow = hp - kh + 1, wp - kw + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            acc = 0.0
            for a in range(kh):
                for b in range(kw):
                    # true convolution: the kernel is flipped
                    acc = acc + p[:, :, i + a, j + b] * k[kh - 1 - a, kw - 1 - b]
            out[:, :, i, j] = acc
    return out[:, :, ::down, ::down]


CASES = [
    (1, 1, (0, 0, 0, 0)),
    (2, 1, (2, 1, 2, 1)),   # ToRGB skip upsampling
    (1, 1, (1, 1, 1, 1)),   # blur after transposed conv
    (1, 2, (2, 2, 2, 2)),   # discriminator downsampling
    (1, 2, (1, 1, 1, 1)),   # 1x1 skip downsampling
    (2, 1, (-1, 0, 1, -2)),  # negative pads crop
    (2, 2, (1, 2, 0, 1)),
    (3, 1, (1, 0, 2, 1)),
    (1, 1, (1, 2, 0, 3)),   # no upsampling, padding unequal on both axes
    (1, 1, (1, 2, 1, 1)),   # unequal along x only
    (1, 1, (1, 1, 0, 2)),   # unequal along y only
    (1, 2, (0, 1, 2, 1)),
    (1, 1, (-1, 1, 1, -1)),
]


@pytest.mark.parametrize("impl", ["ref", "fast"])
@pytest.mark.parametrize("up,down,pad", CASES)
def test_upfirdn2d_matches_naive_float64(impl, up, down, pad):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5, 6))
    k = rng.standard_normal((4, 3))  # asymmetric, non-square: catches flips and axis swaps
    want = naive_upfirdn2d(x, k, up, down, pad)
    got = upfirdn2d(torch.from_numpy(x), torch.from_numpy(k), up=up, down=down, pad=pad, impl=impl)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("impl", ["ref", "fast"])
@pytest.mark.parametrize("up,down,pad", [(2, 1, (2, 1)), (1, 2, (1, 1)), (1, 1, (1, 1))])
def test_upfirdn2d_gradcheck(impl, up, down, pad):
    x = torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True)
    k = make_kernel((1, 3, 3, 1), gain=up ** 2).double()
    f = lambda t: upfirdn2d(t, k, up=up, down=down, pad=pad, impl=impl)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x,))
    assert torch.autograd.gradgradcheck(f, (x,))


def test_upfirdn2d_fast_equals_ref_float32():
    x = torch.randn(3, 16, 17, 9)
    k = make_kernel((1, 3, 3, 1), gain=4)
    for up, down, pad in CASES:
        torch.testing.assert_close(upfirdn2d(x, k, up, down, pad, impl="fast"),
                                   upfirdn2d(x, k, up, down, pad, impl="ref"), rtol=1e-5, atol=1e-5)


def test_upfirdn2d_rejects_unknown_impl():
    with pytest.raises(ValueError, match="impl"):
        upfirdn2d(torch.zeros(1, 1, 2, 2), torch.ones(1, 1), impl="cuda_magic")


@pytest.mark.parametrize("impl", ["ref", "fast"])
@pytest.mark.parametrize("shape", [(3, 5), (2, 4, 3, 3)])
def test_fused_leaky_relu_closed_form(impl, shape):
    x = torch.randn(*shape, dtype=torch.float64)
    b = torch.randn(shape[1], dtype=torch.float64)
    pre = x + b.view(1, -1, *([1] * (len(shape) - 2)))
    want = torch.where(pre > 0, pre, 0.2 * pre) * math.sqrt(2)
    torch.testing.assert_close(fused_leaky_relu(x, b, impl=impl), want, rtol=0, atol=1e-12)
    torch.testing.assert_close(fused_leaky_relu(x, b, 0.1, 3.0, impl=impl),
                               torch.where(pre > 0, pre, 0.1 * pre) * 3.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("impl", ["ref", "fast"])
def test_fused_leaky_relu_gradcheck_and_double_backward(impl):
    # keep pre-activations away from the kink at 0, where finite differences are meaningless
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    x = (x + 0.3 * x.sign()).requires_grad_(True)
    b = (0.01 * torch.randn(3, dtype=torch.float64)).requires_grad_(True)
    f = lambda t, bb: fused_leaky_relu(t, bb, impl=impl)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x, b))
    assert torch.autograd.gradgradcheck(f, (x, b))


def naive_modulated_conv(x, w, s, demod, up, padding):
    """float64 per-sample convolution with an explicitly modulated weight (the paper's eq. 1-3)."""
    outs = []
    for i in range(x.shape[0]):
        wi = w * s[i].view(1, -1, 1, 1)
        if demod:
            wi = wi / torch.sqrt((wi ** 2).sum([1, 2, 3], keepdim=True) + 1e-8)
        if up:
            outs.append(F.conv_transpose2d(x[i: i + 1], wi.transpose(0, 1), stride=2))
        else:
            outs.append(F.conv2d(x[i: i + 1], wi, padding=padding))
    return torch.cat(outs)


# (C_in, C_out, H): the fast path modulates the weight when activations outweigh it (first) and the
# activations otherwise (second); both branches are checked.
SHAPES = [(4, 6, 5), (8, 8, 2)]


@pytest.mark.parametrize("impl", ["ref", "fast"])
@pytest.mark.parametrize("demod,up,ksize", [(True, False, 3), (True, True, 3), (False, False, 1)])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("c_in,c_out,size", SHAPES)
def test_modulated_conv2d(impl, demod, up, ksize, batch, c_in, c_out, size):
    x = torch.randn(batch, c_in, size, size, dtype=torch.float64)
    w = torch.randn(c_out, c_in, ksize, ksize, dtype=torch.float64) / math.sqrt(c_in * ksize * ksize)
    s = torch.randn(batch, c_in, dtype=torch.float64) + 1
    want = naive_modulated_conv(x, w, s, demod, up, ksize // 2)
    got = modulated_conv2d(x, w, s, demodulate=demod, upsample=up, padding=ksize // 2, impl=impl)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_modulated_conv2d_per_sample_branch_for_large_convolutions():
    # large enough per sample for the fast path's sample-by-sample branch (see ops._LOOP_MACS)
    from style_transformer import ops

    c, size = 128, 48
    assert c * c * size * size * 9 > ops._LOOP_MACS
    x = torch.randn(2, c, size, size, dtype=torch.float64)
    w = torch.randn(c, c, 3, 3, dtype=torch.float64) / math.sqrt(c * 9)
    s = torch.randn(2, c, dtype=torch.float64) + 1
    for up in (False, True):
        want = naive_modulated_conv(x, w, s, True, up, 1)
        torch.testing.assert_close(modulated_conv2d(x, w, s, upsample=up, padding=1, impl="fast"), want,
                                   rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("impl", ["ref", "fast"])
@pytest.mark.parametrize("c_in,c_out,size", [(3, 2, 4), (6, 6, 2)])
def test_modulated_conv2d_gradcheck(impl, c_in, c_out, size):
    x = torch.randn(2, c_in, size, size, dtype=torch.float64, requires_grad=True)
    w = torch.randn(c_out, c_in, 3, 3, dtype=torch.float64, requires_grad=True)
    s = (torch.randn(2, c_in, dtype=torch.float64) + 1).requires_grad_(True)
    for up in (False, True):
        f = lambda a, b, c: modulated_conv2d(a, b, c, upsample=up, padding=1, impl=impl)  # noqa: E731
        assert torch.autograd.gradcheck(f, (x, w, s))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fast_matches_ref_on_cuda():
    # full float32 on both paths: cuDNN's default TF32 convolutions round to 10-bit mantissas (~1e-3)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        old = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        try:
            _fast_matches_ref_on_cuda()
        finally:
            torch.backends.cuda.matmul.allow_tf32 = old


def _fast_matches_ref_on_cuda():
    x = torch.randn(4, 8, 16, 16, device="cuda")
    k = make_kernel((1, 3, 3, 1), gain=4).cuda()
    for up, down, pad in CASES:
        torch.testing.assert_close(upfirdn2d(x, k, up, down, pad, impl="fast"),
                                   upfirdn2d(x, k, up, down, pad, impl="ref"), rtol=1e-4, atol=1e-4)
    b = torch.randn(8, device="cuda")
    torch.testing.assert_close(fused_leaky_relu(x, b, impl="fast"), fused_leaky_relu(x, b, impl="ref"))
    w = torch.randn(6, 8, 3, 3, device="cuda") / 8
    s = torch.randn(4, 8, device="cuda") + 1
    torch.testing.assert_close(modulated_conv2d(x, w, s, padding=1, impl="fast"),
                               modulated_conv2d(x, w, s, padding=1, impl="ref"), rtol=1e-4, atol=1e-4)


def test_make_kernel_is_the_normalised_outer_product():
    k = make_kernel((1, 2))
    assert k.dtype == torch.float32
    torch.testing.assert_close(k, torch.tensor([[1.0, 2.0], [2.0, 4.0]]) / 9, rtol=0, atol=1e-7)
    k4 = make_kernel((1, 3, 3, 1), gain=4)
    torch.testing.assert_close(k4, torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1])) / 16,
                               rtol=0, atol=1e-7)
    assert float(k4.sum()) == pytest.approx(4.0)


def test_upfirdn2d_pad_forms_and_defaults():
    x = torch.randn(1, 2, 5, 7, dtype=torch.float64)
    k = make_kernel((1, 3, 3, 1)).double()
    for impl in ("ref", "fast"):
        # one int: all four sides; two: (x0 = y0, x1 = y1); four: (x0, x1, y0, y1)
        torch.testing.assert_close(upfirdn2d(x, k, pad=2, impl=impl), upfirdn2d(x, k, pad=(2, 2, 2, 2), impl=impl))
        torch.testing.assert_close(upfirdn2d(x, k, pad=(1, 2), impl=impl), upfirdn2d(x, k, pad=(1, 2, 1, 2), impl=impl))
    default = upfirdn2d(x, k)  # up 1, down 1, no padding, the fast ops
    torch.testing.assert_close(default, torch.from_numpy(naive_upfirdn2d(x.numpy(), k.numpy(), 1, 1, (0, 0, 0, 0))))
    assert default.shape == (1, 2, 2, 4)
    with pytest.raises(ValueError, match="pad must have 1, 2 or 4 entries, got"):
        upfirdn2d(x, k, pad=(1, 2, 3))


@pytest.mark.parametrize("impl", ["ref", "fast"])
def test_fused_leaky_relu_in_place_writes_into_its_input(impl):
    x = torch.randn(2, 3, 4, 4)
    b = torch.randn(3)
    want = fused_leaky_relu(x.clone(), b, impl=impl)
    y = x.clone()
    out = fused_leaky_relu(y, b, impl=impl, inplace=True)
    torch.testing.assert_close(out, want)
    if impl == "fast":
        assert out.data_ptr() == y.data_ptr()  # no copy of a large activation


def _modulated_cases():
    # (batch, c_in, c_out, size, ksize): small activations (activations scaled), large ones (weights
    # modulated per sample) at batch 1 and 3
    return [(3, 8, 8, 2, 3), (1, 4, 6, 5, 3), (3, 4, 6, 5, 3), (2, 4, 6, 5, 1)]


@pytest.mark.parametrize("impl", ["ref", "fast"])
@pytest.mark.parametrize("batch,c_in,c_out,size,ksize", _modulated_cases())
def test_modulated_conv2d_weight_gain_and_cached_weights(impl, batch, c_in, c_out, size, ksize):
    """The equalized-lr gain scales the weight (every branch), and the fast path's cached extras
    (``weight_sq``, ``weight_prepared``) give what it computes without them."""
    g = torch.Generator().manual_seed(batch * 100 + size)
    x = torch.randn(batch, c_in, size, size, dtype=torch.float64, generator=g)
    w = torch.randn(c_out, c_in, ksize, ksize, dtype=torch.float64, generator=g)
    s = torch.randn(batch, c_in, dtype=torch.float64, generator=g) + 1
    gain = 1 / math.sqrt(c_in * ksize * ksize)
    for demod in (True, False):
        for up in (False, True):
            want = naive_modulated_conv(x, w * gain, s, demod, up, ksize // 2)
            got = modulated_conv2d(x, w, s, demodulate=demod, upsample=up, padding=ksize // 2, weight_gain=gain,
                                   impl=impl)
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
            if impl == "fast":
                prepared = w.transpose(0, 1).contiguous() if up else w.contiguous(memory_format=torch.channels_last)
                cached = modulated_conv2d(x, w, s, demodulate=demod, upsample=up, padding=ksize // 2,
                                          weight_gain=gain, impl=impl, weight_sq=w.pow(2).sum([2, 3]),
                                          weight_prepared=prepared)
                torch.testing.assert_close(cached, want, rtol=1e-10, atol=1e-10)


def test_modulated_conv2d_defaults():
    x = torch.randn(2, 4, 6, 6, dtype=torch.float64)
    w = torch.randn(5, 4, 3, 3, dtype=torch.float64)
    s = torch.randn(2, 4, dtype=torch.float64) + 1
    out = modulated_conv2d(x, w, s)  # demodulated, no upsampling, no padding, gain 1, the fast ops
    assert out.shape == (2, 5, 4, 4)
    torch.testing.assert_close(out, naive_modulated_conv(x, w, s, True, False, 0), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("impl", ["ref", "fast"])
def test_modulated_conv2d_non_square_inputs(impl):
    x = torch.randn(2, 4, 5, 7, dtype=torch.float64)
    w = torch.randn(6, 4, 3, 3, dtype=torch.float64) / 6
    s = torch.randn(2, 4, dtype=torch.float64) + 1
    for up in (False, True):
        want = naive_modulated_conv(x, w, s, True, up, 1)
        got = modulated_conv2d(x, w, s, upsample=up, padding=1, impl=impl)
        assert got.shape == want.shape
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_fused_leaky_relu_defaults():
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    before = x.clone()
    y = fused_leaky_relu(x, b)  # slope 0.2, gain sqrt(2), the fast ops, not in place
    z = x + b.view(1, -1, 1, 1)
    torch.testing.assert_close(y, torch.where(z >= 0, z, 0.2 * z) * math.sqrt(2), rtol=1e-12, atol=1e-12)
    assert torch.equal(x, before)
    with pytest.raises(ValueError, match="impl"):
        fused_leaky_relu(x, b, impl="cuda")
