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
            strength = abs(given) if given is not None else pipe.editing.strengths.get(method, {}).get(a, 1.0)
            edit_rows = (layers or getattr(pipe.editing, "layers", {})).get(method, {}).get(a)
            edited = torch.cat([pipe.edit_ws(ws[i:i + batch_size], a, ws_ref=ws[ref[i:i + batch_size]],
                                             method="reference", strength=None if given is None else abs(given),
                                             layers=edit_rows)
                                for i in range(0, len(ws), batch_size)])
            removing = getattr(pipe.editing, "removing_scale", None)  # EditingModels: its scale for removing
            remove = removing(a) if given is None and removing is not None else None
        else:
            remove = None
            mag = abs((strengths or pipe.editing.strengths).get(method, {}).get(a, 0.0))
            if mag == 0.0:
                continue
            edit_rows = (layers or getattr(pipe.editing, "layers", {})).get(method, {}).get(a)
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


def candidate_row_ranges(num_ws: int) -> List[Tuple[int, int]]:
    """W+ row ranges that label-edit calibration tries: all rows, then contiguous spans of 40-60% of
    them from coarse to fine (for 10 rows: 0-10, 0-4, 0-6, 2-6, 2-8, 4-8, 4-10, 6-10)."""
    spans = [(0.0, 1.0), (0.0, 0.4), (0.0, 0.6), (0.2, 0.6), (0.2, 0.8), (0.4, 0.8), (0.4, 1.0), (0.6, 1.0)]
    out: List[Tuple[int, int]] = []
    for a, b in spans:
        start = min(int(round(a * num_ws)), num_ws - 1)
        r = (start, min(max(int(round(b * num_ws)), start + 1), num_ws))
        if r not in out:
            out.append(r)
    return out


def score_settings(pipe, images: torch.Tensor, classifier, attributes: Sequence[str],
                   methods: Sequence[str] = ("interfacegan", "classifier"),
                   grid: Sequence[float] = (1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 11.0, 15.0, 20.0, 30.0),
                   layer_ranges: Optional[Sequence[Tuple[int, int]]] = None,
                   keeps: Optional[Sequence[float]] = None,
                   reference_grid: Sequence[float] = (0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0), batch_size: int = 64,
                   progress: bool = False, ws: Optional[torch.Tensor] = None, desc: str = "settings"
                   ) -> Dict[str, Dict[str, List]]:
    """``evaluate_editing`` at every setting: each (row range, strength) of ``layer_ranges`` x ``grid``
    (``reference_grid`` for reference edits, only attributes with an editor; x ``keeps`` for classifier
    edits), every image's codes edited from the same inversion (``ws``, else inverted once).

    Returns:
        method -> attribute -> ``[(strength, success, preservation, rows or None, keep or None)]``.
    """
    from tqdm import tqdm

    ranges: List[Optional[Tuple[int, int]]] = list(layer_ranges) if layer_ranges else [None]
    results: Dict[str, Dict[str, List]] = {m: {a: [] for a in attributes} for m in methods}
    if ws is None:  # once: every setting edits the same codes
        ws = pipe.invert(list(images), batch_size=batch_size).ws
    jobs = [(m, r, mag, k) for m in methods for r in ranges
            for k in (keeps if m == "classifier" and keeps else [None])
            for mag in (reference_grid if m == "reference" else grid)]
    todo = {m: [a for a in attributes if a in pipe.editing.editors] if m == "reference" else list(attributes)
            for m in methods}
    saved = dict(pipe.editing.classifier_keep) if keeps else None
    try:
        for m, r, mag, k in tqdm(jobs, desc=desc, unit="setting", disable=not progress):
            if k is not None:
                pipe.editing.classifier_keep = {a: float(k) for a in attributes}
            rep = evaluate_editing(pipe, images, classifier, todo[m], methods=(m,),
                                   strengths={m: {a: mag for a in todo[m]}},
                                   layers=None if r is None else {m: {a: r for a in todo[m]}},
                                   batch_size=batch_size, ws=ws)
            for sc in rep.scores:
                if sc.n:  # a reference edit with no pair (every image has one verdict) has no score
                    results[m][sc.attribute].append((mag, sc.success, sc.preservation, r, k))
    finally:
        if saved is not None:
            pipe.editing.classifier_keep = saved
    return results


