"""Label-based editing with the W+ attribute classifier, as in the paper.

Procedure (``edit_with_classifier``), for codes ``w`` ``[N, L, d]``, an attribute ``a`` and a signed
strength ``s`` (``s > 0`` adds the attribute, ``s < 0`` removes it):

1. Record the classifier's embeddings of every attribute at the start, ``e_j(w)``.
2. Take ``steps`` steps; each moves the rows in ``layers`` by ``|s| sqrt(R) / steps`` (W+ Euclidean
   length; R = the number of rows edited) against the gradient of
   ``L(w') = BCE(logit_a(w'), [s > 0]) + keep * mean_{j != a} |e_j(w') - e_j(w)|^2``:
   the first term pushes the attribute's logit toward the asked side, the second holds the other
   attributes' embeddings where they were (the classifier's embeddings are what the paper holds).
   The step is the unit-normalised gradient, so the code moves at most as far as a unit direction of
   strength ``s`` added to the same R rows would move it (``|s| sqrt(R)``): strengths are comparable.
   With a ``metric`` ``M`` (``[d, d]``, positive semi-definite) every row's gradient is multiplied by
   ``M`` before the normalisation: steepest descent in the metric ``M^-1``. The editing toolkit passes
   the covariance of the generator's mapped codes (``directions.w_covariance``), so the steps go where
   codes vary. Without it the gradient mostly points where they do not: an MLP on codes is free in the
   directions its training codes never span, which move its logits and barely change the image. For a
   linear classifier fitted by LDA (normal ``C^-1 (mu_1 - mu_0)``) this step is the class-mean
   difference ``mu_1 - mu_0`` itself.
3. Optionally stop early, per image, once the attribute's probability is past ``stop_at`` on the
   asked side (``p >= stop_at`` when adding, ``p <= 1 - stop_at`` when removing).

Returns the edited codes; the original rows outside ``layers`` are untouched.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from ..models.editing import LatentClassifier


def edit_with_classifier(ws: torch.Tensor, classifier: LatentClassifier, attribute: str, strength: float,
                         steps: int = 10, keep: float = 1.0, layers: Optional[Tuple[int, int]] = None,
                         stop_at: Optional[float] = None, metric: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Edits ``ws [N, L, d]`` along the W+ classifier's gradient (see the module docstring).

    Args:
        ws: codes (rows beyond the classifier's ``num_ws`` pass through unchanged).
        classifier: the W+ attribute classifier.
        attribute: name of the attribute to change.
        strength: signed; the path length in W+ is at most ``|strength| * sqrt(rows edited)``.
        steps: gradient steps.
        keep: weight of holding the other attributes' embeddings.
        layers: ``(start, stop)`` rows that may change (default: all the classifier reads).
        stop_at: stop an image once its probability is past this on the asked side (None: never).
        metric: ``[d, d]`` matrix the gradient rows are multiplied by (None: the plain gradient).

    Returns:
        Edited codes, same shape as ``ws``.
    """
    a = classifier.index(attribute)
    n_rows = classifier.cfg.num_ws
    start, stop = layers or (0, n_rows)
    if not 0 <= start < stop <= min(n_rows, ws.shape[1]):
        raise ValueError(f"layer range {start}:{stop} is outside the classifier's {n_rows} W+ rows")
    if steps < 1:
        raise ValueError("steps must be at least 1")
    if metric is not None and tuple(metric.shape) != (ws.shape[-1], ws.shape[-1]):
        raise ValueError(f"metric of shape {tuple(metric.shape)} for codes of width {ws.shape[-1]}")
    target = 1.0 if strength > 0 else 0.0
    step_len = abs(strength) * (stop - start) ** 0.5 / steps
    mask = torch.zeros(1, ws.shape[1], 1, dtype=ws.dtype, device=ws.device)
    mask[:, start:stop] = 1
    others = [j for j in range(len(classifier.attributes)) if j != a]
    with torch.no_grad():
        _, emb0 = classifier(ws)
    w = ws.detach().clone()
    active = torch.ones(ws.shape[0], dtype=torch.bool, device=ws.device)
    for _ in range(steps):
        w.requires_grad_(True)
        with torch.enable_grad():
            logits, emb = classifier(w)
            bce = F.binary_cross_entropy_with_logits(logits[:, a], torch.full_like(logits[:, a], target),
                                                     reduction="none")
            hold = (emb[:, others] - emb0[:, others]).pow(2).flatten(1).mean(1) if others else torch.zeros_like(bce)
            grad, = torch.autograd.grad((bce + keep * hold).sum(), w)
        with torch.no_grad():
            if stop_at is not None:
                p = torch.sigmoid(logits[:, a])
                active &= (p < stop_at) if target == 1.0 else (p > 1 - stop_at)
            g = (grad if metric is None else grad @ metric.to(grad)) * mask
            g = g / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1)
            w = (w - step_len * g * active.view(-1, 1, 1).to(w.dtype)).detach()
        if not active.any():
            break
    return w
