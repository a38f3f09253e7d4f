"""Label-based (classifier gradient) and reference-based editing on codes whose attributes are known
linear functions of the code: the classifier learns them, edits change the asked attribute and keep
the others, the editor transfers the reference's attribute."""


import pytest
import torch

from style_transformer.config import LatentClassifierConfig
from style_transformer.editing.classifier_edit import edit_with_classifier
from style_transformer.training.editing import (EditorTrainConfig, covariance_whitening, train_latent_classifier,
                                                train_reference_editor)

ATTRS = ("a", "b", "c")


@pytest.fixture(scope="module")
def codes():
    g = torch.Generator().manual_seed(0)
    ws = torch.randn(3000, 4, 8, generator=g)
    dirs = torch.randn(3, 4, 8, generator=g)
    labels = (torch.einsum("nld,ald->na", ws, dirs) > 0).float()
    return ws, labels, dirs


@pytest.fixture(scope="module")
def classifier(codes):
    ws, labels, _ = codes
    cfg = LatentClassifierConfig(attributes=ATTRS, num_ws=4, w_dim=8, hidden=(64, 32), embed_dim=8)
    model, acc = train_latent_classifier(ws, labels, cfg, epochs=40, batch_size=128, lr=3e-3)
    return model, acc


def test_latent_classifier_learns_linear_attributes(classifier):
    _, acc = classifier
    assert set(acc) == set(ATTRS) and min(acc.values()) > 0.9


def test_classifier_edit_changes_the_attribute_and_keeps_the_others(codes, classifier):
    ws, labels, dirs = codes
    model, _ = classifier
    off = ws[labels[:, 0] == 0][:200]
    edited = edit_with_classifier(off, model, "a", strength=6.0 / 3 ** 0.5, steps=12, layers=(0, 3))
    true_after = (torch.einsum("nld,ald->na", edited, dirs) > 0).float()
    true_before = (torch.einsum("nld,ald->na", off, dirs) > 0).float()
    assert true_after[:, 0].mean() > 0.9  # the asked attribute now holds (by the true rule)
    assert (true_after[:, 1:] == true_before[:, 1:]).float().mean() > 0.75  # the others mostly stay
    assert torch.equal(edited[:, 3], off[:, 3])  # rows outside the layer range untouched
    assert ((edited - off).flatten(1).norm(dim=1) <= 6.0 + 1e-4).all()  # |s| sqrt(3 rows) bounds the move
    # removing, with an early stop: every image ends on the asked side, moving no further than needed
    removed = edit_with_classifier(edited, model, "a", strength=-3.0, steps=12, stop_at=0.9)
    p = torch.sigmoid(model(removed)[0][:, 0])
    assert (p <= 0.1).float().mean() > 0.95
    with pytest.raises(KeyError, match="no attribute 'z'"):
        edit_with_classifier(off, model, "z", 1.0)


def test_classifier_edit_step_is_the_metric_times_the_gradient(codes, classifier):
    ws, labels, _ = codes
    model, _ = classifier
    w0 = ws[labels[:, 1] == 0][:5]  # asking to add b: a gradient float32 does not round to zero
    m = torch.randn(8, 8, generator=torch.Generator().manual_seed(3))
    metric = m @ m.T / 8  # positive definite
    one = edit_with_classifier(w0, model, "b", strength=2.0, steps=1, layers=(1, 3), metric=metric)
    # independent reference in float64: the loss gradient (the hold term's is zero at the start),
    # times the metric, on rows 1-2, scaled to |s| sqrt(2)
    ref = model.double()
    try:
        x = w0.double().requires_grad_(True)
        logit = ref(x)[0][:, 1]
        grad, = torch.autograd.grad(torch.nn.functional.softplus(-logit).sum(), x)
    finally:
        model.float()
    step = torch.zeros_like(grad)
    step[:, 1:3] = grad[:, 1:3] @ metric.double()
    step = step / step.flatten(1).norm(dim=1).view(-1, 1, 1)
    torch.testing.assert_close((one - w0).double(), -2.0 * 2 ** 0.5 * step, rtol=1e-4, atol=1e-5)
    plain = edit_with_classifier(w0, model, "b", strength=2.0, steps=3)
    torch.testing.assert_close(edit_with_classifier(w0, model, "b", strength=2.0, steps=3, metric=torch.eye(8)), plain)
    with pytest.raises(ValueError, match="metric of shape"):
        edit_with_classifier(w0, model, "b", 1.0, metric=torch.eye(4))