def calibrate_strengths(pipe, images: torch.Tensor, classifier, attributes: Sequence[str],
                        methods: Sequence[str] = ("interfacegan", "classifier"),
                        grid: Sequence[float] = (1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 11.0, 15.0, 20.0, 30.0),
                        layer_ranges: Optional[Sequence[Tuple[int, int]]] = None, target: float = 0.95,
                        min_preservation: float = 0.9, batch_size: int = 64, progress: bool = False,
                        keeps: Optional[Sequence[float]] = None,
                        reference_grid: Sequence[float] = (0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
                        ws: Optional[torch.Tensor] = None
                        ) -> Tuple[Dict[str, Dict[str, float]], Dict[str, Dict[str, Tuple[int, int]]], Dict[str, float]]:
    """Default strengths (and W+ row ranges, and hold weights of classifier edits) for label and
    reference edits, chosen on (training) images.

    Every (row range, strength) pair of ``layer_ranges`` x ``grid`` (for reference edits
    ``reference_grid``, scales of the editor's move; for classifier edits, x ``keeps``) is scored by
    ``score_settings`` (a reference edit's success is its match; only attributes with an editor).
    Per method and attribute the choice is the smallest strength whose success reaches ``target``
    while preservation stays at or above ``min_preservation`` (the order of ranges, then of keeps,
    breaks ties); failing that, the best success among the settings that preserve enough (or among
    all when none does), with the smaller strength among equal successes (the largest when nothing
    succeeds at all).

    Args:
        keeps: weights of holding the other attributes' embeddings in classifier edits to try
            (``classifier_edit``; None: the editing folder's own, not searched).
        reference_grid: scales of the reference editors' move to try (1: the editor's own output).
        ws: the images' codes when already inverted (default: the pipeline's encoder inverts them).

    Returns:
        ``(strengths, layers, keeps)``: method -> attribute -> strength magnitude; method -> attribute
        -> ``(start, stop)`` (only with ``layer_ranges``; otherwise empty and the edits use the editing
        folder's ranges); attribute -> chosen hold weight of classifier edits (only with ``keeps``).
    """
    results = score_settings(pipe, images, classifier, attributes, methods=methods, grid=grid,
                             layer_ranges=layer_ranges, keeps=keeps, reference_grid=reference_grid,
                             batch_size=batch_size, progress=progress, ws=ws, desc="calibrate")
    strengths: Dict[str, Dict[str, float]] = {}
    layers: Dict[str, Dict[str, Tuple[int, int]]] = {}
    chosen_keeps: Dict[str, float] = {}
    for m in methods:
        strengths[m] = {}
        for a, rows in results[m].items():
            if not rows:
                continue
            good = [x for x in rows if x[1] >= target and x[2] >= min_preservation]
            if good:
                pick = min(good, key=lambda x: x[0])  # min keeps the first (range, keep order) among equals
            else:
                ok = [x for x in rows if x[2] >= min_preservation] or rows
                pick = max(ok, key=lambda x: (x[1], x[0] if x[1] == 0 else -x[0]))
            strengths[m][a] = pick[0]
            if pick[3] is not None:
                layers.setdefault(m, {})[a] = pick[3]
            if pick[4] is not None:
                chosen_keeps[a] = pick[4]
    return strengths, layers, chosen_keeps


def calibrate_reference_directions(pipe, images: torch.Tensor, classifier, attributes: Sequence[str],
                                   grid: Sequence[float] = (0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0),
                                   target: float = 0.95, min_preservation: float = 0.9, batch_size: int = 64,
                                   progress: bool = False, ws: Optional[torch.Tensor] = None
                                   ) -> Tuple[Dict[str, float], Dict[str, float]]:
    """Separate scales for reference edits that add and that remove an attribute (which way an edit
    goes: the W+ classifier's logits of reference and target, ``EditingModels.edit``), on the editing
    folder's stored rows.

    Every pair of ``grid`` x ``grid`` is scored with ``evaluate_editing`` (the folder's settings set per
    pair and restored after). Per attribute (those with an editor) the choice is, among the pairs whose
    match reaches ``target`` with preservation >= ``min_preservation``, the one with the smallest larger
    scale (then the smaller sum); failing that, the best match among the pairs that preserve enough (or
    among all), with the smaller sum among equal matches. Equal scales (one scale for both) are among
    the pairs, so the choice never scores below the best single scale of ``grid`` on these images.

    ``ws``: the images' codes when already inverted (default: the pipeline's encoder inverts them).

    Returns:
        ``(add, remove)``: attribute -> scale.
    """
    from tqdm import tqdm

    models = pipe.editing
    todo = [a for a in attributes if a in models.editors]
    if not todo or models.latent_classifier is None:
        return {}, {}
    if ws is None:
        ws = pipe.invert(list(images), batch_size=batch_size).ws
    had_reference = "reference" in models.strengths
    saved = dict(models.strengths.get("reference", {})), dict(models.reference_remove)
    results: Dict[str, List[Tuple[float, float, float, float]]] = {a: [] for a in todo}
    pairs = [(x, y) for x in grid for y in grid]
    try:
        for add, rem in tqdm(pairs, desc="calibrate add/remove", unit="pair", disable=not progress):
            models.strengths["reference"] = {**saved[0], **{a: add for a in todo}}
            models.reference_remove = {**saved[1], **{a: rem for a in todo}}
            rep = evaluate_editing(pipe, images, classifier, todo, methods=("reference",), batch_size=batch_size,
                                   ws=ws)
            for sc in rep.scores:
                if sc.n:
                    results[sc.attribute].append((add, rem, sc.success, sc.preservation))
    finally:
        models.strengths["reference"], models.reference_remove = saved
        if not had_reference:
            del models.strengths["reference"]
    adds: Dict[str, float] = {}
    removes: Dict[str, float] = {}
    for a, rows in results.items():
        if not rows:
            continue
        good = [x for x in rows if x[2] >= target and x[3] >= min_preservation]
        if good:
            pick = min(good, key=lambda x: (max(x[0], x[1]), x[0] + x[1]))
        else:
            ok = [x for x in rows if x[3] >= min_preservation] or rows
            pick = max(ok, key=lambda x: (x[2], -(x[0] + x[1])))
        adds[a], removes[a] = pick[0], pick[1]
    return adds, removes
