"""Video throughput, end to end: decode, invert, edit, smooth, render, encode (H.264), on each runtime.

Renders a held-out clip (``dataset synth-video``: 300 frames, 64 px, pre-aligned: the frame is the
face) and times ``edit_video`` (Smiling, the calibrated strength, default smoothing) with the shipped
models on torch fp32 and the exported graphs (ONNX Runtime and OpenVINO, fp32 and the int8 encoder),
median of ``--reps`` runs after a warm-up, in frames per second; then the rate with per-frame
alignment (dlib on every frame of a 256 px render of the same clip; dlib finds the cartoon faces on
only some frames, which are counted). Quality and jitter: ``style-transformer eval-video``.

    python benchmarks/bench_video.py [--reps 3] [--frames 300] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from style_transformer import load_pipeline
from style_transformer.data.video import write_synth_clip
from style_transformer.pretrained import TEST_SEED
from style_transformer.video import edit_video, invert_video

RUNTIMES = (("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("onnxruntime", "int8"),
            ("openvino", "int8"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--threads", type=int, default=0, help="threads of every runtime (0: PyTorch's default)")
    p.add_argument("--skip-align", action="store_true", help="no per-frame alignment run")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip, _ = write_synth_clip(tmp / "clip.mp4", args.frames, seed=TEST_SEED, subject=1)
        print(f"edit-video Smiling on a {args.frames}-frame 64 px clip, threads {torch.get_num_threads()}")
        print(f"{'runtime':>17} {'frames/s':>9}")
        for runtime, precision in RUNTIMES:
            pipe = load_pipeline(runtime=runtime, precision=precision, device="cpu")

            def run():
                return edit_video(pipe, clip, tmp / "out.mp4", "Smiling").fps

            run()  # warm-up (and the one-time export for the graph runtimes)
            fps = statistics.median(run() for _ in range(args.reps))
            print(f"{runtime + ' ' + precision:>17} {fps:9.1f}")
        if not args.skip_align:
            import importlib.util

            if importlib.util.find_spec("dlib") is None:
                print("per-frame alignment: dlib is not installed")
            else:
                big, _ = write_synth_clip(tmp / "big.mp4", min(args.frames, 90), size=256, seed=TEST_SEED, subject=1)
                pipe = load_pipeline(device="cpu")
                r = invert_video(pipe, big, tmp / "aligned.mp4", align=True)
                print(f"with per-frame alignment (256 px frames, torch): {r.fps:.1f} frames/s "
                      f"({r.faces} of {r.frames} frames with a face found)")


if __name__ == "__main__":
    main()
