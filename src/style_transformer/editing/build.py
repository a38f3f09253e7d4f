"""Building an editing folder from encoder latents of labelled images (what ``train-editor`` runs).

The W+ attribute classifier is trained on the latents (optionally relabelled by what each code draws,
and joined by mixed codes labelled by their renders); per attribute, an InterFaceGAN boundary is fitted
on the mean code and a reference editor is trained against the W+ classifier.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

import torch

from ..errors import InputError, OutputError, UsageError
from ..utils import atomic_path
from .directions import Direction, classify_renders, fit_boundary, mixed_codes, w_covariance
from .toolkit import EditingModels

log = logging.getLogger(__name__)

# strength stored for new label edits until calibration replaces it
UNCALIBRATED_STRENGTH = 3.0


@dataclass
class EditingBuildConfig:
    """How ``build_editing_models`` trains.

    Attributes:
        attributes: attributes to get a direction and an editor (None: every label column).
        epochs: W+ classifier epochs.
        editor_steps: steps per reference editor.
        hidden: W+ classifier MLP widths (the paper's: 2048, 512).
        seed: seed of every random choice.
        label_renders: replace the label columns the image classifier judges by its verdicts on the
            latents' renders (an encoder drops some attributes, so an input's label can be wrong for
            its code).
        mix_codes: also train the W+ classifier on this many mixed codes per latent, labelled by their
            renders (implies ``label_renders``).
        near_metric: how the editors' loss ``|w_e - w_t|^2`` measures a move: ``covariance`` (in the
            metric of the generator's mapped codes) or ``euclidean``.
    """

    attributes: Optional[Sequence[str]] = None
    epochs: int = 30
    editor_steps: int = 2000
    hidden: Tuple[int, ...] = (1024, 256)
    seed: int = 0
    label_renders: bool = False
    mix_codes: int = 0
    near_metric: str = "covariance"

    @property
    def needs_image_classifier(self) -> bool:
        return bool(self.label_renders or self.mix_codes)

    @property
    def needs_generator(self) -> bool:
        return self.needs_image_classifier or self.near_metric == "covariance"

    needs_judge = needs_image_classifier  # the old name (one release)


@dataclass
class EditingBuildReport:
    """What ``build_editing_models`` measured: W+ classifier validation accuracy per attribute, the
    boundaries' training accuracy, and how often the renders agreed with the given labels."""

    latents: int
    classifier_accuracy: Dict[str, float]
    boundary_accuracy: Dict[str, float] = field(default_factory=dict)
    label_agreement: Dict[str, float] = field(default_factory=dict)


def relabel_by_renders(generator, classifier, ws: torch.Tensor, columns: Sequence[str], labels: torch.Tensor,
                       progress: bool = False) -> Tuple[torch.Tensor, Dict[str, float]]:
    """The label columns that the image ``classifier`` judges, replaced by its verdicts on the
    renders of ``ws`` (what each code draws); other columns stay.

    Returns:
        (labels ``[N, C]``, column -> share of latents whose render agreed with the given label).
    """
    judged = [c for c in columns if c in classifier.attributes]
    if not judged:
        raise InputError(f"the image classifier judges none of the label columns ({', '.join(columns)})")
    verdicts = classify_renders(generator, classifier, ws, progress=progress)
    labels = labels.clone()
    agreement = {}
    for c in judged:
        j, k = list(columns).index(c), classifier.attributes.index(c)
        agreement[c] = float((labels[:, j] == verdicts[:, k]).float().mean())
        labels[:, j] = verdicts[:, k]
    return labels, agreement


