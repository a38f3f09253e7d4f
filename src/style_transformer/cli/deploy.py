"""``export``: ONNX graphs of a checkpoint for other runtimes."""

from __future__ import annotations

import argparse


def _parser_export(sub) -> None:
    ex = sub.add_parser("export", help="export a checkpoint's encoder, synthesis and mapping networks as ONNX graphs",
                        epilog="examples:\n  style-transformer export src/style_transformer/weights/"
                               "faces64_style_transformer.safetensors deploy/ --format onnx\n"
                               "  style-transformer export stylegan2-ffhq-config-f.pt g_onnx/ --format onnx\n"
                               "  style-transformer inspect deploy/",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("checkpoint", metavar="CHECKPOINT",
                    help="anything load_model reads: Style Transformer / pSp / e4e (.pt, .safetensors) or a StyleGAN2 "
                         "generator (.safetensors, rosinality .pt, NVIDIA .pkl)")
    ex.add_argument("out", metavar="OUT", help="folder: encoder.onnx, synthesis.onnx, mapping.onnx, manifest.json")
    ex.add_argument("--format", choices=("onnx",), default="onnx", help="graph format (onnx)")
    ex.add_argument("--generator", help="with an inversion CHECKPOINT: render with this generator instead of its own")
    ex.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    ex.add_argument("--int8", action="store_true",
                    help="also write the int8 encoder of each installed runtime, calibrated on --calibration: "
                         "encoder.int8.onnx (ONNX Runtime's quantiser: static, QDQ, per-channel) and "
                         "encoder.int8.xml/.bin (OpenVINO IR by NNCF)")
    ex.add_argument("--calibration", nargs="+", metavar="DIR",
                    help="images of the model's domain (files and/or folders) to calibrate --int8 on")
    ex.add_argument("--calibration-n", type=int, default=300, metavar="N",
                    help="calibration images used (default 300)")


def _cmd_export(args: argparse.Namespace) -> int:
    from ..deploy import export_onnx
    from ..errors import UsageError

    if args.int8 and not args.calibration:
        raise UsageError("--int8 needs --calibration DIR: a few hundred images of the model's domain")
    if args.calibration and not args.int8:
        raise UsageError("--calibration is for --int8")
    if args.calibration_n < 1:
        raise UsageError("--calibration-n must be >= 1")
    manifest = export_onnx(args.checkpoint, args.out, generator=args.generator, opset=args.opset,
                           int8_calibration=args.calibration, calibration_n=args.calibration_n)
    graphs = ", ".join(manifest["graphs"].values())
    print(f"exported {graphs} and manifest.json into {args.out}/")
    return 0


COMMANDS = {"export": (_parser_export, _cmd_export)}
