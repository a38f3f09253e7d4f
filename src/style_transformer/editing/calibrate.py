"""Calibration: the editing folder's default settings chosen on (training) images, judged by the image
attribute classifier (``metrics.editing``).

Label edits (``interfacegan``, ``classifier``) get a strength and W+ rows per attribute (and, on request,
the classifier edits' hold weight); reference edits a scale of the editor's move and rows, then separate
scales for edits that add and that remove the attribute. ``pick_per_attribute`` chooses, per attribute,
among the directions or editors of several editing folders. Everything here changes the ``EditingModels``
in memory; ``calibrate_folder`` / ``pick_into_folder`` write the result into the folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..metrics.editing import EditingReport, best_per_attribute, evaluate_editing
from .toolkit import EditingModels

# Strength magnitudes tried for label edits (interfacegan, classifier): roughly geometric, 1 to 30.
LABEL_STRENGTHS = (1.0, 2.0, 3.0, 4.5, 6.0, 8.0, 11.0, 15.0, 20.0, 30.0)
# Scales of the reference editors' move tried (1: the editor's own output).
REFERENCE_SCALES = (0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)
# A setting succeeds when this share of the edits does what was asked ...
TARGET_SUCCESS = 0.95
# ... while this share of the other attributes' verdicts is kept.
MIN_PRESERVATION = 0.9
CALIBRATED_METHODS = ("interfacegan", "classifier", "reference")


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
                   grid: Sequence[float] = LABEL_STRENGTHS,
                   layer_ranges: Optional[Sequence[Tuple[int, int]]] = None,
                   keeps: Optional[Sequence[float]] = None,
                   reference_grid: Sequence[float] = REFERENCE_SCALES, batch_size: int = 64,
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
    for m, r, mag, k in tqdm(jobs, desc=desc, unit="setting", disable=not progress):
        trial = {a: replace(pipe.editing.setting(m, a), keep=float(k)) for a in attributes} if k is not None else {}
        with pipe.editing.trying(m, trial):
            rep = evaluate_editing(pipe, images, classifier, todo[m], methods=(m,),
                                   strengths={m: {a: mag for a in todo[m]}},
                                   layers=None if r is None else {m: {a: r for a in todo[m]}},
                                   batch_size=batch_size, ws=ws)
        for sc in rep.scores:
            if sc.n:  # a reference edit with no pair (every image has one verdict) has no score
                results[m][sc.attribute].append((mag, sc.success, sc.preservation, r, k))
    return results


def calibrate_strengths(pipe, images: torch.Tensor, classifier, attributes: Sequence[str],
                        methods: Sequence[str] = ("interfacegan", "classifier"),
                        grid: Sequence[float] = LABEL_STRENGTHS,
                        layer_ranges: Optional[Sequence[Tuple[int, int]]] = None, target: float = TARGET_SUCCESS,
                        min_preservation: float = MIN_PRESERVATION, batch_size: int = 64, progress: bool = False,
                        keeps: Optional[Sequence[float]] = None,
                        reference_grid: Sequence[float] = REFERENCE_SCALES,
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
                                   grid: Sequence[float] = REFERENCE_SCALES,
                                   target: float = TARGET_SUCCESS, min_preservation: float = MIN_PRESERVATION, batch_size: int = 64,
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
    results: Dict[str, List[Tuple[float, float, float, float]]] = {a: [] for a in todo}
    pairs = [(x, y) for x in grid for y in grid]
    for add, rem in tqdm(pairs, desc="calibrate add/remove", unit="pair", disable=not progress):
        trial = {a: replace(models.setting("reference", a), strength=add, remove=rem) for a in todo}
        with models.trying("reference", trial):
            rep = evaluate_editing(pipe, images, classifier, todo, methods=("reference",), batch_size=batch_size,
                                   ws=ws)
        for sc in rep.scores:
            if sc.n:
                results[sc.attribute].append((add, rem, sc.success, sc.preservation))
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


@dataclass
class Calibration:
    """What ``calibrate_editing`` chose (and set in the editing models).

    Attributes:
        strengths: method -> attribute -> strength magnitude (reference: the scale of edits that add,
            or of both ways when no removing scale was chosen).
        rows: method -> attribute -> ``(start, stop)`` W+ rows (empty without the row search).
        keeps: attribute -> hold weight of classifier edits (only when searched).
        removes: attribute -> scale of reference edits that remove the attribute.
    """

    strengths: Dict[str, Dict[str, float]] = field(default_factory=dict)
    rows: Dict[str, Dict[str, Tuple[int, int]]] = field(default_factory=dict)
    keeps: Dict[str, float] = field(default_factory=dict)
    removes: Dict[str, float] = field(default_factory=dict)

    def apply(self, models: EditingModels) -> None:
        """Stores the chosen settings in ``models`` (other settings stay)."""
        for m, per in self.strengths.items():
            for a, v in per.items():
                models.set(m, a, strength=float(v))
        for m, per in self.rows.items():
            for a, r in per.items():
                models.set(m, a, rows=tuple(r))
        for a, k in self.keeps.items():
            models.set("classifier", a, keep=float(k))
        for a, r in self.removes.items():
            models.set("reference", a, remove=float(r))


def calibrate_editing(pipe, images: torch.Tensor, classifier, attributes: Sequence[str],
                      methods: Sequence[str] = CALIBRATED_METHODS, layer_search: bool = True,
                      keeps: Optional[Sequence[float]] = None, reference_grid: Sequence[float] = REFERENCE_SCALES,
                      batch_size: int = 64, progress: bool = False) -> Calibration:
    """Chooses the editing models' default settings on ``images`` and sets them in ``pipe.editing``.

    Label and reference edits: a strength (reference: scale) and, with ``layer_search``, W+ rows per
    attribute (``calibrate_strengths``); then, for reference edits when the folder has a W+ classifier,
    separate scales for adding and removing on the chosen rows (``calibrate_reference_directions``).

    Args:
        pipe: pipeline with an encoder and editing models (changed in place).
        images: ``[N, 3, S, S]`` in [-1, 1] (training images of the domain).
        classifier: the image attribute classifier (the judge).
        attributes: attributes to calibrate (each known to the classifier).
        methods: among ``interfacegan``, ``classifier``, ``reference`` (others are ignored).
        layer_search: also choose W+ rows among ``candidate_row_ranges`` (else the stored ones stay).
        keeps: hold weights of classifier edits to choose among (None: the stored ones, not searched).
        reference_grid: scales of the reference editors' move to try.
        batch_size: images per pass.
        progress: progress bars.

    Returns:
        ``Calibration``: what was chosen.
    """
    methods = [m for m in methods if m in CALIBRATED_METHODS]
    ranges = candidate_row_ranges(pipe.generator.num_ws) if layer_search else None
    ws = pipe.invert(list(images), batch_size=batch_size).ws  # once for both searches
    strengths, rows, chosen_keeps = calibrate_strengths(pipe, images, classifier, attributes, methods=methods,
                                                        layer_ranges=ranges, batch_size=batch_size,
                                                        progress=progress, keeps=keeps,
                                                        reference_grid=reference_grid, ws=ws)
    out = Calibration(strengths=strengths, rows=rows, keeps=chosen_keeps)
    out.apply(pipe.editing)
    if "reference" in methods and pipe.editing.latent_classifier is not None:
        adds, removes = calibrate_reference_directions(pipe, images, classifier, attributes, grid=reference_grid,
                                                       batch_size=batch_size, progress=progress, ws=ws)
        out.strengths.setdefault("reference", {}).update(adds)
        out.removes = removes
        out.apply(pipe.editing)
    return out


@dataclass
class Pick:
    """What ``pick_per_attribute`` chose: per attribute, the index of the winning candidate (0: the
    pipeline's own models), and every candidate's report."""

    kind: str
    chosen: Dict[str, int]
    reports: List[EditingReport]


PICK_KINDS = {"directions": "interfacegan", "editors": "reference"}


def pick_per_attribute(pipe, images: torch.Tensor, classifier, attributes: Sequence[str],
                       candidates: Sequence[EditingModels], kind: str, batch_size: int = 64,
                       progress: bool = False) -> Pick:
    """Per attribute, keeps ``pipe.editing``'s InterFaceGAN direction (``kind="directions"``) or reference
    editor (``"editors"``) or takes a candidate folder's, whichever edits ``images`` best
    (``best_per_attribute``: success among edits keeping >= 90% of the other attributes). A taken
    direction or editor comes with its calibrated setting. ``pipe.editing`` is changed in place.

    Returns:
        ``Pick``.
    """
    from ..inference import InversionPipeline

    if kind not in PICK_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PICK_KINDS)}, got {kind!r}")
    method = PICK_KINDS[kind]
    ws = pipe.invert(list(images), batch_size=batch_size).ws
    reports = []
    for models in [pipe.editing, *candidates]:
        view = InversionPipeline(pipe.generator, None, pipe.device, editing=models)
        todo = [a for a in attributes if a in getattr(models, kind)]
        reports.append(evaluate_editing(view, images, classifier, todo, methods=(method,), ws=ws,
                                        batch_size=batch_size, progress=progress))
    chosen = best_per_attribute(reports, method)
    target = pipe.editing
    for a, k in chosen.items():
        if not k:
            continue
        src = candidates[k - 1]
        getattr(target, kind)[a] = getattr(src, kind)[a]
        target.set(method, a, **vars(src.setting(method, a)))  # its calibrated setting, or none
    return Pick(kind, chosen, reports)


def write_pick(folder, models: EditingModels, pick: Pick, candidate_folders: Sequence) -> None:
    """Writes what ``pick_per_attribute`` changed into the editing ``folder``: the directions, or the
    chosen editors (each stored as its source file was: fp16 stays fp16), and ``editing.json``."""
    from safetensors import safe_open

    from ..checkpoints import save_model
    from .directions import save_directions

    folder = Path(folder)
    if pick.kind == "directions":
        save_directions(list(models.directions.values()), folder / "directions")
    else:
        for a, k in pick.chosen.items():
            if k:
                with safe_open(str(Path(candidate_folders[k - 1]) / "editors" / f"{a}.safetensors"), "pt") as f:
                    half = any(f.get_slice(key).get_dtype() == "F16" for key in f.keys())
                save_model(models.editors[a], folder / "editors" / f"{a}.safetensors",
                           dtype=torch.float16 if half else None)
    models.save_settings(folder)