class _Stages:
    """The finished stages of a build (the W+ classifier, then each editor) kept in ``folder``, so a
    killed build resumes after the last one. Every stage is seeded by itself, so a resumed build ends
    with the same models as one that was never stopped."""

    def __init__(self, folder: Optional[Path], fingerprint: str):
        self.folder = folder
        if folder is None:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{folder}: cannot create the folder of finished stages ({e.strerror or e})") from None
        stamp = folder / "build.json"
        if stamp.is_file() and json.loads(stamp.read_text()).get("fingerprint") != fingerprint:
            raise InputError(f"{folder}: the saved stages belong to another build (other latents, labels "
                             "or settings); remove the folder to start over")
        with atomic_path(stamp) as tmp:
            tmp.write_text(json.dumps({"fingerprint": fingerprint}))

    def load(self, name: str, kind: str):
        from ..checkpoints import load_model

        if self.folder is None or not (self.folder / f"{name}.safetensors").is_file():
            return None, None
        extra = json.loads((self.folder / f"{name}.json").read_text())
        return load_model(self.folder / f"{name}.safetensors", kind=kind), extra

    def save(self, name: str, model, extra) -> None:
        from ..checkpoints import save_model

        if self.folder is None:
            return
        with atomic_path(self.folder / f"{name}.json") as tmp:  # the model file last: it marks the stage done
            tmp.write_text(json.dumps(extra))
        save_model(model, self.folder / f"{name}.safetensors")


def _fingerprint(ws: torch.Tensor, labels: torch.Tensor, columns: Sequence[str], cfg: EditingBuildConfig) -> str:
    h = hashlib.sha256()
    for t in (ws, labels):
        h.update(t.detach().float().contiguous().numpy().tobytes())
    h.update(json.dumps([list(columns), {k: list(v) if isinstance(v, tuple) else v
                                         for k, v in asdict(cfg).items()}], default=list).encode())
    return h.hexdigest()


def build_editing_models(ws: torch.Tensor, labels: torch.Tensor, columns: Sequence[str],
                         cfg: EditingBuildConfig = EditingBuildConfig(), generator=None, classifier=None,
                         progress: bool = False, state_dir: Optional[Path] = None, judge=None
                         ) -> Tuple[EditingModels, EditingBuildReport]:
    """Trains the editing models of one generator on encoder latents of labelled images.

    Args:
        ws: latents ``[N, L, w_dim]``.
        labels: 0/1 labels ``[N, C]``, one column per name of ``columns``.
        columns: label names.
        cfg: what to train.
        generator: needed with ``label_renders``, ``mix_codes`` or the covariance metric.
        classifier: the image attribute classifier; needed with ``label_renders`` or ``mix_codes``.
        progress: progress bars.
        state_dir: keep each finished stage here and reuse the ones already there (a killed build
            resumes after its last finished stage); None: keep nothing.
        judge: the old name of ``classifier`` (kept for one release).

    Returns:
        (``EditingModels`` with a W+ classifier over every column, directions and editors for
        ``cfg.attributes``, label strengths set to ``UNCALIBRATED_STRENGTH``; the report).
    """
    from ..config import LatentClassifierConfig
    from ..training.editing import (EditorTrainConfig, covariance_whitening, train_latent_classifier,
                                   train_reference_editor)

    if judge is not None:
        log.warning("build_editing_models(judge=...) is now classifier=...")
        classifier = judge if classifier is None else classifier
    columns = list(columns)
    wanted = list(cfg.attributes or columns)
    missing = [a for a in wanted if a not in columns]
    if missing:
        raise InputError(f"no 0/1 label column {', '.join(missing)} (columns: {', '.join(columns)})")
    if cfg.mix_codes < 0:
        raise InputError(f"the number of mixed codes per latent must be >= 0, got {cfg.mix_codes}")
    if cfg.needs_generator and generator is None:
        raise InputError("relabelling, mixed codes and the covariance metric need the generator")
    if cfg.needs_image_classifier and classifier is None:
        raise InputError("relabelling and mixed codes need the image attribute classifier")
    if generator is not None and ws.shape[-1] != generator.style_dim:
        raise InputError(f"latents of width {ws.shape[-1]}, the generator's w_dim is {generator.style_dim}")
    agreement: Dict[str, float] = {}
    if cfg.needs_image_classifier:
        unjudged = [c for c in columns if c not in classifier.attributes]
        if cfg.mix_codes and unjudged:
            raise InputError(f"mixed codes: the image classifier does not judge {', '.join(unjudged)}, so they "
                             f"have no label for it (it judges {', '.join(classifier.attributes)})")
        labels, agreement = relabel_by_renders(generator, classifier, ws, columns, labels, progress=progress)
    clf_ws, clf_labels = ws, labels
    if cfg.mix_codes:
        mixed = mixed_codes(ws, cfg.mix_codes, seed=cfg.seed)
        verdicts = classify_renders(generator, classifier, mixed, progress=progress)
        mixed_labels = verdicts[:, [classifier.attributes.index(c) for c in columns]].to(labels.dtype)
        clf_ws, clf_labels = torch.cat([ws, mixed]), torch.cat([labels, mixed_labels])
    whitening = covariance_whitening(w_covariance(generator)) if cfg.near_metric == "covariance" else None
    clf_cfg = LatentClassifierConfig(attributes=tuple(columns), num_ws=ws.shape[1], w_dim=ws.shape[2],
                                     hidden=tuple(cfg.hidden))
    stages = _Stages(Path(state_dir) if state_dir is not None else None, _fingerprint(ws, labels, columns, cfg))
    clf, acc = stages.load("latent_classifier", "latent_classifier")
    if clf is None:
        clf, acc = train_latent_classifier(clf_ws, clf_labels, clf_cfg, epochs=cfg.epochs, seed=cfg.seed,
                                           progress=progress)
        stages.save("latent_classifier", clf, acc)
    models = EditingModels(latent_classifier=clf)
    report = EditingBuildReport(latents=len(ws), classifier_accuracy=acc, label_agreement=agreement)
    for a in wanted:
        j = columns.index(a)
        normal, _, info = fit_boundary(ws.mean(1), labels[:, j])
        models.directions[a] = Direction(a, normal[None], "interfacegan", info=info)
        report.boundary_accuracy[a] = info["accuracy"]
        editor, _ = stages.load(f"editor_{a}", "reference_editor")
        if editor is None:
            editor, losses = train_reference_editor(ws, labels[:, j], clf, a,
                                                    EditorTrainConfig(steps=cfg.editor_steps, seed=cfg.seed),
                                                    progress=progress, near_whitening=whitening)
            stages.save(f"editor_{a}", editor, {k: float(v) for k, v in losses.items()})
        models.editors[a] = editor
        for method in ("interfacegan", "classifier"):
            models.set(method, a, strength=UNCALIBRATED_STRENGTH)
    return models, report


