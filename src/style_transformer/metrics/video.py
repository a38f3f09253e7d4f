"""How well a video is inverted and edited, against a rendered clip's ground truth.

A clip from ``dataset synth-video`` comes with every frame's attributes, so every frame's true image
is known exactly (re-rendered, not decoded). ``evaluate_video`` runs the video pipeline on the clip
twice, once with each frame on its own (``smooth = 0``) and once smoothed, and measures the frames
each run hands to the video encoder (the output file adds H.264's own loss and frame-to-frame noise,
the same for any frames it is given: at 64 px and crf 18 it adds about as much frame-to-frame change
to the true frames themselves as the inversion does):

- ``psnr``, ``lpips``: per-frame reconstruction quality against the true frames (mean over frames;
  PSNR of images in [-1, 1], LPIPS alex-st).
- ``change`` and ``true_change``: the mean frame-to-frame change ``mean |x_t - x_{t-1}|`` (over frames
  and pixels, images in [-1, 1]) of the output and of the true frames; ``jitter = change -
  true_change``: the temporal jitter, how much more the output changes from frame to frame than the
  truth does.
- ``flicker`` and ``true_flicker``: the part of each frame's change that does not continue the motion,
  ``mean |x_t - (x_{t-1} + x_{t+1}) / 2|`` (zero for any motion at constant speed; frames averaged over
  4 x 4 pixel blocks first, ``FLICKER_POOL``, so that single pixels' 8-bit rounding toggling as a value
  drifts past a step counts less than a region that brightens and dims).
- ``w_change``: the mean L2 norm of the frame-to-frame change of the W+ code (per row, averaged).

With an edit (``attribute``, at ``strength`` or the editing folder's calibrated one), the edited clip is judged by the image attribute
classifier, frame by frame: ``edit_present`` (share of frames where the classifier sees the edited
value), ``edit_kept`` (share of the frames where the per-frame edit succeeds on which this run's edit
is present), ``edit_switches`` (how often the verdict flips between consecutive frames),
``edit_change`` (``change`` of the edited clip), ``edit_true_change`` (that of the true edited clip: the
clip rendered with the edited attribute set on every frame, when the renderer draws that attribute;
else the true clip's), ``edit_jitter`` (their difference), ``edit_flicker`` and ``edit_true_flicker`` (``flicker`` of the
edited clip and of the true edited clip) and ``preserved`` (share of the other
attributes' verdicts on the edited frames that agree with the truth).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from ..errors import InputError
from ..utils import PathLike



@dataclass
class VideoReport:
    """``runs``: ``{"per-frame": {...}, "smoothed": {...}}``, each a dict of the module's measures."""

    clip: str
    frames: int
    smooth: float
    attribute: Optional[str] = None
    strength: Optional[float] = None
    runs: Dict[str, Dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"clip": self.clip, "frames": self.frames, "smooth": self.smooth,
                           "attribute": self.attribute, "strength": self.strength, "runs": self.runs}, indent=2)

    def format(self) -> str:
        keys = [k for k in ("psnr", "lpips", "jitter", "change", "true_change", "w_change", "edit_present",
                            "edit_kept", "edit_switches", "edit_change", "edit_true_change", "edit_jitter", "flicker",
                            "true_flicker", "edit_flicker", "edit_true_flicker", "preserved",
                            "fps")
                if any(k in r for r in self.runs.values())]
        names = list(self.runs)
        lines = [f"{self.clip}: {self.frames} frames; smoothed = Gaussian of sigma {self.smooth:g} frames"
                 + (f"; edit {self.attribute} " + (f"{self.strength:+g}" if self.strength is not None else
                                                         "(calibrated strength)") if self.attribute else ""), "",
                 "| measure | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for k in keys:
            lines.append(f"| {k} | " + " | ".join(_fmt(self.runs[n].get(k)) for n in names) + " |")
        base, smooth = self.runs.get("per-frame", {}), self.runs.get("smoothed", {})
        if base.get("jitter") and "jitter" in smooth:
            lines += ["", f"jitter reduced by {100 * (1 - smooth['jitter'] / base['jitter']):.1f}% at a PSNR change of "
                          f"{smooth['psnr'] - base['psnr']:+.3f} dB"]
        return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return ""
    return f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"


def _as_input(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames ``[T, H, W, 3]`` -> ``[T, 3, H, W]`` in [-1, 1] (the package's one conversion)."""
    from ..data.images import uint8_to_input

    return uint8_to_input(torch.from_numpy(frames).permute(0, 3, 1, 2))


def frame_change(clip: torch.Tensor) -> float:
    """Mean absolute frame-to-frame change of a clip ``[T, 3, H, W]`` in [-1, 1]."""
    return float((clip[1:] - clip[:-1]).abs().mean())


FLICKER_POOL = 4


def frame_flicker(clip: torch.Tensor, pool: int = FLICKER_POOL) -> float:
    """Mean ``|x_t - (x_{t-1} + x_{t+1}) / 2|`` of a clip ``[T, 3, H, W]`` after averaging ``pool`` x ``pool``
    pixel blocks: the change that does not continue the motion (0 for fewer than 3 frames)."""
    if len(clip) < 3:
        return 0.0
    x = clip.double()
    if pool > 1:
        x = torch.nn.functional.avg_pool2d(x, pool, ceil_mode=True)
    return float((x[1:-1] - 0.5 * (x[2:] + x[:-2])).abs().mean())


def temporal_measures(out: torch.Tensor, true: torch.Tensor, pool: int = FLICKER_POOL) -> Dict[str, float]:
    """``jitter``, ``change``, ``true_change``, ``flicker`` and ``true_flicker`` (module docstring) of clips
    ``[T, 3, H, W]`` in [-1, 1]."""
    change, true_change = frame_change(out), frame_change(true)
    return {"jitter": change - true_change, "change": change, "true_change": true_change,
            "flicker": frame_flicker(out, pool), "true_flicker": frame_flicker(true, pool)}


def code_change(ws: np.ndarray) -> float:
    """Mean L2 norm of the frame-to-frame change of W+ codes ``[T, L, w_dim]`` (per row, averaged)."""
    return float(np.linalg.norm(np.diff(np.asarray(ws, np.float64), axis=0), axis=-1).mean())


@torch.no_grad()
def evaluate_video(pipe, clip: PathLike, attributes: Optional[PathLike] = None, smooth: Optional[float] = None,
                   attribute: Optional[str] = None, strength: Optional[float] = None, classifier=None, lpips=None,
                   batch_size: int = 32, progress: bool = False) -> VideoReport:
    """Measures the video pipeline on a rendered clip (module docstring).

    Args:
        pipe: ``InversionPipeline`` (with editing models for an edit).
        clip: a clip written by ``dataset synth-video``.
        attributes: its per-frame attributes (default: ``CLIP.csv`` beside it).
        smooth: the smoothed run's sigma in frames (default: the pipeline's default).
        attribute, strength: also measure this edit (strength: default the calibrated one).
        classifier: image attribute classifier (needed for an edit's measures).
        lpips: perceptual network (default: alex-st).
        batch_size: frames per forward pass.
    """
    from ..data.synthetic import render_faces
    from ..data.video import clip_attributes_path, read_clip_attributes
    from ..video import DEFAULT_SMOOTH, process_video
    from .inversion import psnr_db

    clip = Path(clip)
    smooth = DEFAULT_SMOOTH if smooth is None else smooth
    attrs = read_clip_attributes(attributes or clip_attributes_path(clip))
    if strength is not None and attribute is None:
        raise InputError("--strength needs --attribute")
    if attribute is not None and classifier is None:
        raise InputError("measuring an edit needs the image attribute classifier")
    if attribute is not None and attribute not in classifier.attributes:
        raise InputError(f"the classifier does not judge {attribute!r}; it knows {', '.join(classifier.attributes)}")
    if lpips is None:
        from ..losses import LPIPS

        lpips = LPIPS.load("alex-st")
    runs: Dict[str, Dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="style_transformer_eval_video_") as tmp:
        true = edit_true_change = edit_true_flicker = None
        factors = {k: v for k, v in attrs.items() if k not in ("frame", "time")}  # what the renderer draws
        adding = strength is None or strength > 0
        edited_present: Dict[str, np.ndarray] = {}
        for name, sigma in (("per-frame", 0.0), ("smoothed", smooth)):
            frames: List[np.ndarray] = []
            rec = process_video(pipe, clip, Path(tmp) / f"{name}.mp4", smooth=sigma, batch_size=batch_size,
                                latents=Path(tmp) / f"{name}.npz", progress=progress, on_frame=frames.append)
            out = np.stack(frames)
            if true is None:
                n = len(attrs["frame"])
                if len(out) != n:
                    raise InputError(f"{clip}: {len(out)} frames decode but the attribute table has {n} rows")
                true = _as_input(render_faces(factors, out.shape[1]))
                if attribute is not None:
                    # the truth of the edited clip: the clip rendered with the attribute set (when the
                    # renderer draws it), else the clip itself
                    edited_truth = true
                    if attribute in factors:
                        target = dict(factors, **{attribute: np.full_like(factors[attribute], float(adding))})
                        edited_truth = _as_input(render_faces(target, out.shape[1]))
                    edit_true_change = frame_change(edited_truth)
                    edit_true_flicker = frame_flicker(edited_truth)
            x = _as_input(out)
            mse = ((x - true) ** 2).mean((1, 2, 3))
            m = {"psnr": float(psnr_db(mse).mean()),
                 "lpips": float(torch.cat([lpips(x[i: i + 64], true[i: i + 64]).flatten()
                                           for i in range(0, len(x), 64)]).mean()),
                 **temporal_measures(x, true), "w_change": code_change(np.load(rec.latents)["wplus"]), "fps": rec.fps}
            if attribute is not None:
                frames = []
                process_video(pipe, clip, Path(tmp) / f"{name}_edit.mp4", attribute=attribute, strength=strength,
                              smooth=sigma, batch_size=batch_size, progress=progress, on_frame=frames.append)
                y = _as_input(np.stack(frames))
                probs = classifier.predict(y)
                k = classifier.attributes.index(attribute)
                present = (probs[:, k] > 0.5).numpy() == adding
                edited_present[name] = present
                others = [a for a in classifier.attributes if a != attribute and a in attrs]
                verdicts = (probs[:, [classifier.attributes.index(a) for a in others]] > 0.5).numpy()
                truth = np.stack([attrs[a] > 0.5 for a in others], 1)
                m.update(edit_present=float(present.mean()), edit_switches=float(np.sum(present[1:] != present[:-1])),
                         edit_change=frame_change(y), edit_flicker=frame_flicker(y),
                         edit_true_flicker=edit_true_flicker, preserved=float((verdicts == truth).mean()))
                m["edit_true_change"] = edit_true_change
                m["edit_jitter"] = m["edit_change"] - m["edit_true_change"]
            runs[name] = m
        if attribute is not None:
            ok = edited_present["per-frame"]
            for name in runs:
                runs[name]["edit_kept"] = float(edited_present[name][ok].mean()) if ok.any() else float("nan")
    return VideoReport(clip=str(clip), frames=len(attrs["frame"]), smooth=float(smooth), attribute=attribute,
                       strength=strength, runs=runs)
