"""Editing scores against hand-computed values on a transparent stand-in: codes are the pixels, the
judge thresholds pixel means, and edits add to chosen pixels."""

import types

import pytest
import torch

from style_transformer.editing.calibrate import calibrate_strengths, candidate_row_ranges
from style_transformer.editing.toolkit import EditingModels, settings_from_maps
from style_transformer.metrics.editing import evaluate_editing


class _Pipe:
    """invert: image -> code (its pixels); generate: code -> image; edit_ws: a direction per attribute."""

    def __init__(self):
        self.editing = EditingModels(settings=settings_from_maps(strengths={"interfacegan": {"red": 1.0, "green": 0.05}}))

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


class _EntangledPipe(_Pipe):
    """Each attribute's direction also raises the third code row (blue): only a row range that leaves
    row 2 out edits cleanly."""

    def edit_ws(self, ws, attribute, strength=None, ws_ref=None, method=None, layers=None):
        start, stop = layers or (0, 3)
        v = torch.zeros(3, 1)
        v[0 if attribute == "red" else 1] = 1
        v[2] = 1
        mask = torch.zeros(3, 1)
        mask[start:stop] = 1
        return ws + strength * v * mask


def test_calibration_picks_the_row_range_that_preserves_the_rest():
    torch.manual_seed(1)
    images = torch.rand(40, 3, 2, 2) * 1.6 - 0.8
    pipe, judge = _EntangledPipe(), _Judge()
    ranges = [(0, 3), (2, 3), (0, 2)]
    strengths, layers, keeps = calibrate_strengths(pipe, images, judge, ["red", "green"], methods=("interfacegan",),
                                            grid=(0.05, 1.0, 2.0), layer_ranges=ranges)
    # all rows: blue flips wherever the edit pushes it across zero; rows 2-3 never move red or green;
    # rows 0-2 flip the asked channel at strength 1 and leave blue alone
    assert strengths == {"interfacegan": {"red": 1.0, "green": 1.0}}
    assert layers == {"interfacegan": {"red": (0, 2), "green": (0, 2)}}
    assert keeps == {}  # no hold weights searched
    rep = evaluate_editing(pipe, images, judge, ["red"], methods=("interfacegan",), strengths=strengths,
                           layers={"interfacegan": {"red": (0, 3)}})
    assert rep.scores[0].layers == (0, 3) and rep.scores[0].success == 1.0
    means = images.mean(dim=(2, 3))
    add = means[:, 0] <= 0  # red absent: the edit adds (+1 on red and blue), else removes (-1 on both)
    blue_kept = torch.where(add, means[:, 2] > 0, means[:, 2] <= 0)  # blue keeps its verdict
    assert rep.scores[0].preservation == pytest.approx((1 + blue_kept.float().mean().item()) / 2)
    assert "(rows 0-2)" in rep.to_markdown()
    # without ranges: strengths only, the edits on the pipeline's default rows (all here), where only the
    # weak strength keeps blue
    strengths, layers, keeps = calibrate_strengths(pipe, images, judge, ["red"], methods=("interfacegan",),
                                            grid=(0.05, 1.0))
    assert layers == {} and strengths["interfacegan"]["red"] == 0.05


class _HoldPipe(_Pipe):
    """Classifier edits whose strength the hold weight damps (1 / (1 + 10 keep)); with no hold at all
    they also move blue: only a middle weight edits fully and cleanly."""

    def __init__(self):
        self.editing = EditingModels(settings=settings_from_maps(classifier_keep={"red": 1.0}))

    def edit_ws(self, ws, attribute, strength=None, ws_ref=None, method=None, layers=None):
        keep = self.editing.setting("classifier", attribute).keep
        keep = 1.0 if keep is None else keep
        out = ws.clone()
        out[:, 0] += strength / (1 + 10 * keep)
        if keep == 0:
            out[:, 2] += strength
        return out


def test_calibration_chooses_the_hold_weight_of_classifier_edits():
    torch.manual_seed(2)
    images = (torch.rand(40, 3, 1, 1) * 1.6 - 0.8).expand(-1, -1, 2, 2)  # channel means spread over +-0.8
    pipe, judge = _HoldPipe(), _Judge()
    strengths, layers, keeps = calibrate_strengths(pipe, images, judge, ["red"], methods=("classifier",),
                                                   grid=(0.05, 1.0, 2.0), keeps=(0.0, 0.1, 1.0))
    # keep 0: full steps but blue flips too; keep 1: at most 2 / 11 = 0.18, too weak to flip most;
    # keep 0.1: strength 1 moves red by 0.5 (too little for many), strength 2 by 1 flips every image
    assert keeps == {"red": 0.1} and strengths == {"classifier": {"red": 2.0}}
    assert pipe.editing.settings_maps() == {"classifier_keep": {"red": 1.0}}  # the folder's own weights are restored
    rep = evaluate_editing(pipe, images, judge, ["red"], methods=("classifier",), strengths=strengths)
    assert rep.scores[0].success < 0.5  # with the folder's weight (1) the same strength falls short


def test_candidate_row_ranges():
    assert candidate_row_ranges(10) == [(0, 10), (0, 4), (0, 6), (2, 6), (2, 8), (4, 8), (4, 10), (6, 10)]
    for n in (1, 2, 3, 18):
        rs = candidate_row_ranges(n)
        assert rs[0] == (0, n) and len(set(rs)) == len(rs)
        assert all(0 <= a < b <= n for a, b in rs)


