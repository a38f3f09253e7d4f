"""All editing models of one generator in one folder, and one ``edit`` entry point over them.

Folder layout (what ``train-editor`` writes and the package ships for the default domain)::

    EDIT/directions/directions.json + <name>.npy   InterFaceGAN boundaries (and any others)
    EDIT/latent_classifier.safetensors             the W+ attribute classifier
    EDIT/editors/<attribute>.safetensors           one reference editor per attribute
    EDIT/editing.json                              default strengths (and W+ row ranges) per method
                                                   and attribute; the metric of classifier edits

Methods: ``interfacegan`` (a stored direction), ``ganspace`` / ``sefa`` (component ``k`` computed from
the generator; ``attribute`` is the component index), ``classifier`` (gradient of the W+ classifier),
``reference`` (the attribute's reference editor with a reference image's code).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import torch

from ..utils import atomic_path
from .classifier_edit import edit_with_classifier
from .directions import (Direction, DirectionError, ganspace, load_directions, row_mask, save_directions,
                         sefa, w_covariance)

PathLike = Union[str, os.PathLike]
METHODS = ("interfacegan", "classifier", "reference", "ganspace", "sefa")
CLASSIFIER_METRICS = ("covariance", "euclidean")


@dataclass
class EditingModels:
    """Directions, the W+ classifier and the reference editors of one generator.

    Attributes:
        directions: name -> ``Direction`` (InterFaceGAN boundaries, published files).
        latent_classifier: the W+ attribute classifier (None: no classifier edits).
        editors: attribute -> ``ReferenceEditor``.
        strengths: method -> attribute -> default strength (used when none is given; for
            ``reference``, the scale of the editor's move, 1 when absent).
        layers: method -> attribute -> default ``(start, stop)`` W+ rows of direction, classifier and
            reference edits (used when none are given; a direction's own range, else all rows, when
            absent).
        classifier_metric: how classifier edits measure a step (``classifier_edit``): ``covariance``
            (the gradient multiplied by the covariance of the generator's mapped codes; what new folders
            use) or ``euclidean`` (the plain gradient; folders whose ``editing.json`` does not say).
        classifier_keep: attribute -> weight of holding the other attributes' embeddings in its
            classifier edits (``classifier_edit``; 1.0, the paper's, when absent).
        reference_remove: attribute -> the scale of its reference edits that remove the attribute
            (the W+ classifier's logit of the reference below the target's); the stored
            ``strengths["reference"]`` scale then serves the edits that add it (absent: one scale).
    """

    directions: Dict[str, Direction] = field(default_factory=dict)
    latent_classifier: Optional[torch.nn.Module] = None
    editors: Dict[str, torch.nn.Module] = field(default_factory=dict)
    strengths: Dict[str, Dict[str, float]] = field(default_factory=dict)
    layers: Dict[str, Dict[str, Tuple[int, int]]] = field(default_factory=dict)
    classifier_metric: str = "covariance"
    classifier_keep: Dict[str, float] = field(default_factory=dict)
    reference_remove: Dict[str, float] = field(default_factory=dict)
    _components: Dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, folder: PathLike) -> "EditingModels":
        """Reads an editing folder (every part optional); ``DirectionError`` if nothing is there."""
        from ..checkpoints import load_model

        folder = Path(folder)
        if not folder.is_dir():
            raise DirectionError(f"{folder}: no such editing folder")
        out = cls()
        if (folder / "directions").is_dir():
            out.directions = load_directions(folder / "directions")
        if (folder / "latent_classifier.safetensors").is_file():
            out.latent_classifier = load_model(folder / "latent_classifier.safetensors", kind="latent_classifier")
        if (folder / "editors").is_dir():
            for f in sorted((folder / "editors").glob("*.safetensors")):
                editor = load_model(f, kind="reference_editor")
                out.editors[editor.cfg.attribute or f.stem] = editor
        if (folder / "editing.json").is_file():
            settings = json.loads((folder / "editing.json").read_text())
            out.strengths = settings.get("strengths", {})
            out.layers = {m: {a: _row_range(r, folder / "editing.json") for a, r in v.items()}
                          for m, v in settings.get("layers", {}).items()}
            out.classifier_metric = settings.get("classifier_metric", "euclidean")
            if out.classifier_metric not in CLASSIFIER_METRICS:
                raise DirectionError(f"{folder / 'editing.json'}: classifier_metric must be one of "
                                     f"{', '.join(CLASSIFIER_METRICS)}, got {out.classifier_metric!r}")
            out.classifier_keep = _attribute_numbers(settings, "classifier_keep", "weights >= 0",
                                                     lambda v: v >= 0, folder / "editing.json")
            out.reference_remove = _attribute_numbers(settings, "reference_remove", "scales > 0",
                                                      lambda v: v > 0, folder / "editing.json")
        if not (out.directions or out.latent_classifier is not None or out.editors):
            raise DirectionError(f"{folder}: holds no directions, latent classifier or editors")
        return out

    def save(self, folder: PathLike, dtype: Optional[torch.dtype] = None) -> Path:
        """Writes the folder (``dtype``: e.g. ``torch.float16`` for shipped models; None keeps float32)."""
        from ..checkpoints import save_model

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.directions:
            save_directions(list(self.directions.values()), folder / "directions")
        if self.latent_classifier is not None:
            save_model(self.latent_classifier, folder / "latent_classifier.safetensors", dtype=dtype)
        for name, editor in self.editors.items():
            (folder / "editors").mkdir(exist_ok=True)
            save_model(editor, folder / "editors" / f"{name}.safetensors", dtype=dtype)
        with atomic_path(folder / "editing.json") as tmp:
            tmp.write_text(self.settings_json())
        return folder

    def settings_json(self) -> str:
        """The text of ``editing.json``: default strengths and row ranges."""
        settings = {"strengths": self.strengths, "classifier_metric": self.classifier_metric}
        if self.classifier_keep:
            settings["classifier_keep"] = self.classifier_keep
        if self.reference_remove:
            settings["reference_remove"] = self.reference_remove
        if self.layers:
            settings["layers"] = {m: {a: list(r) for a, r in v.items()} for m, v in self.layers.items()}
        return json.dumps(settings, indent=2)

    def available(self) -> Dict[str, List[str]]:
        """Method -> the attributes it can edit."""
        out = {"interfacegan": sorted(self.directions), "ganspace": ["0..9"], "sefa": ["0..9"]}
        if self.latent_classifier is not None:
            out["classifier"] = list(self.latent_classifier.attributes)
        out["reference"] = sorted(self.editors)
        return out

    def removing_scale(self, attribute: str) -> Optional[float]:
        """The stored scale of reference edits that remove ``attribute``, where one applies (a W+
        classifier tells which way an edit goes); None: one scale serves both ways."""
        return self.reference_remove.get(attribute) if self.latent_classifier is not None else None

    def default_method(self, reference: bool) -> str:
        return "reference" if reference else "interfacegan"

    def _component(self, method: str, index: str, generator) -> Direction:
        if method not in self._components:
            comps = ganspace(generator, 10)[0] if method == "ganspace" else sefa(generator, 10)[0]
            self._components[method] = comps
        try:
            k = int(index)
            vec = self._components[method][k]
        except (ValueError, IndexError):
            raise DirectionError(f"{method} edits take a component index 0..9 as the attribute, got {index!r}") from None
        return Direction(f"{method}_{k}", vec[None], method)

    def edit(self, ws: torch.Tensor, attribute: str, method: Optional[str] = None, strength: Optional[float] = None,
             ws_ref: Optional[torch.Tensor] = None, layers: Optional[Tuple[int, int]] = None,
             generator=None) -> torch.Tensor:
        """Edits codes ``ws [N, L, d]``.

        Args:
            attribute: attribute name (or component index for ganspace/sefa).
            method: one of ``METHODS`` (default: ``reference`` with ``ws_ref``, else ``interfacegan``).
            strength: signed strength (default: the stored one for this method and attribute). For
                ``reference`` a scale > 0 of the editor's move: ``w_t + s (editor(w_t, w_r) - w_t)``
                (default: the stored one, else 1, the editor's own output; with a stored
                ``reference_remove`` scale, that one where the edit removes the attribute).
            ws_ref: reference codes ``[N or 1, L, d]`` for ``reference``.
            layers: ``(start, stop)`` W+ rows to edit (default: the stored range for this method and
                attribute, if any; a reference edit keeps the target's other rows).
            generator: needed for ganspace/sefa.

        Returns:
            Edited codes.
        """
        method = method or self.default_method(ws_ref is not None)
        if method not in METHODS:
            raise DirectionError(f"unknown editing method {method!r}; choose from {', '.join(METHODS)}")
        if method == "reference":
            if ws_ref is None:
                raise DirectionError("reference editing needs a reference image")
            if attribute not in self.editors:
                raise DirectionError(f"no reference editor for {attribute!r} (have {', '.join(sorted(self.editors))})")
            editor = self.editors[attribute].to(ws.device)
            ref = ws_ref.expand(ws.shape[0], -1, -1) if ws_ref.shape[0] == 1 else ws_ref
            scale = strength if strength is not None else self.strengths.get("reference", {}).get(attribute, 1.0)
            if not 0 < scale < math.inf:
                raise DirectionError(f"a reference edit's strength scales the editor's move and must be > 0 "
                                     f"(and finite), got {scale}")
            rows = layers if layers is not None else self.layers.get("reference", {}).get(attribute)
            with torch.no_grad():
                out = editor(ws, ref.to(ws))
            scales = torch.full((ws.shape[0], 1, 1), float(scale), dtype=ws.dtype, device=ws.device)
            remove = self.removing_scale(attribute) if strength is None else None
            if remove is not None:
                clf = self.latent_classifier.to(ws.device)  # which way the edit goes: the W+ classifier's logits
                n, a = clf.cfg.num_ws, clf.index(attribute)
                with torch.no_grad():
                    removing = clf(ref.to(ws)[:, :n])[0][:, a] < clf(ws[:, :n])[0][:, a]
                scales[removing] = float(remove)
            if bool((scales == 1.0).all()) and (rows is None or tuple(rows) == (0, ws.shape[1])):
                return out
            return ws + scales * row_mask(ws, rows) * (out - ws)
        if strength is None:
            strength = self.strengths.get(method, {}).get(attribute)
            if strength is None:
                raise DirectionError(f"no default strength for {method} {attribute!r}: pass one")
        if not math.isfinite(strength):
            raise DirectionError(f"strength must be a finite number, got {strength}")
        if layers is None:
            layers = self.layers.get(method, {}).get(attribute)
        if method == "classifier":
            if self.latent_classifier is None:
                raise DirectionError("no W+ attribute classifier in this editing folder")
            metric = None
            if self.classifier_metric == "covariance":
                if generator is None:
                    raise DirectionError("classifier edits in the covariance metric need the generator")
                if "w_covariance" not in self._components:
                    self._components["w_covariance"] = w_covariance(generator).float()
                metric = self._components["w_covariance"]
            try:
                return edit_with_classifier(ws, self.latent_classifier.to(ws.device), attribute, strength,
                                            layers=layers, metric=metric,
                                            keep=self.classifier_keep.get(attribute, 1.0))
            except KeyError as e:
                raise DirectionError(str(e).strip('"')) from None
        if method in ("ganspace", "sefa"):
            if generator is None:
                raise DirectionError(f"{method} edits need the generator")
            return self._component(method, attribute, generator).apply(ws, strength, layers)
        if attribute not in self.directions:
            raise DirectionError(f"no direction {attribute!r} (have {', '.join(sorted(self.directions)) or 'none'})")
        return self.directions[attribute].apply(ws, strength, layers)


def _attribute_numbers(settings: Dict, key: str, what: str, ok, source: Path) -> Dict[str, float]:
    """``editing.json``'s ``key``: a map of attributes to numbers that pass ``ok`` (``what`` names the
    rule in the error), as floats; absent: empty."""
    value = settings.get(key, {})
    if not (isinstance(value, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool) and ok(v)
                                            for v in value.values())):
        raise DirectionError(f"{source}: {key} must map attributes to {what}, got {value!r}")
    return {a: float(v) for a, v in value.items()}


def _row_range(value, source: Path) -> Tuple[int, int]:
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value)
            and 0 <= value[0] < value[1]):
        raise DirectionError(f"{source}: a W+ row range must be [start, stop] with 0 <= start < stop, got {value!r}")
    return int(value[0]), int(value[1])
