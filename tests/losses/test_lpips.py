"""LPIPS: the module against a float64 functional re-computation, and the real shift-tolerant file."""

import pytest
import torch
import torch.nn.functional as F

from style_transformer.losses.lpips import LPIPS, LPIPSError, shift_tolerant_path


def _distance(f0, f1, s):
    """LPIPS from two lists of five feature maps: unit-normalise over channels, weight the squared
    difference by the heads, average over space, sum over layers."""
    total = 0
    for i, (a, b) in enumerate(zip(f0, f1)):
        a = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        b = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        total = total + ((a - b) ** 2 * s[f"lin{i}.model.1.weight"].view(1, -1, 1, 1)).sum(1).mean((1, 2))
    return total


def _reference(state, x0, x1):
    """Shift-tolerant AlexNet LPIPS written out in float64 from the file's keys."""
    s = {k: v.double() for k, v in state.items()}
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)

    def blur(h, key):
        return F.conv2d(F.pad(h, (2, 2, 2, 2), mode="reflect"), s[key], stride=2, groups=h.shape[1])

    def feats(x):
        h = (x.double() - shift) / scale
        h = F.relu(blur(F.conv2d(h, s["net.slice1.0.weight"], s["net.slice1.0.bias"], padding=2), "net.slice1.1.filt"))
        out = [h]
        h = blur(F.max_pool2d(h, 3, 1), "net.slice2.4.filt")
        h = F.relu(F.conv2d(h, s["net.slice2.5.weight"], s["net.slice2.5.bias"], padding=2))
        out.append(h)
        h = blur(F.max_pool2d(h, 3, 1), "net.slice3.8.filt")
        h = F.relu(F.conv2d(h, s["net.slice3.9.weight"], s["net.slice3.9.bias"], padding=1))
        out.append(h)
        h = F.relu(F.conv2d(h, s["net.slice4.11.weight"], s["net.slice4.11.bias"], padding=1))
        out.append(h)
        h = F.relu(F.conv2d(h, s["net.slice5.13.weight"], s["net.slice5.13.bias"], padding=1))
        out.append(h)
        return out

    return _distance(feats(x0), feats(x1), s)


def _stlpips_state():
    from style_transformer.checkpoints import torch_load_safe

    return torch_load_safe(shift_tolerant_path())


def test_shift_tolerant_matches_float64_reference():
    torch.manual_seed(0)
    x0 = torch.rand(3, 3, 64, 64) * 2 - 1
    x1 = (x0 + 0.3 * torch.randn_like(x0)).clamp(-1, 1)
    model = LPIPS.load("alex-st")
    got = model(x0, x1)
    want = _reference(_stlpips_state(), x0, x1)
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-6)
    assert (got > 0).all()
    torch.testing.assert_close(model(x0, x0), torch.zeros(3), atol=1e-7, rtol=0)
    torch.testing.assert_close(model(x1, x0), got, rtol=1e-5, atol=1e-7)  # symmetric


def test_distance_grows_with_the_distortion_and_has_input_gradients():
    model = LPIPS.load("alex-st")
    torch.manual_seed(1)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    noise = torch.randn_like(x)
    d = [model(x, (x + s * noise).clamp(-1, 1)).mean().item() for s in (0.05, 0.2, 0.6)]
    assert d[0] < d[1] < d[2]
    y = x.clone().requires_grad_(True)
    model(y, x.flip(-1)).sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in model.parameters())


def _standard_reference(trunk, heads, x0, x1):
    """Standard LPIPS AlexNet (v0.1), float64, from the torchvision and lpips key layouts."""
    s = {k: v.double() for k, v in {**trunk, **heads}.items()}
    shift = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)

    def feats(x):
        h = (x.double() - shift) / scale
        out = []
        h = F.relu(F.conv2d(h, s["features.0.weight"], s["features.0.bias"], stride=4, padding=2))
        out.append(h)
        h = F.relu(F.conv2d(F.max_pool2d(h, 3, 2), s["features.3.weight"], s["features.3.bias"], padding=2))
        out.append(h)
        h = F.relu(F.conv2d(F.max_pool2d(h, 3, 2), s["features.6.weight"], s["features.6.bias"], padding=1))
        out.append(h)
        for i in (8, 10):
            h = F.relu(F.conv2d(h, s[f"features.{i}.weight"], s[f"features.{i}.bias"], padding=1))
            out.append(h)
        return out

    return _distance(feats(x0), feats(x1), s)