def latents_and_labels(latents, labels, columns: Optional[Sequence[str]] = None):
    """The codes of ``latents`` (an ``.npz`` that ``invert`` wrote) joined with the rows of ``labels`` (a
    CSV or CelebA list) by image stem: ``(keys, codes [N, L, d], label names, labels [N, C])`` for the images
    present in both files, over ``columns`` (default: every 0/1 column). Raises ``UsageError`` naming
    what does not match."""
    from ..data.datasets import LabelError, binary_columns, load_labels
    from ..training.editing import label_matrix
    from ..workflow import load_latents

    arrays = load_latents(latents)
    try:
        names, table = load_labels(labels)
        binary = binary_columns(labels)
    except LabelError as e:
        raise UsageError(str(e)) from None
    columns = columns or binary
    bad = [c for c in columns if c not in binary]
    if bad:
        raise UsageError(f"{labels}: {', '.join(bad)} is not a 0/1 column (0/1 columns: {', '.join(binary)})")
    stems = {k.rsplit(".", 1)[0] for k in table} | set(table)
    keys = [k for k in arrays if k in stems]
    if not keys:
        raise UsageError(f"no latent in {latents} has a label row in {labels} (keys are image stems)")
    shapes = {arrays[k].shape for k in keys}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise UsageError(f"{latents}: expected W+ arrays of one (num_ws, w_dim) shape, got {sorted(shapes)[:3]}")
    ws = torch.from_numpy(np.stack([arrays[k] for k in keys]).astype(np.float32))
    if not torch.isfinite(ws).all():
        raise UsageError(f"{latents}: latents contain NaN or Inf")
    return keys, ws, columns, label_matrix(names, table, keys, columns)
