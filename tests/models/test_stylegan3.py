"""StyleGAN3: NVIDIA parity (tests/data/nvidia), filtered_lrelu against float64 references and
gradcheck, the modulated convolution against a per-sample computation, native files, encoders."""

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from style_transformer import load_model, save_model, set_ops_impl
from style_transformer.models import StyleGAN3Generator
from style_transformer.models.stylegan3 import modulated_conv2d_sg3
from style_transformer.ops import filtered_lrelu

DATA = Path(__file__).parents[1] / "data" / "nvidia"


@pytest.mark.parametrize("name", ["sg3_t32", "sg3_r32"])
@pytest.mark.parametrize("impl", ["fast", "ref"])
def test_snapshot_matches_nvidia(name, impl):
    g = set_ops_impl(load_model(DATA / f"{name}.pkl", kind="generator"), impl)
    assert isinstance(g, StyleGAN3Generator) and g.num_ws == 16
    assert g.cfg.architecture == ("stylegan3-t" if name == "sg3_t32" else "stylegan3-r")
    refs = torch.load(DATA / f"{name}_refs.pt", weights_only=True)
    assert torch.equal(g.latent_avg, refs["w_avg"])
    with torch.no_grad():
        w = g.mapping(refs["z"])
        assert (w - refs["ws_psi1"][:, 0]).abs().max() < 1e-4
        assert (g.latent_avg + 0.7 * (w - g.latent_avg) - refs["ws_psi0.7"][:, 0]).abs().max() < 1e-4
        # the reference path is slow (full-rate 2-D filters): two samples of it are enough
        n = 4 if impl == "fast" else 2
        for psi in ("1", "0.7") if impl == "fast" else ("0.7",):
            img = g.synthesis(refs[f"ws_psi{psi}"][:n])
            assert img.shape == (n, 3, 32, 32)
            assert (img - refs[f"img_const_psi{psi}"][:n]).abs().max() < 1e-4
        if impl == "fast":
            img, _ = g([refs["z"]], truncation=0.7)
            assert (img - refs["img_const_psi0.7"]).abs().max() < 1e-4


def _naive_filtered_lrelu(x, fu, fd, b, up, down, pad, gain, slope, clamp):
    """Sample-by-sample float64 definition: zero insertion, padding, true convolutions, decimation."""
    x0, x1, y0, y1 = pad
    n, c, h, w = x.shape
    fu2 = torch.ones(1, 1, dtype=x.dtype) if fu is None else (torch.outer(fu, fu) if fu.ndim == 1 else fu)
    fd2 = torch.ones(1, 1, dtype=x.dtype) if fd is None else (torch.outer(fd, fd) if fd.ndim == 1 else fd)
    fu2 = fu2 * up * up
    z = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    z[:, :, ::up, ::up] = x + b.view(1, -1, 1, 1)
    big = torch.zeros(n, c, h * up + abs(y0) + abs(y1), w * up + abs(x0) + abs(x1), dtype=x.dtype)
    big[:, :, abs(y0): abs(y0) + h * up, abs(x0): abs(x0) + w * up] = z
    big = big[:, :, abs(y0) - y0: big.shape[2] - (abs(y1) - y1), abs(x0) - x0: big.shape[3] - (abs(x1) - x1)]
    ku, kd = fu2.shape[0], fd2.shape[0]
    hu, wu = big.shape[2] - ku + 1, big.shape[3] - ku + 1
    u = torch.zeros(n, c, hu, wu, dtype=x.dtype)
    for i in range(ku):
        for j in range(ku):
            u += big[:, :, i: i + hu, j: j + wu] * fu2[ku - 1 - i, ku - 1 - j]
    u = torch.where(u >= 0, u, u * slope) * gain
    if clamp is not None:
        u = u.clamp(-clamp, clamp)
    hd, wd = u.shape[2] - kd + 1, u.shape[3] - kd + 1
    v = torch.zeros(n, c, hd, wd, dtype=x.dtype)
    for i in range(kd):
        for j in range(kd):
            v += u[:, :, i: i + hd, j: j + wd] * fd2[kd - 1 - i, kd - 1 - j]
    return v[:, :, ::down, ::down]


CASES = [  # up, down, up taps, down taps, radial down filter, padding
    (2, 2, 12, 12, False, (9, 8, 9, 8)),
    (2, 2, 12, 12, True, (11, 10, 11, 10)),
    (4, 2, 24, 12, False, (20, 21, 19, 22)),
    (2, 1, 12, 4, False, (3, -2, 4, 1)),
    (1, 2, 1, 6, False, (1, -1, 0, 2)),
    (1, 1, 1, 1, False, (0, 0, 0, 0)),
    (2, 1, 4, 4, False, (6, 5, 7, 6)),  # padding wider than the up filter: the window leaves the data
]


