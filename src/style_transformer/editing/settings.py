"""The settings of an editing folder's ``editing.json``: one ``EditSetting`` per method and attribute
(default strength, W+ rows, the classifier's hold weight, the reference editor's removal scale), the
maps they are stored as, and the checks of a file read from disk (one error naming the bad value)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Dict, Optional, Tuple

from .directions import DirectionError

CLASSIFIER_METRICS = ("covariance", "euclidean")


@dataclass
class EditSetting:
    """The stored defaults of one (method, attribute) pair; None: not set (the edit's own default).

    Attributes:
        strength: default signed strength of label edits; for ``reference`` edits, the scale of the
            editor's move (1 when absent) used where the edit adds the attribute (or both ways).
        rows: default ``(start, stop)`` W+ rows edited (a direction's own range, else all, when absent).
        keep: classifier edits: the weight of holding the other attributes' embeddings (1, the paper's,
            when absent).
        remove: reference edits: the scale where the edit removes the attribute (the W+ classifier's
            logit of the reference below the target's); absent: ``strength`` serves both ways.
    """

    strength: Optional[float] = None
    rows: Optional[Tuple[int, int]] = None
    keep: Optional[float] = None
    remove: Optional[float] = None

    def merged(self, other: "EditSetting") -> "EditSetting":
        """This setting with ``other``'s set fields taking over."""
        return replace(self, **{k: v for k, v in asdict(other).items() if v is not None})


Settings = Dict[str, Dict[str, EditSetting]]  # method -> attribute -> setting

# editing.json stores one map per field (a stable file format): its key -> the EditSetting field
_JSON_FIELDS = {"strengths": "strength", "layers": "rows", "classifier_keep": "keep", "reference_remove": "remove"}
# the methods whose settings the two per-attribute maps belong to
_ATTRIBUTE_MAPS = {"classifier_keep": "classifier", "reference_remove": "reference"}


def settings_from_maps(strengths: Optional[Dict[str, Dict[str, float]]] = None,
                       layers: Optional[Dict[str, Dict[str, Tuple[int, int]]]] = None,
                       classifier_keep: Optional[Dict[str, float]] = None,
                       reference_remove: Optional[Dict[str, float]] = None) -> Settings:
    """Settings records from the per-field maps of ``editing.json`` (method -> attribute -> value, and
    attribute -> value for the classifier's hold weights and the reference edits' removing scales)."""
    out: Settings = {}

    def put(method: str, attribute: str, **value) -> None:
        s = out.setdefault(method, {}).setdefault(attribute, EditSetting())
        out[method][attribute] = replace(s, **value)

    for m, v in (strengths or {}).items():
        for a, x in v.items():
            put(m, a, strength=float(x))
    for m, v in (layers or {}).items():
        for a, r in v.items():
            put(m, a, rows=(int(r[0]), int(r[1])))
    for a, x in (classifier_keep or {}).items():
        put("classifier", a, keep=float(x))
    for a, x in (reference_remove or {}).items():
        put("reference", a, remove=float(x))
    return out


def _method_numbers(settings: Dict, source: Path) -> Dict[str, Dict[str, float]]:
    """``editing.json``'s ``strengths``: method -> attribute -> finite number."""
    value = settings.get("strengths", {})
    if not (isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                    for v in value.values() for x in v.values())):
        raise DirectionError(f"{source}: strengths must map methods to attributes to numbers, got {value!r}")
    return value


def _attribute_numbers(settings: Dict, key: str, what: str, ok, source: Path) -> Dict[str, float]:
    """``editing.json``'s ``key``: a map of attributes to numbers that pass ``ok`` (``what`` names the
    rule in the error), as floats; absent: empty."""
    value = settings.get(key, {})
    if not (isinstance(value, dict) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                            and math.isfinite(v) and ok(v) for v in value.values())):
        raise DirectionError(f"{source}: {key} must map attributes to {what}, got {value!r}")
    return {a: float(v) for a, v in value.items()}


def _row_range(value, source: Path) -> Tuple[int, int]:
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value)
            and 0 <= value[0] < value[1]):
        raise DirectionError(f"{source}: a W+ row range must be [start, stop] with 0 <= start < stop, got {value!r}")
    return int(value[0]), int(value[1])
