"""Editing scores against hand-computed values on a transparent stand-in: codes are the pixels, the
judge thresholds pixel means, and edits add to chosen pixels."""

import types

import pytest
import torch

from style_transformer.metrics.editing import evaluate_editing


class _Pipe:
    """invert: image -> code (its pixels); generate: code -> image; edit_ws: a direction per attribute."""

    def __init__(self):
        self.editing = types.SimpleNamespace(strengths={"interfacegan": {"red": 1.0, "green": 0.05}})

    def invert(self, images, batch_size=8):
        x = torch.stack(list(images))
        return types.SimpleNamespace(ws=x.reshape(len(x), 3, 4), images=x)

    def generate(self, ws, batch_size=8):
        return ws.reshape(len(ws), 3, 2, 2)

    def edit_ws(self, ws, attribute, strength=None, ws_ref=None, method=None, layers=None):
        if method == "reference":
            out = ws.clone()
            c = 0 if attribute == "red" else 1
            out[:, c] = ws_ref[:, c]  # copies the reference's channel: a perfect transfer
            return out
        out = ws.clone()
        out[:, 0 if attribute == "red" else 1] += strength
        return out


class _Judge:
    attributes = ["red", "green", "blue"]

    def predict(self, img):
        return (img.mean(dim=(2, 3)) > 0).float()  # present when the channel's mean is positive


def test_scores_match_hand_computation():
    torch.manual_seed(0)
    images = torch.rand(40, 3, 2, 2) * 1.6 - 0.8
    pipe, judge = _Pipe(), _Judge()
    rep = evaluate_editing(pipe, images, judge, ["red", "green"], methods=("interfacegan", "reference"))
    scores = {(s.method, s.attribute): s for s in rep.scores}
    base = images.mean(dim=(2, 3)) > 0
    # red, strength 1: every channel mean moves by 1 (pixels in [-0.8, 0.8]): every flip succeeds
    assert scores["interfacegan", "red"].success == 1.0
    assert scores["interfacegan", "red"].preservation == 1.0
    sign = (~base[:, 0]).float() * 2 - 1  # add where absent, remove where present
    moved = images.clone()
    moved[:, 0] = (moved[:, 0] + sign.view(-1, 1, 1)).clamp(-1, 1)  # renders are clamped to [-1, 1]
    assert scores["interfacegan", "red"].drift == pytest.approx((moved - images).pow(2).mean().item(), rel=1e-5)
    # green, strength 0.05: only images whose green mean is within 0.05 of zero flip
    g = images[:, 1].mean(dim=(1, 2))
    want = ((g > 0) & (g - 0.05 <= 0)) | ((g <= 0) & (g + 0.05 > 0))
    assert scores["interfacegan", "green"].success == pytest.approx(want.float().mean().item())
    # a reference edit that copies the channel matches the reference every time, and keeps the rest
    assert scores["reference", "red"].success == 1.0 and scores["reference", "red"].preservation == 1.0
    assert rep.summary()["interfacegan"]["success"] == pytest.approx(
        (1.0 + scores["interfacegan", "green"].success) / 2)
    assert base.any() and (~base).any()
