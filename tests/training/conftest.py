"""Shared checks of the trainers' tests."""

import pytest
import torch


@pytest.fixture
def check_exact_resume():
    """``check(make, root)``: a run of 4 steps equals 2 steps, a save, a fresh trainer that loads it, and
    2 more steps, tensor for tensor (``make(folder)`` builds a trainer). Returns the resumed trainer."""

    def check(make, root, before: int = 2, after: int = 2):
        straight = make(root / "straight")
        for _ in range(before + after):
            straight.train_step()
        first = make(root / "resumed")
        for _ in range(before):
            first.train_step()
        first.save()
        resumed = make(root / "resumed")
        resumed.load()
        for _ in range(after):
            resumed.train_step()
        for m in ("g", "d", "g_ema"):
            for a, b in zip(getattr(straight, m).state_dict().values(), getattr(resumed, m).state_dict().values()):
                assert torch.equal(a, b)
        return resumed

    return check