@pytest.mark.parametrize("case", CASES)
def test_filtered_lrelu_paths_equal_the_float64_definition(case):
    up, down, tu, td, radial, pad = case
    g = torch.Generator().manual_seed(sum(case[:4]))
    x = torch.randn(2, 3, 11, 9, generator=g, dtype=torch.float64)
    fu = torch.rand(tu, generator=g, dtype=torch.float64) if tu > 1 else None
    fd = (torch.rand((td, td) if radial else (td,), generator=g, dtype=torch.float64)) if td > 1 else None
    b = torch.randn(3, generator=g, dtype=torch.float64)
    for gain, slope, clamp in ((2 ** 0.5, 0.2, 1.5), (1.0, 1.0, None)):
        expect = _naive_filtered_lrelu(x, fu, fd, b, up, down, pad, gain, slope, clamp)
        for impl in ("ref", "fast"):
            got = filtered_lrelu(x, fu, fd, b, up, down, pad, gain=gain, slope=slope, clamp=clamp, impl=impl)
            assert got.shape == expect.shape
            torch.testing.assert_close(got, expect, rtol=0, atol=1e-10)


@pytest.mark.parametrize("impl", ["fast", "ref"])
def test_filtered_lrelu_gradcheck(impl):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 6, 5, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, generator=g, dtype=torch.float64, requires_grad=True)
    fu = torch.rand(8, generator=g, dtype=torch.float64)
    fd = torch.rand(4, 4, generator=g, dtype=torch.float64)
    fn = lambda x, b: filtered_lrelu(x, fu, fd, b, 2, 2, (5, 4, 6, 3), clamp=0.8, impl=impl)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, b))


def test_sg3_modulated_conv_equals_per_sample_float64():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 4, 7, 7, generator=g, dtype=torch.float64)
    weight = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64)
    styles = torch.randn(3, 4, generator=g, dtype=torch.float64)
    gain = torch.tensor(0.7, dtype=torch.float64)
    out = modulated_conv2d_sg3(x, weight, styles, demodulate=True, padding=2, input_gain=gain)
    wn = weight / weight.pow(2).mean([1, 2, 3], keepdim=True).sqrt()
    sn = styles / styles.pow(2).mean().sqrt()  # normalised over the whole batch
    for i in range(3):
        wi = wn * sn[i].view(1, -1, 1, 1)
        wi = wi / (wi.pow(2).sum([1, 2, 3], keepdim=True) + 1e-8).sqrt() * gain
        torch.testing.assert_close(out[i: i + 1], F.conv2d(x[i: i + 1], wi, padding=2), rtol=0, atol=1e-12)
    plain = modulated_conv2d_sg3(x, weight, styles, demodulate=False, padding=0)
    for i in range(3):
        torch.testing.assert_close(plain[i: i + 1], F.conv2d(x[i: i + 1], weight * styles[i].view(1, -1, 1, 1)),
                                   rtol=0, atol=1e-12)


def test_native_file_round_trip(tmp_path):
    from style_transformer.cli import main

    src = DATA / "sg3_r32.pkl"
    assert main(["convert", str(src), str(tmp_path / "g.safetensors")]) == 0
    a, b = load_model(src), load_model(tmp_path / "g.safetensors")
    assert isinstance(b, StyleGAN3Generator) and b.cfg == a.cfg
    ws = torch.load(DATA / "sg3_r32_refs.pt", weights_only=True)["ws_psi1"]
    with torch.no_grad():
        assert torch.equal(a.synthesis(ws), b.synthesis(ws))
    save_model(b, tmp_path / "g16.safetensors", dtype=torch.float16)
    with torch.no_grad():
        assert (load_model(tmp_path / "g16.safetensors").synthesis(ws) - a.synthesis(ws)).abs().max() < 0.05


