"""Commands that invert and render: ``invert``, ``generate``, ``demo``, ``convert``, ``inspect``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List

from ..errors import RunError, UsageError
from .common import (_add_align_args, _add_device_arg, _add_model_args, _add_runtime_arg, _check_align_args,
                     _label_values, _pipeline, _positive_int, _runtime, _truncation)


def _parser_invert(sub) -> None:
    inv = sub.add_parser("invert", help="invert images into W+ and reconstruct them",
                         epilog="example:\n  style-transformer invert photos/ --checkpoint model.pt --out out/",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    inv.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders (searched recursively)")
    inv.add_argument("--checkpoint", help="Style Transformer checkpoint (.pt or .safetensors; default: the shipped "
                                          "64x64 face encoder and generator)")
    inv.add_argument("--generator", help="render with this generator (StyleGAN2/3: .safetensors, rosinality .pt, NVIDIA .pkl) "
                                               "instead of the checkpoint's")
    inv.add_argument("--out", required=True, help="output folder: <stem>.png and latents.npz")
    inv.add_argument("--batch-size", type=_positive_int, default=8)
    _add_device_arg(inv)
    _add_runtime_arg(inv)
    inv.add_argument("--noise", choices=("fixed", "random"), default="fixed",
                     help="fixed: the generator's stored noise buffers (reproducible)")
    inv.add_argument("--skip-existing", action="store_true",
                     help="leave the inputs whose <stem>.png and code are already in --out (continues an "
                          "interrupted run; their codes stay in latents.npz)")
    _add_align_args(inv)
    inv.add_argument("--refine-steps", type=int, default=0,
                     help="then refine each batch by N steps of W+ optimisation (MSE + LPIPS, noise regularised)")
    inv.add_argument("--pti-steps", type=int, default=0,
                     help="after refining, tune the generator around the codes (PTI) for N steps")


def _parser_generate(sub) -> None:
    gen = sub.add_parser("generate", help="render latents or random samples",
                         epilog="examples:\n  style-transformer generate --n 16 --out samples/\n"
                                "  style-transformer generate --generator G.pt --n 4 --seed 0 --out s/\n"
                                "  style-transformer generate --generator G.pt --latents latents.npz --out r/",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    gen.add_argument("--generator", help="generator (StyleGAN2/3: .safetensors, rosinality .pt, NVIDIA .pkl) or encoder "
                                         "checkpoint (default: the shipped "
                                         "64x64 face generator)")
    src = gen.add_mutually_exclusive_group(required=True)
    src.add_argument("--latents", help="npz of (num_ws, w_dim) or (w_dim,) arrays; writes <key>.png")
    src.add_argument("--n", type=_positive_int, help="number of random samples")
    gen.add_argument("--seed", type=int, default=0, help="seed of the random samples")
    gen.add_argument("--truncation", type=_truncation, default=1.0, help="psi in [0, 1] (1 = none)")
    gen.add_argument("--out", required=True)
    gen.add_argument("--batch-size", type=_positive_int, default=8)
    _add_device_arg(gen)
    _add_runtime_arg(gen)
    gen.add_argument("--noise", choices=("fixed", "random"), default="fixed")
    cond = gen.add_mutually_exclusive_group()
    cond.add_argument("--labels", type=_label_values, metavar="NAME=V,...",
                      help="conditional generator: fix these labels (e.g. Smiling=1,Eyeglasses=0); the others "
                           "are drawn from the training data's joint distribution given them (default: all drawn)")
    cond.add_argument("--class", dest="class_index", type=int, metavar="K",
                      help="class-conditional generator (one-hot labels): sample class K")


def _parser_demo(sub) -> None:
    dm = sub.add_parser("demo", help="invert a few faces with the shipped models: grid, HTML page, latents",
                        epilog="examples:\n  style-transformer demo\n  style-transformer demo photos/ --out my_demo/",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    dm.add_argument("inputs", nargs="*", metavar="INPUT",
                    help="images and/or folders (default: held-out rendered faces)")
    dm.add_argument("--out", default="demo_out", help="output folder (default demo_out/)")
    dm.add_argument("--n", type=_positive_int, default=6, help="rendered faces when no INPUT is given")
    dm.add_argument("--video", action="store_true",
                    help="also invert and edit a held-out rendered clip: video/ and a side-by-side MP4 in the page "
                         "(needs PyAV)")
    _add_model_args(dm)
    _add_device_arg(dm)
    _add_runtime_arg(dm)


def _parser_inspect(sub) -> None:
    ins = sub.add_parser("inspect", help="what a checkpoint file is: kind, source format, architecture, sizes",
                         epilog="examples:\n  style-transformer inspect network-snapshot-000400.pkl\n"
                                "  style-transformer inspect --json model.safetensors stylegan2-ffhq.pt",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    ins.add_argument("files", nargs="+", metavar="FILE",
                     help="checkpoint files (.safetensors, .pt, .pkl) or exported folders (style-transformer export)")
    ins.add_argument("--json", action="store_true", help="one JSON list of objects, for machines")


def _parser_convert(sub) -> None:
    conv = sub.add_parser("convert", help="convert an official .pt checkpoint or an NVIDIA snapshot .pkl to native "
                                          "safetensors")
    conv.add_argument("input", help="official Style Transformer / pSp / e4e or rosinality StyleGAN2 .pt, or an "
                                    "NVIDIA StyleGAN2-ADA / StyleGAN3-repo network-snapshot .pkl (its G_ema)")
    conv.add_argument("output", help="output .safetensors file")
    conv.add_argument("--fp16", action="store_true", help="store floating tensors as float16")


def _interrupted(e, command: str) -> RunError:
    """An interrupted batch as one line that says how to continue."""
    err = RunError(f"{e}; to continue: style-transformer {command} ... --skip-existing")
    err.exit_code = 130
    return err


def _cmd_invert(args: argparse.Namespace) -> int:
    from ..workflow import BatchInterrupted, check_refine_args, invert_files

    check_refine_args(args.refine_steps, args.pti_steps)  # before any model loads
    _check_align_args(args)
    pipe = _pipeline(args)
    try:
        run = invert_files(pipe, args.inputs, args.out, batch_size=args.batch_size, align=args.align,
                           all_faces=args.all_faces, paste_back=args.paste_back, refine_steps=args.refine_steps,
                           pti_steps=args.pti_steps, randomize_noise=args.noise == "random",
                           skip_existing=args.skip_existing)
    except BatchInterrupted as e:
        raise _interrupted(e, "invert") from None
    print(f"inverted {len(run.written)} of {run.total} images into {run.out}/ (latents.npz)"
          + (f"; {len(run.skipped)} already there" if run.skipped else "")
          + (f"; {len(run.failed)} failed" if run.failed else ""))
    return 1 if run.failed else 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from ..inference import load_pipeline
    from ..workflow import generate_files, latents_file_codes

    from ..pretrained import resolve_models

    if args.precision != "fp32":
        raise UsageError("--precision int8 quantises the encoder; generate runs no encoder")
    generator = resolve_models(generator=args.generator, encoder=False).generator
    pipe = load_pipeline(generator=generator, device=args.device, runtime=_runtime(args), cuda_graphs=args.cuda_graphs)
    if (args.labels or args.class_index is not None) and args.latents is not None:
        raise UsageError("--labels and --class choose random samples' labels: use them with --n, not --latents")
    labels = None
    try:
        if args.class_index is not None:
            labels = pipe.generator.class_labels(args.n, args.class_index)
        elif args.labels:
            pipe.generator.sample_labels(1, given=args.labels)  # checks the names and values first
    except ValueError as e:
        raise UsageError(f"{generator}: {e}") from None
    if args.latents is not None:
        keys, all_ws = latents_file_codes(pipe, args.latents)
    else:
        all_ws = pipe.sample_ws(args.n, seed=args.seed, truncation=args.truncation, labels=labels, given=args.labels)
        keys = [f"sample_{i:04d}" for i in range(args.n)]
    out = generate_files(pipe, args.out, all_ws, keys, batch_size=args.batch_size,
                         randomize_noise=args.noise == "random", save_latents=args.latents is None)
    if args.latents is not None:
        print(f"rendered {len(keys)} latents into {out}/")
    else:
        print(f"wrote {args.n} samples (seed {args.seed}, truncation {args.truncation}) into {out}/ "
              "(latents.npz)")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoints import load_model, save_model

    model = load_model(args.input)
    dst = Path(args.output)
    if dst.suffix != ".safetensors":
        raise UsageError(f"{dst}: the output must end in .safetensors")
    save_model(model, dst, dtype=torch.float16 if args.fp16 else None)
    print(f"wrote {dst} ({type(model).__name__})")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    import json

    from ..checkpoints import CheckpointError
    from ..checkpoints.inspect import format_inspection, inspect_checkpoint

    from ..deploy.onnx import describe_export, format_export
    from ..errors import InputError

    infos, failed = [], False
    for f in args.files:
        try:
            if Path(f).is_dir():  # an exported folder (style-transformer export)
                infos.append(describe_export(f))
                if not args.json:
                    print(format_export(infos[-1]))
                continue
            infos.append(inspect_checkpoint(f))
        except (CheckpointError, InputError) as e:
            print(f"style-transformer: error: {e}", file=sys.stderr)
            failed = True
            continue
        if not args.json:
            print(format_inspection(infos[-1]))
    if args.json:
        print(json.dumps(infos, indent=2))
    return 2 if failed else 0


def _cmd_demo(args: argparse.Namespace) -> int:
    import time

    from ..data.images import collect_images
    from ..demo import run_demo
    from ..workflow import image_batches

    t0 = time.perf_counter()
    pipe = _pipeline(args)
    images = names = None
    failed: List[str] = []
    if args.inputs:
        names, images = [], []
        for batch in image_batches(collect_images(args.inputs), 64, failed, desc="read"):
            names += batch.names
            images += batch.images
        if not images:
            raise UsageError("none of the inputs is a readable image")
    classifier = None
    if args.checkpoint is None:
        from ..pretrained import load_default

        classifier = load_default("attribute_classifier")
    if args.video:
        from ..data.video import require_av

        require_av()
    res = run_demo(args.out, images=images, names=names, n=args.n, pipe=pipe, classifier=classifier, video=args.video)
    print(f"inverted {len(res.names)} {'images' if args.inputs else 'held-out rendered faces'} "
          f"(mean PSNR {sum(res.psnr) / len(res.psnr):.2f} dB) in {time.perf_counter() - t0:.1f} s")
    print(f"  grid:    {res.grid}\n  page:    {res.html}\n  latents: {res.latents}"
          + (f"\n  video:   {res.video}" if res.video else "")
          + (f"\n{len(failed)} unreadable inputs skipped" if failed else ""))
    return 1 if failed else 0


# command -> (parser builder, handler)
COMMANDS = {
    "invert": (_parser_invert, _cmd_invert),
    "generate": (_parser_generate, _cmd_generate),
    "demo": (_parser_demo, _cmd_demo),
    "inspect": (_parser_inspect, _cmd_inspect),
    "convert": (_parser_convert, _cmd_convert),
}
