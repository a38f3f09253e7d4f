"""All editing models of one generator in one folder, and one ``edit`` entry point over them.

Folder layout (what ``train-editor`` writes and the package ships for the default domain)::

    EDIT/directions/directions.json + <name>.npy   InterFaceGAN boundaries (and any others)
    EDIT/latent_classifier.safetensors             the W+ attribute classifier
    EDIT/editors/<attribute>.safetensors           one reference editor per attribute
    EDIT/editing.json                              default strengths (and W+ row ranges) per method
                                                   and attribute; the metric of classifier edits

The methods themselves (``interfacegan``, ``classifier``, ``reference``, ``ganspace``, ``sefa``) are the
``EDIT_METHODS`` registry of ``editing.methods``; settings and their JSON are ``editing.settings``.
"""

from __future__ import annotations

import copy
import json
import math
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from ..utils import PathLike, atomic_path
from .directions import Direction, DirectionError, ganspace, load_directions, save_directions, sefa, w_covariance
from .methods import EDIT_METHODS, METHODS, EditMethod, register_method  # noqa: F401
from .settings import (_ATTRIBUTE_MAPS, _JSON_FIELDS, CLASSIFIER_METRICS, EditSetting, Settings,  # noqa: F401
                       _attribute_numbers, _method_numbers, _row_range, settings_from_maps)