def test_standard_alexnet_from_local_files(tmp_path):
    g = torch.Generator().manual_seed(3)
    shapes = {0: (64, 3, 11, 11), 3: (192, 64, 5, 5), 6: (384, 192, 3, 3), 8: (256, 384, 3, 3), 10: (256, 256, 3, 3)}
    trunk = {}
    for i, shape in shapes.items():
        trunk[f"features.{i}.weight"] = torch.randn(shape, generator=g) * 0.05
        trunk[f"features.{i}.bias"] = torch.randn(shape[0], generator=g) * 0.05
    trunk["classifier.1.weight"] = torch.zeros(4, 4)  # torchvision files hold the classifier too
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g)
             for i, c in enumerate((64, 192, 384, 256, 256))}
    torch.save(trunk, tmp_path / "alexnet.pth")
    torch.save(heads, tmp_path / "alex.pth")
    model = LPIPS.load("alex", trunk=tmp_path / "alexnet.pth", heads=tmp_path / "alex.pth")
    x0 = torch.rand(2, 3, 64, 64) * 2 - 1
    x1 = torch.rand(2, 3, 64, 64) * 2 - 1
    torch.testing.assert_close(model(x0, x1).double(), _standard_reference(trunk, heads, x0, x1), rtol=1e-4, atol=1e-7)


def test_bad_files_give_clear_errors(tmp_path, monkeypatch):
    torch.save({"foo": torch.zeros(1)}, tmp_path / "wrong.pth")
    with pytest.raises(LPIPSError, match="not LPIPS alex-st weights"):
        LPIPS.load("alex-st", trunk=tmp_path / "wrong.pth")
    with pytest.raises(LPIPSError, match="needs two local files"):
        LPIPS.load("vgg")
    with pytest.raises(LPIPSError, match="unknown LPIPS network"):
        LPIPS.load("squeeze")
    with monkeypatch.context() as m:  # restores the variable as it was (it may be how the weights are found)
        m.setenv("STYLE_TRANSFORMER_STLPIPS", str(tmp_path / "missing.pth"))
        with pytest.raises(LPIPSError, match="missing.pth"):
            LPIPS.load("alex-st")
    with pytest.raises(ValueError, match="two \\[N, 3, H, W\\]"):
        LPIPS.load("alex-st", trunk=shift_tolerant_path())(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 9, 9))


def test_training_path_matches_the_joint_pass_and_its_gradient():
    """Against fixed targets the target side runs without a graph; values and input gradients agree."""
    model = LPIPS.load("alex-st")
    torch.manual_seed(2)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_(True)
    fast = model(y, x)
    fast.sum().backward()
    g_fast = y.grad.clone()
    y.grad = None
    joint = model(y, x.clone().requires_grad_(True))  # both sides in the graph: the joint pass
    joint.sum().backward()
    torch.testing.assert_close(fast, joint, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(g_fast, y.grad, rtol=1e-4, atol=1e-7)


def test_standard_vgg_from_local_files_loads_strictly(tmp_path):
    """The torchvision VGG16 layout (13 convs at features.0..28) and the lpips v0.1 vgg heads."""
    g = torch.Generator().manual_seed(4)
    widths = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256), (256, 512),
              (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    idx = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
    trunk = {}
    for i, (cin, cout) in zip(idx, widths):
        trunk[f"features.{i}.weight"] = torch.randn(cout, cin, 3, 3, generator=g) * (2 / (9 * cin)) ** 0.5
        trunk[f"features.{i}.bias"] = torch.zeros(cout)
    heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g)
             for i, c in enumerate((64, 128, 256, 512, 512))}
    torch.save(trunk, tmp_path / "vgg16.pth")
    torch.save(heads, tmp_path / "vgg.pth")
    model = LPIPS.load("vgg", trunk=tmp_path / "vgg16.pth", heads=tmp_path / "vgg.pth")
    conv = model.trunk[3][3]  # stage 4: max-pool, conv (features.17), ReLU, conv (features.19)
    assert torch.equal(conv.weight, trunk["features.19.weight"])
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert model(x, x).item() == 0 and model(x, -x).item() > 0
