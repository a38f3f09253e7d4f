"""The comparison table: every inversion method over one folder of test images, the same metrics.

Per method (an encoder checkpoint, or optimisation in W / W+, or PTI), streamed in batches so memory
stays bounded on folders of thousands of images:

* reconstruction: MSE and PSNR (images in [-1, 1], reconstructions as 8-bit PNGs hold them), LPIPS
  (the network is named in the output), MS-SSIM, FID between reconstructions and inputs (offline
  InceptionV3; needs >= 2 images), SWD (ProGAN, on the first ``swd_images`` images);
* identity: ArcFace IR-SE50 cosine similarity when its weights are given; otherwise, on labelled
  folders, the image attribute classifier's agreement with the labels;
* editing: label-edit success and preservation, reference match (``metrics.editing``, on the first
  ``edit_images`` images), with the method's own editing models, else with shared ones for the same
  generator (``editing``): every method's codes, edited the same way. Not for PTI (its edits would need
  the per-batch tuned generator);
* time per image (median of timed batches; batch 1 and batch 8) and parameter counts.

``evaluate`` returns one record per method (metric names as keys); ``write_results`` writes
``results.md``, ``results.csv`` and ``results.json``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..data.datasets import item_image
from ..data.images import as_written, pool_to_size
from ..utils import atomic_path

log = logging.getLogger(__name__)


@dataclass
class Method:
    """One inversion method.

    Attributes:
        name: the label in the table.
        invert: ``[N, 3, S, S]`` in [-1, 1] -> (ws, reconstructions ``[N, 3, G, G]``).
        params: parameter counts to report (e.g. {"encoder": ..., "generator": ...}).
        note: how it was set up (checkpoint, steps).
        pipe: the method's ``InversionPipeline`` (its generator renders the edits; its editing models,
            if any, are the ones scored).
        editable: whether editing scores apply (the codes render with ``pipe``'s generator).
    """

    name: str
    invert: Callable[[torch.Tensor], tuple]
    params: Dict[str, int] = field(default_factory=dict)
    note: str = ""
    pipe: object = None
    editable: bool = True


def _count(module) -> int:
    return int(sum(p.numel() for p in module.parameters()))


def encoder_method(name: str, pipe, note: str = "") -> Method:
    """An encoder (Style Transformer, pSp, e4e) through ``InversionPipeline``."""
    def run(x):
        res = pipe.invert(list(x), batch_size=len(x))
        return res.ws, res.images

    synthesis = sum(p.numel() for n, p in pipe.generator.named_parameters() if not n.startswith("style."))
    return Method(name, run, {"encoder": _count(pipe.model.encoder), "generator (synthesis)": int(synthesis)}, note,
                  pipe=pipe)


def optimization_method(name: str, pipe, space: str, steps: int, pti_steps: int = 0, lpips=None) -> Method:
    """Optimisation in W or W+ from ``latent_avg`` (and PTI after W+), as baselines."""
    from ..optimize import OptimizeConfig, optimize_latents, pivotal_tuning

    cfg = OptimizeConfig(space=space, steps=steps, pti_steps=pti_steps)

    def run(x):
        x = x.to(pipe.device)
        ws, noises = optimize_latents(pipe.generator, x, cfg, lpips=lpips)
        gen = pivotal_tuning(pipe.generator, x, ws, noises, cfg, lpips) if pti_steps else pipe.generator
        with torch.no_grad():
            return ws.cpu(), gen.synthesis(ws, noise=noises).float().cpu()

    params = {"generator (synthesis)": int(sum(p.numel() for n, p in pipe.generator.named_parameters()
                                               if not n.startswith("style.")))}
    return Method(name, run, params, f"{space} optimisation, {steps} steps" + (f", PTI {pti_steps}" if pti_steps else ""),
                  pipe=pipe, editable=not pti_steps)


def _timing(method: Method, images: torch.Tensor, batch: int, reps: int = 3) -> float:
    """Median seconds per image over ``reps`` timed calls on ``batch`` images (after one warm-up)."""
    x = images[:batch]
    if len(x) < batch:
        x = x.repeat((batch + len(x) - 1) // len(x), 1, 1, 1)[:batch]
    method.invert(x)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        method.invert(x)
        times.append((time.perf_counter() - t0) / batch)
    return statistics.median(times)


@torch.no_grad()
def _fid(features_a: List[np.ndarray], features_b: List[np.ndarray]) -> float:
    from .fid import frechet_distance, statistics as fid_stats

    a, b = np.concatenate(features_a), np.concatenate(features_b)
    return frechet_distance(*fid_stats(a), *fid_stats(b))


def own_editing(pipe):
    """A pipeline's editing models, or None when it has none."""
    from ..checkpoints import CheckpointError

    try:
        return pipe.editing
    except CheckpointError:
        return None


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two modules hold the same tensors (the same generator loaded twice)."""
    if a is b:
        return True
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and torch.equal(sa[k].cpu(), sb[k].cpu())
                                          for k in sa)


def edit_scores(pipe, images: torch.Tensor, classifier, ws: Optional[torch.Tensor] = None) -> Dict[str, float]:
    """Editing scores of a pipeline's editing models (``metrics.editing``), averaged over attributes:
    label edits (interfacegan, classifier) success and preservation, reference match. ``ws``: the
    images' codes from any inversion method (default: the pipeline's encoder inverts them)."""
    from .editing import evaluate_editing

    editing = own_editing(pipe)
    if editing is None:
        return {}
    attrs = [a for a in classifier.attributes if a in editing.directions or a in editing.editors]
    rep = evaluate_editing(pipe, images, classifier, attrs, methods=("interfacegan", "classifier", "reference"),
                           ws=ws)
    summary = rep.summary()
    label = [summary[m] for m in ("interfacegan", "classifier") if m in summary]
    out = {}
    if label:
        out["edit_success"] = float(np.mean([v["success"] for v in label]))
        out["edit_preservation"] = float(np.mean([v["preservation"] for v in label]))
    if "reference" in summary:
        out["reference_match"] = summary["reference"]["success"]
    return out


def evaluate(methods: Sequence[Method], dataset, n: Optional[int] = None, batch_size: int = 16, lpips=None,
             classifier=None, id_loss=None, fid: bool = True, swd_images: int = 1024, timing: bool = True,
             device="cpu", edit_images: int = 200, editing=None, editing_generator=None,
             progress: bool = False) -> List[Dict]:
    """Runs every method over the first ``n`` images of ``dataset`` (``[3, S, S]`` items, or
    (image, labels) with ``dataset.attribute_names``) and returns one record per method.

    Editing scores (with a ``classifier``) are computed on the first ``edit_images`` images from each
    method's own codes: with the method pipeline's editing models, else with ``editing``
    (``EditingModels``) when the method renders with ``editing_generator``'s weights. The record's
    ``editing`` says which (``own`` / ``shared``).
    """
    from tqdm import tqdm

    from .image import ms_ssim, swd
    from .inversion import psnr_db

    total = len(dataset) if n is None else min(n, len(dataset))
    names = list(getattr(dataset, "attribute_names", []))
    judged = [a for a in (classifier.attributes if classifier is not None else []) if a in names]
    inception = None
    if fid and total >= 2:
        from .fid import InceptionFeatures

        inception = InceptionFeatures(device)
    records = []
    for m in methods:
        edit_pipe, edit_source = None, None
        if classifier is not None and edit_images > 0 and m.editable and m.pipe is not None:
            if own_editing(m.pipe) is not None:
                edit_pipe, edit_source = m.pipe, "own"
            elif editing is not None and editing_generator is not None and same_weights(m.pipe.generator,
                                                                                        editing_generator):
                from ..inference import InversionPipeline

                edit_pipe, edit_source = InversionPipeline(m.pipe.generator, None, m.pipe.device, editing=editing), "shared"
        edit_n = min(edit_images, total) if edit_pipe is not None else 0
        edit_ws: List[torch.Tensor] = []
        edit_x: List[torch.Tensor] = []
        sums = {"mse": 0.0, "psnr": 0.0, "lpips": 0.0, "ms_ssim": 0.0, "id": 0.0}
        agree = np.zeros(len(judged))
        feats_x: List[np.ndarray] = []
        feats_y: List[np.ndarray] = []
        swd_x: List[torch.Tensor] = []
        swd_y: List[torch.Tensor] = []
        for i in tqdm(range(0, total, batch_size), desc=m.name, unit="batch", disable=not progress):
            items = [dataset[j] for j in range(i, min(i + batch_size, total))]
            x = torch.stack([item_image(t) for t in items])
            ws, y = m.invert(x)
            kept = sum(len(t) for t in edit_ws)
            if kept < edit_n:
                edit_ws.append(ws[: edit_n - kept].float().cpu())
                edit_x.append(x[: edit_n - kept])
            y = pool_to_size(y.float().cpu(), x.shape[-1])
            y = as_written(y)
            mse = (y - x).pow(2).flatten(1).mean(1)
            sums["mse"] += float(mse.sum())
            sums["psnr"] += float(psnr_db(mse).sum())
            sums["ms_ssim"] += float(ms_ssim(y.double(), x.double()).sum())
            if lpips is not None:
                sums["lpips"] += float(lpips(y.to(device), x.to(device)).sum())
            if id_loss is not None:
                sums["id"] += float((1 - id_loss(y.to(device), x.to(device))).sum())
            if judged:
                col = [names.index(a) for a in judged]
                labels = torch.stack([t[1] for t in items])[:, col] > 0.5
                pred = classifier.predict(y)[:, [classifier.attributes.index(a) for a in judged]] > 0.5
                agree += (pred == labels).float().sum(0).numpy()
            if inception is not None:
                feats_x.append(inception(x.to(device)))
                feats_y.append(inception(y.to(device)))
            if sum(len(t) for t in swd_x) < swd_images:
                swd_x.append(x)
                swd_y.append(y)
        rec: Dict = {"method": m.name, "images": total, "mse": sums["mse"] / total, "psnr": sums["psnr"] / total,
                     "ms_ssim": sums["ms_ssim"] / total}
        if lpips is not None:
            rec["lpips"] = sums["lpips"] / total
            rec["lpips_net"] = getattr(lpips, "net", "")
        if id_loss is not None:
            rec["id_similarity"] = sums["id"] / total
        if judged:
            rec["attribute_agreement"] = float(agree.sum() / (total * len(judged)))
        if inception is not None:
            rec["fid"] = _fid(feats_y, feats_x)
        if swd_x:
            sx, sy = torch.cat(swd_x)[:swd_images], torch.cat(swd_y)[:swd_images]
            if sx.shape[-1] >= 16:
                rec["swd"] = swd(sy, sx)[1]
        if timing:
            first = torch.stack([item_image(dataset[j]) for j in range(min(8, total))])
            rec["ms_per_image_batch1"] = 1000 * _timing(m, first, 1)
            rec["ms_per_image_batch8"] = 1000 * _timing(m, first, 8)
        if edit_ws:
            rec.update(edit_scores(edit_pipe, torch.cat(edit_x), classifier, ws=torch.cat(edit_ws)))
            rec["editing"] = edit_source
        for k, v in m.params.items():
            rec[f"params_{k.split(' ')[0]}"] = v
        rec["note"] = m.note + ("; edits: the shared editing models" if rec.get("editing") == "shared" else "")
        records.append(rec)
    return records


COLUMNS = [("method", "method", "{}"), ("psnr", "PSNR (dB)", "{:.2f}"), ("mse", "MSE", "{:.5f}"),
           ("lpips", "LPIPS", "{:.4f}"), ("ms_ssim", "MS-SSIM", "{:.4f}"), ("fid", "FID", "{:.2f}"),
           ("swd", "SWD (x1e3)", "{:.2f}"), ("id_similarity", "ID sim.", "{:.3f}"),
           ("attribute_agreement", "attr. agreement", "{:.1%}"), ("edit_success", "edit success", "{:.1%}"),
           ("edit_preservation", "edit preservation", "{:.1%}"), ("reference_match", "reference match", "{:.1%}"),
           ("ms_per_image_batch1", "ms/img (b1)", "{:.1f}"),
           ("ms_per_image_batch8", "ms/img (b8)", "{:.1f}"), ("params_encoder", "encoder params", "{:,}")]


def to_markdown(records: Sequence[Dict]) -> str:
    cols = [c for c in COLUMNS if any(c[0] in r for r in records)]
    lines = ["| " + " | ".join(c[1] for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in records:
        lines.append("| " + " | ".join(c[2].format(r[c[0]]) if r.get(c[0]) is not None else "n/a" for c in cols)
                     + " |")
    nets = {r.get("lpips_net") for r in records if r.get("lpips_net")}
    if nets:
        lines.append(f"\nLPIPS network: {', '.join(sorted(nets))}.")
    notes = [f"{r['method']}: {r['note']}" for r in records if r.get("note")]
    if notes:
        lines.append("\n" + "; ".join(notes) + ".")
    return "\n".join(lines) + "\n"


def write_results(records: Sequence[Dict], out: Path) -> Dict[str, Path]:
    """``results.md``, ``results.csv`` (one row per method, metric names as columns), ``results.json``."""
    out.mkdir(parents=True, exist_ok=True)
    keys = list(dict.fromkeys(k for r in records for k in r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys)
    writer.writeheader()
    for r in records:
        writer.writerow(r)
    paths = {"md": out / "results.md", "csv": out / "results.csv", "json": out / "results.json"}
    for kind, text in (("md", to_markdown(records)), ("csv", buf.getvalue()), ("json", json.dumps(records, indent=2))):
        with atomic_path(paths[kind]) as tmp:
            tmp.write_text(text)
    return paths