def test_encoder_for_a_stylegan3_generator(tmp_path):
    """One query per W+ row of the StyleGAN3 generator (16 here); trained for a few steps, it inverts."""
    import numpy as np

    from style_transformer.cli import main
    from style_transformer.data.synthetic import write_dataset

    write_dataset(tmp_path / "faces", 16, size=32, seed=0)
    run = tmp_path / "run"
    assert main(["train-encoder", "--generator", str(DATA / "sg3_t32.pkl"), "--data", str(tmp_path / "faces"),
                 "--out", str(run), "--preset", "tiny", "--steps", "3", "--batch-size", "2", "--val-every", "3",
                 "--val-images", "1"]) == 0
    model = load_model(run / "best.safetensors")
    assert isinstance(model.decoder, StyleGAN3Generator) and model.cfg.encoder.n_styles == 16
    assert main(["invert", "--checkpoint", str(run / "best.safetensors"), "--out", str(tmp_path / "inv"),
                 "--refine-steps", "2", "--pti-steps", "1", str(tmp_path / "faces" / "000003.png")]) == 0
    latents = np.load(tmp_path / "inv" / "latents.npz")
    assert latents[latents.files[0]].shape == (16, 64)
    assert (tmp_path / "inv" / "000003.png").exists()
    assert main(["generate", "--generator", str(DATA / "sg3_t32.pkl"), "--n", "2", "--out", str(tmp_path / "s")]) == 0
    assert len(list((tmp_path / "s").glob("*.png"))) == 2


@pytest.mark.parametrize("name,kw", [("sg3_t32", dict(channel_base=512, channel_max=32)),
                                     ("sg3_r32", dict(channel_base=1024, channel_max=64, radial=True))])
def test_designed_network_has_nvidias_geometry_and_filters(name, kw):
    """new_stylegan3 rebuilds the layer geometry NVIDIA designed for the fixtures, and the same filters."""
    from style_transformer.models.stylegan3 import new_stylegan3

    ref = load_model(DATA / f"{name}.pkl")
    g = new_stylegan3(32, style_dim=64, **kw)
    assert g.cfg.layers == ref.cfg.layers
    assert (g.cfg.input_size, g.cfg.sampling_rate, g.cfg.bandwidth, g.cfg.input_channels) == \
        (ref.cfg.input_size, ref.cfg.sampling_rate, ref.cfg.bandwidth, ref.cfg.input_channels)
    a, b = g.state_dict(), ref.state_dict()
    filters = [k for k in b if k.endswith("_filter")]
    assert filters and all((a[k] - b[k]).abs().max() < 1e-6 for k in filters)
    with torch.no_grad():
        img = g.synthesis(torch.randn(2, g.num_ws, 64))
    assert img.shape == (2, 3, 32, 32) and torch.isfinite(img).all()


@pytest.mark.parametrize("impl", ["ref", "fast"])
def test_filtered_lrelu_2d_up_filter_crops_without_filters_and_defaults(impl):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(2, 3, 7, 6, generator=g, dtype=torch.float64)
    b = torch.randn(3, generator=g, dtype=torch.float64)
    fu2 = torch.rand(6, 6, generator=g, dtype=torch.float64)  # a 2-D (non-separable) up filter
    fd = torch.rand(4, generator=g, dtype=torch.float64)
    cases = [(fu2, fd, 2, 2, (4, 3, 2, 5)),
             (None, fd, 1, 2, (-1, 2, -2, 1)),   # no up filter: padding and crops only
             (None, None, 1, 1, (1, -2, -1, -2))]
    for fu, fdn, up, down, pad in cases:
        expect = _naive_filtered_lrelu(x, fu, fdn, b, up, down, pad, 2 ** 0.5, 0.2, None)
        got = filtered_lrelu(x, fu, fdn, b, up, down, pad, impl=impl)
        assert got.shape == expect.shape
        torch.testing.assert_close(got, expect, rtol=0, atol=1e-10)
    # no down filter but a stride; a linear activation (slope 1) with a gain
    expect = _naive_filtered_lrelu(x, fu2, None, b, 2, 2, (3, 2, 2, 3), 1.7, 1.0, None)
    torch.testing.assert_close(filtered_lrelu(x, fu2, None, b, 2, 2, (3, 2, 2, 3), gain=1.7, slope=1.0, impl=impl),
                               expect, rtol=0, atol=1e-10)
    # the defaults: no resampling or padding, gain sqrt(2), slope 0.2, no clamp
    torch.testing.assert_close(filtered_lrelu(x, None, None, b, impl=impl),
                               _naive_filtered_lrelu(x, None, None, b, 1, 1, (0, 0, 0, 0), 2 ** 0.5, 0.2, None),
                               rtol=0, atol=1e-12)


def test_filtered_lrelu_upsampling_needs_a_filter_and_runs_the_fast_ops_by_default():
    x, b = torch.randn(1, 2, 4, 4), torch.zeros(2)
    with pytest.raises(ValueError, match=r"^upsampling needs a filter$"):
        filtered_lrelu(x, None, None, b, up=2)
    with pytest.raises(ValueError, match="impl"):
        filtered_lrelu(x, None, None, b, impl="cuda")
