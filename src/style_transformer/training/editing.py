"""Training the editing models on W+ codes: the W+ attribute classifier and the reference editors.

Both train on codes (the encoder's latents of labelled images), so they are quick: no generator, no
images. The reference editor's losses are the paper's: the edited code stays near the target's
(``|w_e - w_t|^2``), the edited attribute's classifier embedding is pulled to the reference's, and the
other attributes' embeddings are held to the target's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

from ..config import LatentClassifierConfig, ReferenceEditorConfig, _ConfigMixin
from ..models.editing import LatentClassifier, ReferenceEditor
from .common import TrainingError

log = logging.getLogger(__name__)


def _check_codes(ws: torch.Tensor, labels: torch.Tensor) -> None:
    if ws.ndim != 3 or labels.ndim != 2 or len(ws) != len(labels):
        raise TrainingError(f"need codes [N, L, d] and labels [N, A] of one N, got {tuple(ws.shape)} and "
                            f"{tuple(labels.shape)}")
    if not torch.isfinite(ws).all():
        raise TrainingError("the codes contain NaN or Inf")


def train_latent_classifier(ws: torch.Tensor, labels: torch.Tensor, cfg: LatentClassifierConfig, epochs: int = 30,
                            batch_size: int = 256, lr: float = 1e-3, val_fraction: float = 0.1, seed: int = 0,
                            progress: bool = False) -> Tuple[LatentClassifier, Dict[str, float]]:
    """Fits the W+ attribute classifier (BCE per attribute, Adam) on codes and 0/1 labels.

    Args:
        ws: ``[N, >= num_ws, w_dim]`` codes.
        labels: ``[N, A]`` 0/1, columns in ``cfg.attributes`` order.
        cfg: classifier architecture.
        epochs, batch_size, lr: optimisation.
        val_fraction: held out (the last part of a seeded permutation) for the reported accuracy.
        seed: initialisation and order.
        progress: progress bar.

    Returns:
        (model in eval mode, validation accuracy per attribute).
    """
    from tqdm import tqdm

    _check_codes(ws, labels)
    if labels.shape[1] != len(cfg.attributes):
        raise TrainingError(f"{labels.shape[1]} label columns for {len(cfg.attributes)} attributes")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    perm = torch.randperm(len(ws), generator=g)
    n_val = int(len(ws) * val_fraction)
    val, train = perm[:n_val], perm[n_val:]
    x = ws[:, : cfg.num_ws].float()
    y = labels.float()
    model = LatentClassifier(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * max(1, len(train) // batch_size))
    for _ in tqdm(range(epochs), desc="latent classifier", unit="epoch", disable=not progress):
        model.train()
        order = train[torch.randperm(len(train), generator=g)]
        for i in range(0, len(order) - batch_size + 1 if len(order) >= batch_size else 1, batch_size):
            idx = order[i:i + batch_size]
            logits, _ = model(x[idx])
            loss = F.binary_cross_entropy_with_logits(logits, y[idx])
            if not torch.isfinite(loss):
                raise TrainingError(f"latent classifier loss became {loss.item()}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    acc: Dict[str, float] = {}
    if n_val:
        with torch.no_grad():
            pred = model(x[val])[0] > 0
        acc = {a: float((pred[:, j] == (y[val, j] > 0.5)).float().mean()) for j, a in enumerate(cfg.attributes)}
    return model.requires_grad_(False), acc


@dataclass(frozen=True)
class EditorTrainConfig(_ConfigMixin):
    """Reference editor training (per attribute).

    Attributes:
        steps, batch_size, lr: optimisation (Adam).
        near_lambda: weight of ``|w_e - w_t|^2`` (mean over rows and channels).
        attr_lambda: weight of ``|e_a(w_e) - e_a(w_r)|^2`` (the edited attribute's embedding).
        keep_lambda: weight of the other attributes' ``|e_j(w_e) - e_j(w_t)|^2``.
        seed: initialisation and pair sampling.
    """

    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    near_lambda: float = 1.0
    attr_lambda: float = 1.0
    keep_lambda: float = 1.0
    seed: int = 0


def covariance_whitening(cov: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """``[d, d]`` symmetric ``P = (C / mean eigenvalue + eps I)^(-1/2)`` of a code covariance ``C``:
    ``|x P|^2`` is the squared length of a move ``x`` in the codes' own metric (Mahalanobis), scaled so
    that a move along a direction of average variance costs what it costs in Euclidean length; moves
    where codes do not vary cost up to ``1 / eps`` times more."""
    evals, evecs = torch.linalg.eigh(cov.double())
    scale = evals.clamp_min(0) / evals.clamp_min(0).mean() + eps
    return (evecs @ torch.diag(scale.rsqrt()) @ evecs.T).float()


def editor_losses(editor: ReferenceEditor, classifier: LatentClassifier, a: int, w_t: torch.Tensor,
                  w_r: torch.Tensor, cfg: EditorTrainConfig, emb_t: Optional[torch.Tensor] = None,
                  emb_r: Optional[torch.Tensor] = None, near_whitening: Optional[torch.Tensor] = None
                  ) -> Tuple[torch.Tensor, Dict[str, float]]:
    """The paper's reference-editing loss for a batch of (target, reference) code pairs (the targets'
    and references' classifier embeddings may be given precomputed). With ``near_whitening`` ``P``
    (``covariance_whitening``) the move is measured as ``|(w_e - w_t) P|^2``."""
    w_e = editor(w_t, w_r)
    n = classifier.cfg.num_ws
    _, emb_e = classifier(w_e[:, :n])
    with torch.no_grad():
        if emb_t is None:
            emb_t = classifier(w_t[:, :n])[1]
        if emb_r is None:
            emb_r = classifier(w_r[:, :n])[1]
    others = [j for j in range(emb_e.shape[1]) if j != a]
    move = w_e - w_t
    near = (move if near_whitening is None else move @ near_whitening.to(move)).pow(2).mean()
    attr = (emb_e[:, a] - emb_r[:, a]).pow(2).mean()
    keep = (emb_e[:, others] - emb_t[:, others]).pow(2).mean() if others else near * 0
    total = cfg.near_lambda * near + cfg.attr_lambda * attr + cfg.keep_lambda * keep
    return total, {"near": near.item(), "attr": attr.item(), "keep": keep.item(), "total": total.item()}


def train_reference_editor(ws: torch.Tensor, labels: torch.Tensor, classifier: LatentClassifier, attribute: str,
                           cfg: EditorTrainConfig = EditorTrainConfig(), n_heads: int = 4,
                           ffn_dim: Optional[int] = None, progress: bool = False,
                           near_whitening: Optional[torch.Tensor] = None) -> Tuple[ReferenceEditor, Dict]:
    """Trains one residual reference editor for ``attribute`` on (target, reference) pairs whose
    labels differ (so every pair asks for a change), with the classifier frozen.

    Args:
        ws: ``[N, L, d]`` codes.
        labels: ``[N]`` 0/1 values of ``attribute``.
        classifier: the trained W+ attribute classifier (frozen here).
        attribute: the attribute to transfer.
        cfg: optimisation and loss weights.
        n_heads, ffn_dim: block size (ffn default 2 d).
        near_whitening: measure the move from the target in the codes' metric (``editor_losses``).

    Returns:
        (editor in eval mode, last losses).
    """
    from tqdm import tqdm

    if ws.ndim != 3 or labels.ndim != 1 or len(ws) != len(labels):
        raise TrainingError(f"need codes [N, L, d] and labels [N], got {tuple(ws.shape)} and {tuple(labels.shape)}")
    a = classifier.index(attribute)
    pos, neg = (labels > 0.5).nonzero().flatten(), (labels <= 0.5).nonzero().flatten()
    if not len(pos) or not len(neg):
        raise TrainingError(f"{attribute}: both label values are needed to train a reference editor")
    d = ws.shape[-1]
    torch.manual_seed(cfg.seed)
    g = torch.Generator().manual_seed(cfg.seed)
    editor = ReferenceEditor(ReferenceEditorConfig(d_model=d, n_heads=n_heads, ffn_dim=ffn_dim or 2 * d,
                                                   attribute=attribute, residual=True))
    with torch.no_grad():  # start as the identity: the residual branch's last norm outputs zero
        editor.transformerlayer.norm3.weight.zero_()
        editor.transformerlayer.norm3.bias.zero_()
    classifier.requires_grad_(False).eval()
    with torch.no_grad():  # the classifier is frozen: every code's embeddings once, not per step
        emb = torch.cat([classifier(ws[i:i + 1024, : classifier.cfg.num_ws].float())[1]
                         for i in range(0, len(ws), 1024)])
    opt = torch.optim.Adam(editor.parameters(), lr=cfg.lr)
    logs: Dict[str, float] = {}
    half = cfg.batch_size // 2
    for _ in tqdm(range(cfg.steps), desc=f"editor {attribute}", unit="step", disable=not progress):
        # half the pairs add the attribute (target without, reference with), half remove it
        t = torch.cat([neg[torch.randint(len(neg), (half,), generator=g)],
                       pos[torch.randint(len(pos), (cfg.batch_size - half,), generator=g)]])
        r = torch.cat([pos[torch.randint(len(pos), (half,), generator=g)],
                       neg[torch.randint(len(neg), (cfg.batch_size - half,), generator=g)]])
        loss, logs = editor_losses(editor, classifier, a, ws[t].float(), ws[r].float(), cfg, emb[t], emb[r],
                                   near_whitening)
        if not torch.isfinite(loss):
            raise TrainingError(f"{attribute} editor loss became {loss.item()}")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return editor.eval().requires_grad_(False), logs


def label_matrix(names: Sequence[str], table: Dict[str, "object"], keys: Sequence[str], columns: Sequence[str]
                 ) -> torch.Tensor:
    """Rows of ``table`` (file name -> label values in ``names`` order) for ``keys`` (image stems or
    names), columns ``columns``, as a float ``[N, C]`` tensor; a missing row is a ``TrainingError``."""
    import numpy as np

    by_stem = {}
    for k, v in table.items():
        by_stem[k] = v
        by_stem[k.rsplit(".", 1)[0]] = v
    cols = [list(names).index(c) for c in columns]
    rows = []
    for k in keys:
        if k not in by_stem:
            raise TrainingError(f"no label row for {k!r}")
        rows.append(np.asarray(by_stem[k])[cols])
    return torch.from_numpy(np.stack(rows).astype(np.float32))
