"""Ranger = RAdam + Lookahead (Zhang et al. 2019), as pSp and the Style Transformer train with.

``torch.optim.RAdam`` does the inner steps; ``Lookahead`` keeps slow weights and every ``k`` steps
moves them ``alpha`` of the way to the fast ones, then resets the fast weights to them.
"""

from __future__ import annotations

from typing import Dict, Iterable

import torch


class Lookahead(torch.optim.Optimizer):
    """Wraps an optimiser. Its state (slow weights, step counter) is in ``state_dict`` for exact resume."""

    def __init__(self, inner: torch.optim.Optimizer, k: int = 6, alpha: float = 0.5):
        if k < 1 or not 0.0 < alpha <= 1.0:
            raise ValueError(f"Lookahead needs k >= 1 and 0 < alpha <= 1, got k={k}, alpha={alpha}")
        self.inner, self.k, self.alpha = inner, k, alpha
        self.param_groups = inner.param_groups
        self.defaults = inner.defaults
        self.state = inner.state
        self._slow: Dict[int, torch.Tensor] = {}
        self._count = 0

    def _params(self) -> Iterable[torch.Tensor]:
        for group in self.param_groups:
            yield from group["params"]

    @torch.no_grad()
    def step(self, closure=None):
        if not self._slow:  # slow weights start at the weights before the first fast step
            self._slow = {i: p.detach().clone() for i, p in enumerate(self._params())}
        loss = self.inner.step(closure)
        self._count += 1
        if self._count % self.k == 0:
            for i, p in enumerate(self._params()):
                slow = self._slow[i]
                slow.add_(p - slow, alpha=self.alpha)
                p.copy_(slow)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> Dict:
        return {"inner": self.inner.state_dict(), "slow": dict(self._slow), "count": self._count,
                "k": self.k, "alpha": self.alpha}

    def load_state_dict(self, state: Dict) -> None:
        self.inner.load_state_dict(state["inner"])
        self._slow = {int(i): t.clone() for i, t in state["slow"].items()}
        self._count = int(state["count"])


def ranger(params, lr: float = 1e-4, k: int = 6, alpha: float = 0.5, weight_decay: float = 0.0) -> Lookahead:
    """RAdam (betas 0.95, 0.999 as in Ranger) wrapped in Lookahead."""
    return Lookahead(torch.optim.RAdam(params, lr=lr, betas=(0.95, 0.999), weight_decay=weight_decay), k, alpha)
