"""Identity loss: the official model_ir_se50.pth layout loads strictly; crop, pool and cosine checked by hand."""

import pytest
import torch
import torch.nn.functional as F

from style_transformer.losses import ArcFaceIRSE, IDLoss, IDLossError


@pytest.fixture(scope="module")
def arcface_file(tmp_path_factory):
    torch.manual_seed(0)
    net = ArcFaceIRSE()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("arcface") / "model_ir_se50.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.slow  # heavy: full-size network(s)
def test_official_layout_loads_and_loss_is_one_minus_cosine(arcface_file):
    state = torch.load(arcface_file, weights_only=True)
    # the official file's layout: 24 IR-SE units, the embedding head at output_layer.3/.4
    assert state["output_layer.3.weight"].shape == (512, 512 * 7 * 7)
    assert state["body.23.res_layer.5.fc2.weight"].shape == (512, 32, 1, 1)
    assert "body.0.shortcut_layer.0.weight" not in state  # 64 -> 64: a max-pool shortcut
    assert state["body.3.shortcut_layer.0.weight"].shape == (128, 64, 1, 1)
    loss = IDLoss.load(arcface_file)
    torch.manual_seed(1)
    x = torch.rand(2, 3, 256, 256) * 2 - 1
    y = (x + 0.5 * torch.randn_like(x)).clamp(-1, 1)
    net = ArcFaceIRSE().double().eval()
    net.load_state_dict({k: v.double() if v.is_floating_point() else v for k, v in state.items()})
    with torch.no_grad():
        ex = net(F.adaptive_avg_pool2d(x.double()[:, :, 35:223, 32:220], 112))
        ey = net(F.adaptive_avg_pool2d(y.double()[:, :, 35:223, 32:220], 112))
        want = 1 - F.cosine_similarity(ey, ex)
        got = loss(y, x)
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-5)
    assert (got > 0).all()
    torch.testing.assert_close(loss(x, x), torch.zeros(2), atol=1e-5, rtol=0)


def test_wrong_files_are_rejected(tmp_path):
    torch.save({"foo": torch.zeros(1)}, tmp_path / "x.pth")
    with pytest.raises(IDLossError, match="not ArcFace IR-SE50"):
        IDLoss.load(tmp_path / "x.pth")
    torch.save({"output_layer.3.weight": torch.zeros(1)}, tmp_path / "y.pth")
    with pytest.raises(IDLossError, match="does not fit"):
        IDLoss.load(tmp_path / "y.pth")
    with pytest.raises(IDLossError, match="missing.pth"):
        IDLoss.load(tmp_path / "missing.pth")
