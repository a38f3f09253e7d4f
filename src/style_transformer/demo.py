"""The main job in one call: invert a few faces with the shipped models and show the results.

``run_demo`` takes images (or renders held-out faces: seed ``pretrained.TEST_SEED``, never seen in
training), inverts them, renders the edits the pipeline's editing models offer (three attribute toggles and one reference
edit), and writes into ``out/``:

* ``grid.png``: one row per image: input | reconstruction | edits;
* ``index.html``: the same as a page, with PSNR and attribute verdicts;
* ``latents.npz``: the W+ code of every image (key = image name);
* ``images/``: every tile as its own PNG;
* with ``video=True``, ``video/``: a held-out rendered clip (``clip.mp4``, ``clip.csv``), its
  reconstruction and an edited version (``reconstruction.mp4``, ``edited.mp4``: an attribute toggled
  on every frame, through the video pipeline) and ``side_by_side.mp4`` (input | reconstruction |
  edit, enlarged 4x), shown in the page.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .data.images import ImageLike, pool_to_size, preprocess, save_image, to_uint8
from .inference import InversionPipeline
from .utils import PathLike, atomic_path

log = logging.getLogger(__name__)


@dataclass
class DemoResult:
    """Where ``run_demo`` wrote its outputs, and what it measured."""

    out: Path
    grid: Path
    html: Path
    latents: Path
    names: List[str]
    psnr: List[float]
    video: Optional[Path] = None


def held_out_faces(n: int, size: int = 64):
    """The first ``n`` held-out rendered faces (``TEST_SEED``) as (uint8 images ``[n, size, size, 3]``,
    attribute dict)."""
    from .data.synthetic import BINARY_ATTRIBUTES, render_dataset_batch
    from .pretrained import TEST_SEED

    batch = render_dataset_batch(TEST_SEED, list(range(n)), size)
    return batch.images, {k: batch.attributes[k] for k in BINARY_ATTRIBUTES}


def _slug(column: str) -> str:
    return column.replace(" ", "_")


def _tile_row(tiles: Sequence[torch.Tensor]) -> np.ndarray:
    return np.concatenate(list(to_uint8(torch.stack(list(tiles)))), axis=1)


def run_demo(out: PathLike = "demo_out", images: Optional[Sequence[ImageLike]] = None,
             names: Optional[Sequence[str]] = None, n: int = 6, pipe: Optional[InversionPipeline] = None,
             classifier=None, video: bool = False) -> DemoResult:
    """Inverts images (default: ``n`` held-out rendered faces) and writes grid, page and latents.

    Args:
        out: output folder (created).
        images: PIL images, paths, arrays or tensors; None renders held-out faces.
        names: one name per image (default: face_0, face_1, ...).
        n: number of rendered faces when ``images`` is None.
        pipe: the pipeline (default: ``load_pipeline()``, the shipped models).
        classifier: image attribute classifier for the verdicts in the page (default: the shipped one
            when the pipeline is the default; None skips them).
        video: also invert and edit a held-out rendered clip (needs PyAV and editing models).

    Returns:
        ``DemoResult``.
    """
    from PIL import Image

    from .inference import load_pipeline

    default = pipe is None
    pipe = pipe if pipe is not None else load_pipeline()
    if classifier is None and default:
        from .pretrained import load_default

        classifier = load_default("attribute_classifier")
    labels: Dict[str, np.ndarray] = {}
    if images is None:
        arrays, labels = held_out_faces(n, pipe.input_size)
        images = list(arrays)
    images = list(images)
    names = list(names) if names is not None else [f"face_{i}" for i in range(len(images))]
    x = preprocess(images, pipe.input_size)
    res = pipe.invert(list(x), batch_size=32)
    recon = pool_to_size(res.images, pipe.input_size).clamp(-1, 1)
    psnr = (10 * torch.log10(4.0 / (recon - x).pow(2).flatten(1).mean(1).clamp_min(1e-12))).tolist()
    verdicts = classifier.predict(recon) if classifier is not None else None
    edits = _edits(pipe, res.ws, verdicts, classifier)
    columns = ["input", "reconstruction"] + list(edits)
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, name in enumerate(names):
        tiles = [x[i], recon[i]] + [e[i] for e in edits.values()]
        for col, tile in zip(columns, tiles):
            save_image(tile, out / "images" / f"{name}_{_slug(col)}.png")
        rows.append(_tile_row(tiles))
    grid_path = out / "grid.png"
    with atomic_path(grid_path) as tmp:
        Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG")
    latents_path = out / "latents.npz"
    with atomic_path(latents_path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{name: w.numpy().astype(np.float32) for name, w in zip(names, res.ws)})
    clip = _video_demo(pipe, out / "video") if video else None
    page = _page(names, columns, psnr, labels, verdicts, classifier, clip)
    html_path = out / "index.html"
    with atomic_path(html_path) as tmp:
        tmp.write_text(page)
    return DemoResult(out, grid_path, html_path, latents_path, names, psnr,
                      video=out / "video" / "side_by_side.mp4" if clip else None)


VIDEO_FRAMES, VIDEO_FPS, VIDEO_ATTRIBUTE = 60, 30, "Eyeglasses"


def _video_demo(pipe: InversionPipeline, folder: Path) -> Dict[str, str]:
    """The clip part of the demo (module docstring). Returns what the page says of it."""
    from .data.video import VideoReader, read_clip_attributes, require_av, write_synth_clip, write_video
    from .errors import UsageError
    from .pretrained import TEST_SEED
    from .video import edit_video, invert_video

    require_av()
    strengths = pipe.editing.strengths("interfacegan")
    attribute = VIDEO_ATTRIBUTE if VIDEO_ATTRIBUTE in strengths else next(iter(strengths), None)
    if attribute is None:
        raise UsageError("the video demo edits with a calibrated direction: the editing models have none")
    folder.mkdir(parents=True, exist_ok=True)
    clip, csv = write_synth_clip(folder / "clip.mp4", VIDEO_FRAMES, fps=VIDEO_FPS, size=pipe.input_size,
                                 seed=TEST_SEED, subject=0)
    labels = read_clip_attributes(csv)
    present = attribute in labels and labels[attribute][0] > 0.5
    strength = (-1 if present else 1) * strengths[attribute]
    recon: List[np.ndarray] = []
    edited: List[np.ndarray] = []
    run = invert_video(pipe, clip, folder / "reconstruction.mp4", latents=folder / "latents.npz", on_frame=recon.append)
    edit_video(pipe, clip, folder / "edited.mp4", attribute, strength=strength, on_frame=edited.append)
    with VideoReader(clip) as r:
        frames = [f.rgb for f in r.frames()]
    side = np.concatenate([np.stack(frames), np.stack(recon), np.stack(edited)], axis=2)
    side = side.repeat(4, axis=1).repeat(4, axis=2)  # enlarged, pixels kept sharp
    write_video(folder / "side_by_side.mp4", side, fps=VIDEO_FPS)
    what = f"{attribute} {'removed' if present else 'added'} (strength {strength:+g})"
    return {"edit": what, "frames": str(run.frames), "fps": f"{run.fps:.0f}"}


DEMO_ATTRIBUTES = ("Smiling", "Eyeglasses", "Bangs", "Wearing_Hat", "Blond_Hair")


def _edits(pipe: InversionPipeline, ws: torch.Tensor, verdicts, classifier) -> Dict[str, torch.Tensor]:
    """Column name -> edited renders ``[N, 3, S, S]``: three attribute edits by the default method (each
    image gets the attribute toggled: added where the classifier sees it absent, removed where present)
    and one reference edit (each image takes the next image's attribute). Empty without editing models."""
    from .checkpoints import CheckpointError
    from .editing import DirectionError

    try:
        editing = pipe.editing
    except (CheckpointError, DirectionError):
        return {}
    out: Dict[str, torch.Tensor] = {}
    strengths = editing.strengths("interfacegan")
    picked = [a for a in DEMO_ATTRIBUTES if a in editing.directions and a in strengths][:3]
    for a in picked:
        sign = torch.ones(len(ws))
        if verdicts is not None and a in classifier.attributes:
            sign = 1 - 2 * (verdicts[:, classifier.attributes.index(a)] > 0.5).float()
        edited = torch.cat([pipe.edit_ws(ws[i:i + 1], a, strength=float(sign[i]) * strengths[a])
                            for i in range(len(ws))])
        out[f"{a} toggled"] = pool_to_size(pipe.generate(edited), pipe.input_size).clamp(-1, 1)
    ref_attr = next((a for a in DEMO_ATTRIBUTES if a in editing.editors), next(iter(editing.editors), None))
    if ref_attr is not None and len(ws) > 1:
        edited = pipe.edit_ws(ws, ref_attr, ws_ref=ws.roll(-1, 0), method="reference")
        out[f"{ref_attr} from the next row"] = pool_to_size(pipe.generate(edited), pipe.input_size).clamp(-1, 1)
    return out


def _page(names, columns, psnr, labels, verdicts, classifier, clip: Optional[Dict[str, str]] = None) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for i, name in enumerate(names):
        cells = "".join(f'<td><img src="images/{html.escape(name)}_{_slug(c)}.png" width="128" '
                        f'height="128" alt="{html.escape(c)}"></td>' for c in columns)
        notes = [f"PSNR {psnr[i]:.2f} dB"]
        if verdicts is not None:
            present = [a for j, a in enumerate(classifier.attributes) if verdicts[i, j] > 0.5]
            notes.append("classifier on the reconstruction: " + (", ".join(present) or "none of its attributes"))
        if labels:
            true = [a for a, v in labels.items() if v[i] > 0.5]
            notes.append("rendered with: " + (", ".join(true) or "none"))
        body.append(f"<tr><th>{html.escape(name)}</th>{cells}<td>{'<br>'.join(map(html.escape, notes))}</td></tr>")
    return ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>style-transformer demo</title>"
            "<style>body{font-family:sans-serif}img{image-rendering:pixelated}td,th{padding:4px;"
            "vertical-align:middle}</style></head><body>\n<h1>Style Transformer inversion</h1>\n"
            f"<p>Mean PSNR {np.mean(psnr):.2f} dB over {len(names)} images. Latents: "
            "<a href=\"latents.npz\">latents.npz</a>.</p>\n"
            f"<table><tr><th></th>{head}<th>notes</th></tr>\n" + "\n".join(body) + "\n</table>"
            + ("\n" + _video_section(clip) if clip else "") + "</body></html>\n")


def _video_section(clip: Dict[str, str]) -> str:
    return ("<h2>Video</h2>\n<p>A held-out rendered clip (" + html.escape(clip["frames"]) + " frames): input | "
            "reconstruction | " + html.escape(clip["edit"]) + " on every frame; the W+ codes smoothed over time "
            "(style-transformer edit-video). Files: <a href=\"video/clip.mp4\">clip.mp4</a>, "
            "<a href=\"video/reconstruction.mp4\">reconstruction.mp4</a>, <a href=\"video/edited.mp4\">edited.mp4</a>, "
            "<a href=\"video/latents.npz\">latents.npz</a>.</p>\n"
            "<video src=\"video/side_by_side.mp4\" width=\"768\" height=\"256\" controls loop autoplay muted "
            "playsinline></video>\n")
