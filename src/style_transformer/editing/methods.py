"""Editing methods: one function per way of moving codes, in the ``EDIT_METHODS`` registry.

``interfacegan`` (a stored direction), ``ganspace`` / ``sefa`` (component ``k`` computed from the
generator; ``attribute`` is the component index), ``classifier`` (gradient of the W+ classifier),
``reference`` (the attribute's reference editor with a reference image's code). ``EditingModels.edit``
resolves the setting and calls one of them; ``register_method`` adds one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

import torch

from .classifier_edit import edit_with_classifier
from .directions import DirectionError, row_mask
from .settings import EditSetting

if TYPE_CHECKING:
    from .toolkit import EditingModels


@dataclass(frozen=True)
class EditMethod:
    """One way of editing codes: ``apply(models, ws, attribute, setting, ws_ref, generator) -> ws``
    with ``setting`` the stored defaults merged with what the caller gave; ``attributes(models)``
    lists what it can edit."""

    name: str
    apply: Callable
    attributes: Callable
    needs_reference: bool = False
    needs_strength: bool = True


EDIT_METHODS: Dict[str, EditMethod] = {}


def register_method(name: str, attributes: Callable, needs_reference: bool = False, needs_strength: bool = True):
    """Decorator: adds an ``apply`` function to ``EDIT_METHODS`` under ``name``."""

    def wrap(fn: Callable) -> Callable:
        EDIT_METHODS[name] = EditMethod(name, fn, attributes, needs_reference, needs_strength)
        return fn

    return wrap


def _interfacegan_attributes(models: EditingModels) -> List[str]:
    return sorted(models.directions)


@register_method("interfacegan", _interfacegan_attributes)
def _edit_direction(models: EditingModels, ws, attribute, setting: EditSetting, ws_ref, generator):
    """A stored direction (InterFaceGAN boundary or a published one): ``ws + s n``."""
    if attribute not in models.directions:
        raise DirectionError(f"no direction {attribute!r} (have {', '.join(sorted(models.directions)) or 'none'})")
    return models.directions[attribute].apply(ws, setting.strength, setting.rows)


def _classifier_attributes(models: EditingModels) -> Optional[List[str]]:
    return None if models.latent_classifier is None else list(models.latent_classifier.attributes)


@register_method("classifier", _classifier_attributes)
def _edit_classifier(models: EditingModels, ws, attribute, setting: EditSetting, ws_ref, generator):
    """Steps along the W+ classifier's gradient for ``attribute`` (``classifier_edit``)."""
    if models.latent_classifier is None:
        raise DirectionError("no W+ attribute classifier in this editing folder")
    metric = models.w_metric(generator) if models.classifier_metric == "covariance" else None
    try:
        return edit_with_classifier(ws, models.latent_classifier.to(ws.device), attribute, setting.strength,
                                    layers=setting.rows, metric=metric,
                                    keep=1.0 if setting.keep is None else setting.keep)
    except KeyError as e:
        raise DirectionError(str(e).strip('"')) from None


@register_method("reference", lambda models: sorted(models.editors), needs_reference=True, needs_strength=False)
def _edit_reference(models: EditingModels, ws, attribute, setting: EditSetting, ws_ref, generator):
    """The attribute's reference editor with the reference codes, its move scaled (by the removing
    scale where the W+ classifier says the edit removes the attribute) on the setting's rows."""
    if attribute not in models.editors:
        raise DirectionError(f"no reference editor for {attribute!r} (have {', '.join(sorted(models.editors))})")
    editor = models.editors[attribute].to(ws.device)
    ref = ws_ref.expand(ws.shape[0], -1, -1) if ws_ref.shape[0] == 1 else ws_ref
    scale = 1.0 if setting.strength is None else setting.strength
    for s in (scale, setting.remove):
        if s is not None and not 0 < s < math.inf:
            raise DirectionError(f"a reference edit's strength scales the editor's move and must be > 0 "
                                 f"(and finite), got {s}")
    with torch.no_grad():
        out = editor(ws, ref.to(ws))
    scales = torch.full((ws.shape[0], 1, 1), float(scale), dtype=ws.dtype, device=ws.device)
    if setting.remove is not None and setting.remove != scale and models.latent_classifier is not None:
        clf = models.latent_classifier.to(ws.device)  # which way the edit goes: the W+ classifier's logits
        n, a = clf.cfg.num_ws, clf.index(attribute)
        with torch.no_grad():
            removing = clf(ref.to(ws)[:, :n])[0][:, a] < clf(ws[:, :n])[0][:, a]
        scales[removing] = float(setting.remove)
    rows = setting.rows
    if bool((scales == 1.0).all()) and (rows is None or tuple(rows) == (0, ws.shape[1])):
        return out
    return ws + scales * row_mask(ws, rows) * (out - ws)


def _component_method(name: str):
    @register_method(name, lambda models: ["0..9"])
    def _edit_component(models: EditingModels, ws, attribute, setting: EditSetting, ws_ref, generator):
        if generator is None:
            raise DirectionError(f"{name} edits need the generator")
        return models.component(name, attribute, generator).apply(ws, setting.strength, setting.rows)

    _edit_component.__doc__ = f"Component ``attribute`` (an index) of {name} on the generator's weights."
    return _edit_component


_edit_ganspace = _component_method("ganspace")
_edit_sefa = _component_method("sefa")


METHODS = tuple(EDIT_METHODS)
