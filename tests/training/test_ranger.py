"""Ranger: RAdam inner steps (torch.optim.RAdam) plus Lookahead, against a hand-written Lookahead."""

import torch

from style_transformer.training.ranger import Lookahead, ranger


def _loss(w):
    return ((w - torch.arange(4.0)) ** 2 * torch.tensor([1.0, 2.0, 3.0, 4.0])).sum()


def test_matches_manual_lookahead():
    k, alpha = 3, 0.5
    w = torch.zeros(4, requires_grad=True)
    opt = ranger([w], lr=0.1, k=k, alpha=alpha)
    # reference: a separate RAdam on a copy, slow weights updated by hand (float64)
    ref = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    inner = torch.optim.RAdam([ref], lr=0.1, betas=(0.95, 0.999))
    slow = ref.detach().clone()
    for step in range(1, 10):
        opt.zero_grad()
        _loss(w).backward()
        opt.step()
        inner.zero_grad()
        _loss(ref).backward()
        inner.step()
        if step % k == 0:
            with torch.no_grad():
                slow += alpha * (ref - slow)
                ref.copy_(slow)
        torch.testing.assert_close(w.detach().double(), ref.detach(), rtol=1e-5, atol=1e-6)
    assert _loss(w).item() < _loss(torch.zeros(4)).item()


def test_state_dict_round_trip_continues_identically():
    def run(steps, w, opt):
        for _ in range(steps):
            opt.zero_grad()
            _loss(w).backward()
            opt.step()

    w1 = torch.zeros(4, requires_grad=True)
    o1 = ranger([w1], lr=0.05)
    run(10, w1, o1)
    w2 = torch.zeros(4, requires_grad=True)
    o2 = ranger([w2], lr=0.05)
    run(4, w2, o2)
    state = o2.state_dict()
    w3 = w2.detach().clone().requires_grad_(True)
    o3 = ranger([w3], lr=0.05)
    o3.load_state_dict(state)
    run(6, w3, o3)
    assert torch.equal(w1, w3)


def test_rejects_bad_settings():
    import pytest

    with pytest.raises(ValueError, match="Lookahead needs"):
        Lookahead(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), k=0)
