"""Data commands: ``dataset synth``, ``dataset synth-video``."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from .common import _make_out_dir, _positive_int


def _parser_dataset(sub) -> None:
    ds = sub.add_parser("dataset", help="dataset tools")
    ds_sub = ds.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    synth = ds_sub.add_parser("synth", help="render procedural faces with attributes.csv",
                              epilog="example:\n  style-transformer dataset synth --n 1000 --out faces/",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    synth.add_argument("--n", type=_positive_int, required=True, help="number of faces")
    synth.add_argument("--out", required=True, help="output folder: NNNNNN.png and attributes.csv")
    synth.add_argument("--size", type=_positive_int, default=64, help="image side in pixels (default 64)")
    synth.add_argument("--seed", type=int, default=0, help="dataset seed: face i depends only on (seed, i)")
    clip = ds_sub.add_parser("synth-video", help="render a clip of a procedural face (head turn, moving light, a "
                                                 "smile appearing) as .mp4, with every frame's attributes in .csv",
                             epilog="example:\n  style-transformer dataset synth-video --out clip.mp4 --frames 90 "
                                    "--seed 7000",
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    clip.add_argument("--out", required=True, help="output .mp4 (H.264); the attributes go to the same name with .csv")
    clip.add_argument("--frames", type=_positive_int, default=90, help="number of frames (default 90)")
    clip.add_argument("--fps", type=_positive_int, default=30, help="frame rate (default 30)")
    clip.add_argument("--size", type=_positive_int, default=64, help="frame side in pixels (default 64)")
    clip.add_argument("--seed", type=int, default=0, help="dataset seed the face is drawn from")
    clip.add_argument("--subject", type=int, default=0, help="which face of the seed (default 0)")
    clip.add_argument("--crf", type=int, default=18, help="H.264 quality, 0 (lossless) to 51 (default 18)")


def _cmd_dataset(args: argparse.Namespace) -> int:
    from ..data.synthetic import write_dataset

    if args.size < 8:
        raise UsageError(f"--size must be at least 8, got {args.size}")
    if args.dataset_command == "synth-video":
        return _synth_video(args)
    out = _make_out_dir(args.out)
    csv = write_dataset(out, args.n, size=args.size, seed=args.seed, progress=True)
    print(f"wrote {args.n} faces ({args.size}x{args.size}, seed {args.seed}) and {csv}")
    return 0


def _synth_video(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data.video import require_av, write_synth_clip

    if args.frames < 2:
        raise UsageError(f"--frames must be at least 2, got {args.frames}")
    if args.subject < 0:
        raise UsageError(f"--subject must be >= 0, got {args.subject}")
    if not 0 <= args.crf <= 51:
        raise UsageError(f"--crf must be within 0..51, got {args.crf}")
    require_av()
    out = Path(args.out)
    if out.suffix.lower() != ".mp4":
        raise UsageError(f"{out}: write the clip as .mp4")
    if not out.parent.is_dir():
        out.parent.mkdir(parents=True, exist_ok=True)
    video, csv = write_synth_clip(out, args.frames, fps=args.fps, size=args.size, seed=args.seed,
                                  subject=args.subject, crf=args.crf)
    print(f"wrote {video} ({args.frames} frames, {args.size}x{args.size}, {args.fps} fps) and {csv}")
    return 0


# command -> (parser builder, handler)
COMMANDS = {
    "dataset": (_parser_dataset, _cmd_dataset),
}
