"""The paper's editing models: the W+ attribute classifier and the reference-based edit block.

Both load the official key layouts (``classifier.module.*`` of LCNet_40,
``encoder.module.transformerlayer.*`` of the edit encoder) through the checkpoint loader and match
the official outputs (tests/data/parity).
"""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import nn
import torch.nn.functional as F

from ..config import LatentClassifierConfig, ReferenceEditorConfig
from .encoder import QueryBlock


class LatentClassifier(nn.Module):
    """W+ -> per-attribute logits and embeddings (the official LCNet_40 layout).

    ``forward(ws [N, num_ws, w_dim]) -> (logits [N, A], embeddings [N, A, embed_dim])``: ws flattened,
    ``fcs`` (linear + leaky ReLU each), then per attribute ``indep_fcs[a]`` (linear, the embedding)
    and ``output_fcs[a]`` (linear to one logit, from the embedding).
    """

    def __init__(self, cfg: LatentClassifierConfig):
        super().__init__()
        self.cfg = cfg
        widths = [cfg.num_ws * cfg.w_dim, *cfg.hidden]
        self.fcs = nn.ModuleList([nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:])])
        self.indep_fcs = nn.ModuleList([nn.Linear(widths[-1], cfg.embed_dim) for _ in cfg.attributes])
        self.output_fcs = nn.ModuleList([nn.Linear(cfg.embed_dim, 1) for _ in cfg.attributes])

    @property
    def attributes(self) -> List[str]:
        return list(self.cfg.attributes)

    def index(self, attribute: str) -> int:
        """Logit index of ``attribute``; ``KeyError`` names the known ones."""
        try:
            return self.cfg.attributes.index(attribute)
        except ValueError:
            raise KeyError(f"the latent classifier has no attribute {attribute!r} "
                           f"(it has {', '.join(self.cfg.attributes)})") from None

    def forward(self, ws: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        if ws.ndim != 3 or ws.shape[1] < cfg.num_ws or ws.shape[2] != cfg.w_dim:
            raise ValueError(f"latent classifier input must be [N, {cfg.num_ws}, {cfg.w_dim}], got {tuple(ws.shape)}")
        h = ws[:, : cfg.num_ws].reshape(ws.shape[0], -1)
        for fc in self.fcs:
            h = F.leaky_relu(fc(h), cfg.negative_slope)
        # every attribute's head at once (the same math as looping over the per-attribute Linear layers,
        # which the official layout keeps): [N, H] x [A, E, H] -> [N, A, E], then [N, A, E] . [A, E] -> [N, A]
        w_emb = torch.stack([fc.weight for fc in self.indep_fcs])  # [A, E, H]
        b_emb = torch.stack([fc.bias for fc in self.indep_fcs])  # [A, E]
        emb = torch.einsum("nh,aeh->nae", h, w_emb) + b_emb
        w_out = torch.stack([fc.weight[0] for fc in self.output_fcs])  # [A, E]
        b_out = torch.cat([fc.bias for fc in self.output_fcs])  # [A]
        logits = (emb * w_out).sum(-1) + b_out
        return logits, emb


class ReferenceEditor(nn.Module):
    """``forward(ws_target [N, L, d], ws_ref [N, L, d]) -> ws_edit [N, L, d]``: one transformer layer
    (self-attention among the target's rows, cross-attention into the reference's rows, FFN), the
    official edit encoder's ``transformerlayer``."""

    def __init__(self, cfg: ReferenceEditorConfig):
        super().__init__()
        self.cfg = cfg
        self.transformerlayer = QueryBlock(cfg.d_model, cfg.n_heads, cfg.ffn_dim)

    def forward(self, ws_target: torch.Tensor, ws_ref: torch.Tensor) -> torch.Tensor:
        d = self.cfg.d_model
        if ws_target.ndim != 3 or ws_target.shape[-1] != d or ws_ref.shape != ws_target.shape:
            raise ValueError(f"editor inputs must be two [N, L, {d}] W+ batches of one shape, got "
                             f"{tuple(ws_target.shape)} and {tuple(ws_ref.shape)}")
        out = self.transformerlayer(ws_target, ws_ref)
        return ws_target + out if self.cfg.residual else out