@pytest.fixture(scope="module")
def subspace_codes():
    """Codes on a 3-d subspace of an 8-d space (2 rows), attribute 'a' a linear rule on it; a W+
    classifier trained on them is unconstrained off the subspace."""
    g = torch.Generator().manual_seed(4)
    basis = torch.linalg.qr(torch.randn(8, 3, generator=g))[0]  # [8, 3] orthonormal
    lat = torch.randn(2000, 2, 3, generator=g)
    ws = lat @ basis.T + 0.01 * torch.randn(2000, 2, 8, generator=g)
    labels = (lat[:, :, 0].sum(1, keepdim=True) > 0).float()
    cfg = LatentClassifierConfig(attributes=("a",), num_ws=2, w_dim=8, hidden=(64, 32), embed_dim=8)
    model, acc = train_latent_classifier(ws, labels, cfg, epochs=20, batch_size=128, lr=3e-3)
    assert acc["a"] > 0.9
    flat = ws.reshape(-1, 8)
    cov = (flat - flat.mean(0)).T @ (flat - flat.mean(0)) / (len(flat) - 1)
    return ws, labels, basis, model, cov


def _off_subspace(move, basis):
    return float((move - move @ basis @ basis.T).norm() / move.norm())


def test_covariance_whitening_matches_closed_form():
    c = torch.tensor([4.0, 1.0, 0.0, 3.0], dtype=torch.float64)
    q = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64))[0]
    p = covariance_whitening(q @ torch.diag(c) @ q.T, eps=0.01)
    expected = q @ torch.diag((c / 2.0 + 0.01) ** -0.5) @ q.T  # mean eigenvalue 2
    torch.testing.assert_close(p.double(), expected, rtol=1e-5, atol=1e-5)


def test_whitened_near_loss_keeps_reference_edits_where_codes_vary(subspace_codes):
    ws, labels, basis, model, cov = subspace_codes
    cfg = EditorTrainConfig(steps=300, batch_size=128, lr=5e-3, near_lambda=0.05)
    plain, _ = train_reference_editor(ws, labels[:, 0], model, "a", cfg)
    white, _ = train_reference_editor(ws, labels[:, 0], model, "a", cfg, near_whitening=covariance_whitening(cov))
    t, r = ws[labels[:, 0] == 0][:200], ws[labels[:, 0] == 1][:200]
    with torch.no_grad():
        e_plain, e_white = plain(t, r), white(t, r)
        assert (model(e_white)[0][:, 0] > 0).float().mean() > 0.8  # it still transfers the attribute
    assert _off_subspace(e_white - t, basis) < 0.5 * _off_subspace(e_plain - t, basis)


def test_covariance_metric_keeps_classifier_edits_where_codes_vary(subspace_codes):
    ws, labels, basis, model, cov = subspace_codes
    off = ws[labels[:, 0] == 0][:100]

    def off_subspace(edited):
        return _off_subspace(edited - off, basis)

    with_metric = edit_with_classifier(off, model, "a", strength=2.0, steps=10, metric=cov)
    plain = edit_with_classifier(off, model, "a", strength=2.0, steps=10)
    assert off_subspace(with_metric) < 0.01 < off_subspace(plain)
    assert (torch.sigmoid(model(with_metric)[0][:, 0]) > 0.5).float().mean() > 0.9  # and it still edits


def test_reference_editor_starts_as_identity_and_learns_to_transfer(codes, classifier):
    ws, labels, dirs = codes
    model, _ = classifier
    still, _ = train_reference_editor(ws, labels[:, 1], model, "b", EditorTrainConfig(steps=0))
    with torch.no_grad():
        torch.testing.assert_close(still(ws[:8], ws[8:16]), ws[:8])
    editor, logs = train_reference_editor(ws, labels[:, 1], model, "b",
                                          EditorTrainConfig(steps=400, batch_size=128, lr=5e-3, near_lambda=0.01))
    t = ws[labels[:, 1] == 0][:200]
    r = ws[labels[:, 1] == 1][:200]
    with torch.no_grad():
        e = editor(t, r)
        pred = model(e)[0] > 0
    assert pred[:, 1].float().mean() > 0.8  # the reference's value of b
    keep = (pred[:, [0, 2]] == (model(t)[0][:, [0, 2]] > 0)).float().mean()
    assert keep > 0.8
    assert (e - t).norm() < (r - t).norm()  # much nearer the target than the reference
    assert editor.cfg.attribute == "b" and editor.cfg.residual