def test_best_per_attribute_prefers_success_among_edits_that_preserve():
    from style_transformer.metrics.editing import EditingReport, EditScore, best_per_attribute

    def rep(rows):
        return EditingReport([EditScore("interfacegan", a, s, p, 0.0, 10) for a, s, p in rows])

    first = rep([("A", 0.8, 0.95), ("B", 0.5, 0.95), ("C", 0.6, 0.80), ("D", 0.7, 0.95), ("E", 0.99, 0.99)])
    second = rep([("A", 0.9, 0.85), ("B", 0.7, 0.92), ("C", 0.4, 0.85), ("D", 0.7, 0.95), ("F", 0.1, 0.5)])
    second.scores.append(EditScore("classifier", "E", 1.0, 1.0, 0.0, 10))  # another method: ignored
    second.scores.append(EditScore("interfacegan", "G", float("nan"), float("nan"), float("nan"), 0))  # no pair
    assert best_per_attribute([first, second]) == {"A": 0, "B": 1, "C": 0, "D": 0, "E": 0, "F": 1}
    assert best_per_attribute([first, second], min_preservation=0.8)["A"] == 1


class _PartialEditor(torch.nn.Module):
    """A reference editor that moves every code row 40% of the way to the reference's: scaled by 2.5
    it copies the reference; on all rows it also drags blue (row 2) along."""

    def forward(self, ws_target, ws_ref):
        return ws_target + 0.4 * (ws_ref - ws_target)


class _ReferencePipe(_Pipe):
    """Reference edits through the real ``EditingModels.edit`` (scale and rows)."""

    def __init__(self):
        from style_transformer.editing.toolkit import EditingModels

        self.editing = EditingModels(editors={"red": _PartialEditor()})

    def edit_ws(self, ws, attribute, strength=None, ws_ref=None, method=None, layers=None):
        return self.editing.edit(ws, attribute, method=method, strength=strength, ws_ref=ws_ref, layers=layers)


def test_calibration_chooses_the_scale_and_rows_of_reference_edits():
    torch.manual_seed(3)
    images = (torch.rand(60, 3, 1, 1) * 1.6 - 0.8).expand(-1, -1, 2, 2).contiguous()
    pipe, judge = _ReferencePipe(), _Judge()
    strengths, layers, _ = calibrate_strengths(pipe, images, judge, ["red", "green"], methods=("reference",),
                                               reference_grid=(1.0, 2.5, 3.0), layer_ranges=[(0, 3), (0, 1)])
    # only red has an editor; scale 1 moves 40% of the way (many pairs fall short), 2.5 copies the
    # reference's red; on all rows blue follows the reference too and flips in about half the pairs
    assert strengths == {"reference": {"red": 2.5}} and layers == {"reference": {"red": (0, 1)}}
    rep = evaluate_editing(pipe, images, judge, ["red"], methods=("reference",))
    assert rep.scores[0].strength == 1.0 and rep.scores[0].success < 0.95  # the editor's own output
    rep = evaluate_editing(pipe, images, judge, ["red"], methods=("reference",), strengths=strengths, layers=layers)
    assert rep.scores[0].success == 1.0 and rep.scores[0].preservation == 1.0 and rep.scores[0].layers == (0, 1)
    rep = evaluate_editing(pipe, images, judge, ["red"], methods=("reference",), strengths=strengths)
    assert rep.scores[0].success == 1.0 and rep.scores[0].preservation < 0.9


class _RedReader(torch.nn.Module):
    """A stand-in W+ classifier of one attribute, red: its logit is the red row's mean."""

    cfg = types.SimpleNamespace(num_ws=3)

    def index(self, attribute):
        return 0

    def forward(self, ws):
        logit = ws[:, 0].mean(-1, keepdim=True)
        return logit, logit[:, :, None]


class _OneWayEditor(torch.nn.Module):
    """Moves the red row 40% of the way to the reference's when adding red, all the way when removing."""

    def forward(self, ws_target, ws_ref):
        adding = ws_ref[:, 0].mean(-1) > ws_target[:, 0].mean(-1)
        frac = torch.where(adding, 0.4, 1.0).view(-1, 1)
        out = ws_target.clone()
        out[:, 0] = ws_target[:, 0] + frac * (ws_ref[:, 0] - ws_target[:, 0])
        return out


def test_calibration_chooses_separate_scales_for_adding_and_removing():
    from style_transformer.editing.calibrate import calibrate_reference_directions

    torch.manual_seed(4)
    images = (torch.rand(60, 3, 1, 1) * 1.6 - 0.8).expand(-1, -1, 2, 2).contiguous()
    pipe, judge = _ReferencePipe(), _Judge()
    pipe.editing = EditingModels(editors={"red": _OneWayEditor()}, latent_classifier=_RedReader(),
                                 settings=settings_from_maps(strengths={"reference": {"red": 1.0}}))
    adds, removes = calibrate_reference_directions(pipe, images, judge, ["red", "green"], grid=(0.5, 1.0, 2.5))
    # adding needs 2.5 (40% x 2.5 lands on the reference), removing 1; half a removal falls short on
    # about half the pairs; one scale of 2.5 also matches every pair, but its larger sum loses the tie
    assert adds == {"red": 2.5} and removes == {"red": 1.0}
    assert pipe.editing.settings_maps() == {"strengths": {"reference": {"red": 1.0}}}  # restored
    rep = evaluate_editing(pipe, images, judge, ["red"], methods=("reference",))
    assert rep.scores[0].success < 0.95  # the folder's one scale, 1: the additions fall short
    pipe.editing.set("reference", "red", strength=2.5, remove=1.0)
    rep = evaluate_editing(pipe, images, judge, ["red"], methods=("reference",))
    assert rep.scores[0].success == 1.0 and rep.scores[0].strength == 2.5 and rep.scores[0].strength_remove == 1.0
    assert "+2.50 adding, +1.00 removing" in rep.to_markdown()