@dataclass
class EditingModels:
    """Directions, the W+ classifier and the reference editors of one generator.

    Attributes:
        directions: name -> ``Direction`` (InterFaceGAN boundaries, published files).
        latent_classifier: the W+ attribute classifier (None: no classifier edits).
        editors: attribute -> ``ReferenceEditor``.
        settings: method -> attribute -> ``EditSetting``, the calibrated defaults used where a call
            gives none.
        classifier_metric: how classifier edits measure a step (``classifier_edit``): ``covariance``
            (the gradient multiplied by the covariance of the generator's mapped codes; what new folders
            use) or ``euclidean`` (the plain gradient; folders whose ``editing.json`` does not say).
    """

    directions: Dict[str, Direction] = field(default_factory=dict)
    latent_classifier: Optional[torch.nn.Module] = None
    editors: Dict[str, torch.nn.Module] = field(default_factory=dict)
    settings: Settings = field(default_factory=dict)
    classifier_metric: str = "covariance"
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
            source = folder / "editing.json"
            try:
                settings = json.loads(source.read_text())
            except (ValueError, UnicodeDecodeError) as e:
                raise DirectionError(f"{source}: not valid JSON ({e})") from None
            if not isinstance(settings, dict):
                raise DirectionError(f"{source}: expected a JSON object of settings, got {type(settings).__name__}")
            layers = settings.get("layers", {})
            if not (isinstance(layers, dict) and all(isinstance(v, dict) for v in layers.values())):
                raise DirectionError(f"{source}: layers must map methods to attributes to [start, stop]")
            out.classifier_metric = settings.get("classifier_metric", "euclidean")
            if not isinstance(out.classifier_metric, str) or out.classifier_metric not in CLASSIFIER_METRICS:
                raise DirectionError(f"{source}: classifier_metric must be one of "
                                     f"{', '.join(CLASSIFIER_METRICS)}, got {out.classifier_metric!r}")
            out.settings = settings_from_maps(
                strengths=_method_numbers(settings, source),
                layers={m: {a: _row_range(r, source) for a, r in v.items()} for m, v in layers.items()},
                classifier_keep=_attribute_numbers(settings, "classifier_keep", "weights >= 0",
                                                   lambda v: v >= 0, source),
                reference_remove=_attribute_numbers(settings, "reference_remove", "scales > 0",
                                                    lambda v: v > 0, source))
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
        self.save_settings(folder)
        return folder

    def save_settings(self, folder: PathLike) -> Path:
        """Writes (atomically) only ``editing.json``, the settings; returns its path."""
        path = Path(folder) / "editing.json"
        with atomic_path(path) as tmp:
            tmp.write_text(self.settings_json())
        return path

    def settings_maps(self) -> Dict[str, Dict]:
        """The settings as ``editing.json``'s per-field maps (inverse of ``settings_from_maps``); empty maps
        left out."""
        maps: Dict[str, Dict] = {key: {} for key in _JSON_FIELDS}
        for m, per in self.settings.items():
            for a, s in per.items():
                for key, name in _JSON_FIELDS.items():
                    value = getattr(s, name)
                    if value is None:
                        continue
                    if key in _ATTRIBUTE_MAPS:
                        if m == _ATTRIBUTE_MAPS[key]:
                            maps[key][a] = value
                    else:
                        maps[key].setdefault(m, {})[a] = list(value) if key == "layers" else value
        return {k: v for k, v in maps.items() if v}

    def settings_json(self) -> str:
        """The text of ``editing.json``: default strengths, row ranges, hold weights and removing scales."""
        maps = self.settings_maps()
        settings = {"strengths": maps.pop("strengths", {}), "classifier_metric": self.classifier_metric, **maps}
        return json.dumps(settings, indent=2)

    def setting(self, method: str, attribute: str) -> EditSetting:
        """The stored setting of ``(method, attribute)`` (an empty one when none is stored)."""
        return self.settings.get(method, {}).get(attribute, EditSetting())

    def set(self, method: str, attribute: str, **fields) -> None:
        """Sets fields of the stored setting of ``(method, attribute)`` (e.g. ``strength=2.0, rows=(0, 4)``;
        None clears a field)."""
        s = replace(self.setting(method, attribute), **fields)
        if s == EditSetting():
            self.settings.get(method, {}).pop(attribute, None)
        else:
            self.settings.setdefault(method, {})[attribute] = s

    def strengths(self, method: str) -> Dict[str, float]:
        """Attribute -> the stored default strength of ``method`` (only those set)."""
        return {a: s.strength for a, s in self.settings.get(method, {}).items() if s.strength is not None}

    @contextmanager
    def trying(self, method: str, values: Dict[str, EditSetting]):
        """Within the block, ``values`` (attribute -> setting) replace the stored settings of ``method``
        (calibration scores candidate settings this way); the stored ones are back afterwards."""
        saved = copy.deepcopy(self.settings)
        try:
            for a, s in values.items():
                self.settings.setdefault(method, {})[a] = s
            yield self
        finally:
            self.settings = saved

    def available(self) -> Dict[str, List[str]]:
        """Method -> the attributes it can edit."""
        found = {name: m.attributes(self) for name, m in EDIT_METHODS.items()}
        return {name: attrs for name, attrs in found.items() if attrs is not None}

    def default_method(self, reference: bool) -> str:
        return "reference" if reference else "interfacegan"

    def component(self, method: str, index: str, generator) -> Direction:
        """Component ``index`` (0..9) of GANSpace or SeFa on ``generator`` (computed once)."""
        if method not in self._components:
            comps = ganspace(generator, 10)[0] if method == "ganspace" else sefa(generator, 10)[0]
            self._components[method] = comps
        try:
            k = int(index)
            vec = self._components[method][k]
        except (ValueError, IndexError):
            raise DirectionError(f"{method} edits take a component index 0..9 as the attribute, got {index!r}") from None
        return Direction(f"{method}_{k}", vec[None], method)

    def w_metric(self, generator) -> torch.Tensor:
        """The covariance of ``generator``'s mapped codes (the metric of classifier edits; computed once)."""
        if generator is None:
            raise DirectionError("classifier edits in the covariance metric need the generator")
        if "w_covariance" not in self._components:
            self._components["w_covariance"] = w_covariance(generator).float()
        return self._components["w_covariance"]

    def edit(self, ws: torch.Tensor, attribute: str, method: Optional[str] = None, strength: Optional[float] = None,
             ws_ref: Optional[torch.Tensor] = None, layers: Optional[Tuple[int, int]] = None,
             generator=None) -> torch.Tensor:
        """Edits codes ``ws [N, L, d]``.

        Args:
            attribute: attribute name (or component index for ganspace/sefa).
            method: one of ``METHODS`` (default: ``reference`` with ``ws_ref``, else ``interfacegan``).
            strength: signed strength (default: the stored one for this method and attribute). For
                ``reference`` a scale > 0 of the editor's move: ``w_t + s (editor(w_t, w_r) - w_t)``
                (default: the stored one, else 1, the editor's own output; with a stored removing
                scale, that one where the edit removes the attribute).
            ws_ref: reference codes ``[N or 1, L, d]`` for ``reference``.
            layers: ``(start, stop)`` W+ rows to edit (default: the stored range for this method and
                attribute, if any; a reference edit keeps the target's other rows).
            generator: needed for ganspace/sefa and for classifier edits in the covariance metric.

        Returns:
            Edited codes.
        """
        method = method or self.default_method(ws_ref is not None)
        if method not in EDIT_METHODS:
            raise DirectionError(f"unknown editing method {method!r}; choose from {', '.join(METHODS)}")
        spec = EDIT_METHODS[method]
        if spec.needs_reference and ws_ref is None:
            raise DirectionError(f"{method} editing needs a reference image")
        given = EditSetting(strength=strength, rows=tuple(layers) if layers is not None else None)
        if strength is not None:  # an explicit strength serves both ways
            given = replace(given, remove=strength)
        setting = self.setting(method, attribute).merged(given)
        if spec.needs_strength:
            if setting.strength is None:
                raise DirectionError(f"no default strength for {method} {attribute!r}: pass one")
            if not math.isfinite(setting.strength):
                raise DirectionError(f"strength must be a finite number, got {setting.strength}")
        return spec.apply(self, ws, attribute, setting, ws_ref, generator)
