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


def _cmd_export(args: argparse.Namespace) -> int:
    from ..deploy import export_onnx

    manifest = export_onnx(args.checkpoint, args.out, generator=args.generator, opset=args.opset)
    graphs = ", ".join(manifest["graphs"].values())
    print(f"exported {graphs} and manifest.json into {args.out}/")
    return 0


COMMANDS = {"export": (_parser_export, _cmd_export)}
