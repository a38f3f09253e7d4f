"""Editing quality judged on images by the image attribute classifier (independent of any latent).

For every test image the classifier's verdicts on its reconstruction are the starting point. A label
edit of attribute ``a`` asks for the opposite of that verdict (add when absent, remove when present):

* success: the verdict on the edited image is what was asked;
* preservation: the share of the other attributes whose verdict did not change;
* drift: mean squared pixel difference between edited image and reconstruction (images in [-1, 1]).

A reference edit pairs each image with a reference image whose verdict on ``a`` differs from its own;
match: the edited image's verdict on ``a`` equals the reference's. Its strength is the scale of the
editor's move (``EditingModels.edit``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..data.images import pool_to_size


@dataclass
class EditScore:
    method: str
    attribute: str
    success: float
    preservation: float
    drift: float
    n: int
    strength: Optional[float] = None
    layers: Optional[Tuple[int, int]] = None  # W+ rows edited (None: the editing folder's default)
    strength_remove: Optional[float] = None  # reference edits that remove the attribute, when scaled apart


@dataclass
class EditingReport:
    scores: List[EditScore] = field(default_factory=list)

    def summary(self) -> Dict[str, Dict[str, float]]:
        """Method -> mean success, preservation and drift over attributes."""
        out: Dict[str, Dict[str, float]] = {}
        for m in dict.fromkeys(s.method for s in self.scores):
            rows = [s for s in self.scores if s.method == m and s.n]
            if not rows:
                continue
            out[m] = {k: float(np.mean([getattr(s, k) for s in rows])) for k in ("success", "preservation", "drift")}
        return out

    def to_markdown(self) -> str:
        lines = ["| method | attribute | strength | success / match | others preserved | drift (MSE) | n |",
                 "|---|---|---:|---:|---:|---:|---:|"]
        for s in self.scores:
            st = "" if s.strength is None else f"{s.strength:+.2f}"
            if s.strength_remove is not None:
                st += f" adding, {s.strength_remove:+.2f} removing"
            if s.layers is not None:
                st += f" (rows {s.layers[0]}-{s.layers[1] - 1})"
            if not s.n:
                lines.append(f"| {s.method} | {s.attribute} | {st} | n/a (every image has the same verdict) | | | 0 |")
                continue
            lines.append(f"| {s.method} | {s.attribute} | {st} | {100 * s.success:.1f}% | {100 * s.preservation:.1f}% "
                         f"| {s.drift:.4f} | {s.n} |")
        for m, v in self.summary().items():
            lines.append(f"| **{m}** | mean | | **{100 * v['success']:.1f}%** | **{100 * v['preservation']:.1f}%** | "
                         f"{v['drift']:.4f} | |")
        return "\n".join(lines)

    def to_dict(self) -> Dict:
        def clean(v):
            return None if isinstance(v, float) and v != v else v  # NaN (no pair) -> null: valid JSON

        return {"scores": [{k: clean(v) for k, v in s.__dict__.items()} for s in self.scores],
                "summary": self.summary()}


def _verdicts(classifier, images: torch.Tensor) -> torch.Tensor:
    return classifier.predict(images) > 0.5


@torch.no_grad()
def _renders(pipe, ws: torch.Tensor, size: int, batch_size: int) -> torch.Tensor:
    return pool_to_size(pipe.generate(ws, batch_size=batch_size), size).clamp(-1, 1)


def evaluate_editing(pipe, images: torch.Tensor, classifier, attributes: Sequence[str],
                     methods: Sequence[str] = ("interfacegan", "classifier", "reference"),
                     strengths: Optional[Dict[str, Dict[str, float]]] = None,
                     layers: Optional[Dict[str, Dict[str, Tuple[int, int]]]] = None, batch_size: int = 64,
                     seed: int = 0, progress: bool = False, ws: Optional[torch.Tensor] = None) -> EditingReport:
    """Edits every image for every (method, attribute) and scores the results (module docstring).

    Args:
        pipe: pipeline with an encoder and editing models.
        images: ``[N, 3, S, S]`` in [-1, 1] (held-out images).
        classifier: image attribute classifier (the judge).
        attributes: attributes to edit (each must be known to the classifier).
        methods: editing methods to score.
        strengths: method -> attribute -> strength magnitude (default: the editing folder's; for
            ``reference``, the scale of the editor's move, 1 when absent).
        layers: method -> attribute -> ``(start, stop)`` W+ rows edited (default: the editing folder's,
            else all rows).
        batch_size: images per pass.
        seed: reference pairing.
        progress: progress bar.
        ws: the images' W+ codes when they are already known (any inversion method's); default: the
            pipeline's encoder inverts ``images``.

    Returns:
        ``EditingReport``.
    """
    from tqdm import tqdm

    size = images.shape[-1]
    if ws is None:
        ws = pipe.invert(list(images), batch_size=batch_size).ws
    elif len(ws) != len(images):
        raise ValueError(f"{len(ws)} codes for {len(images)} images")
    ws = ws.float().cpu()
    recon = _renders(pipe, ws, size, batch_size)
    base = _verdicts(classifier, recon)
    idx = {a: classifier.attributes.index(a) for a in attributes}
    g = torch.Generator().manual_seed(seed)
    report = EditingReport()
    jobs = [(m, a) for m in methods for a in attributes]
    for method, a in tqdm(jobs, desc="edit scores", unit="edit", disable=not progress):
        j = idx[a]
        others = [k for k in range(base.shape[1]) if k != j]
        if method == "reference":
            want = ~base[:, j]
            pool = {v: (base[:, j] == v).nonzero().flatten() for v in (True, False)}
            if not len(pool[True]) or not len(pool[False]):  # every image has the same verdict: no pair asks
                report.scores.append(EditScore(method, a, float("nan"), float("nan"), float("nan"), 0))
                continue
            ref = torch.stack([pool[bool(w)][torch.randint(len(pool[bool(w)]), (), generator=g)] for w in want])
            given = (strengths or {}).get(method, {}).get(a)  # None: the folder's (per direction, if stored)
            stored = pipe.editing.setting(method, a)
            strength = abs(given) if given is not None else (1.0 if stored.strength is None else stored.strength)
            edit_rows = layers.get(method, {}).get(a) if layers else stored.rows
            edited = torch.cat([pipe.edit_ws(ws[i:i + batch_size], a, ws_ref=ws[ref[i:i + batch_size]],
                                             method="reference", strength=None if given is None else abs(given),
                                             layers=edit_rows)
                                for i in range(0, len(ws), batch_size)])
            has_clf = getattr(pipe.editing, "latent_classifier", None) is not None  # tells which way an edit goes
            remove = stored.remove if given is None and has_clf else None
        else:
            remove = None
            stored = pipe.editing.setting(method, a)
            mag = abs(strengths.get(method, {}).get(a, 0.0) if strengths else (stored.strength or 0.0))
            if mag == 0.0:
                continue
            edit_rows = layers.get(method, {}).get(a) if layers else stored.rows
            want = ~base[:, j]
            edited = ws.clone()
            for add in (True, False):  # add where absent, remove where present: one batch per sign
                rows = (want == add).nonzero().flatten()
                for i in range(0, len(rows), batch_size):
                    r = rows[i:i + batch_size]
                    edited[r] = pipe.edit_ws(ws[r], a, strength=mag if add else -mag, method=method,
                                             layers=edit_rows)
            strength = mag
        out = _renders(pipe, edited, size, batch_size)
        after = _verdicts(classifier, out)
        report.scores.append(EditScore(
            method=method, attribute=a, success=float((after[:, j] == want).float().mean()),
            preservation=float((after[:, others] == base[:, others]).float().mean()),
            drift=float((out - recon).pow(2).mean()), n=len(ws), strength=strength,
            layers=tuple(edit_rows) if edit_rows is not None else None, strength_remove=remove))
    return report


def best_per_attribute(reports: Sequence[EditingReport], method: str = "interfacegan",
                       min_preservation: float = 0.9) -> Dict[str, int]:
    """For every attribute that ``method`` edited in any report: the index of the report that edits it
    best, the highest success among the scores that keep at least ``min_preservation`` of the other
    attributes, else the highest success of all (ties: the earlier report)."""
    found: Dict[str, List[Tuple[int, EditScore]]] = {}
    for k, rep in enumerate(reports):
        for sc in rep.scores:
            if sc.method == method and sc.n:
                found.setdefault(sc.attribute, []).append((k, sc))
    out: Dict[str, int] = {}
    for a, cands in found.items():
        keep = [c for c in cands if c[1].preservation >= min_preservation] or cands
        out[a] = max(keep, key=lambda c: (c[1].success, -c[0]))[0]
    return out
