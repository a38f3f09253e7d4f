"""Evaluation commands: ``eval-encoder``, ``eval-editing``, ``evaluate``, ``eval-generator``, ``fid``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UsageError
from .common import (_add_device_arg, _add_model_args, _add_runtime_arg, _image_classifier, _make_out_dir, _pipeline,
                     _positive_int, _write_text_atomic)


def _parser_fid(sub) -> None:
    fid = sub.add_parser("fid", help="FID between two image folders (offline InceptionV3)",
                         epilog="example:\n  style-transformer fid samples/ faces/",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    fid.add_argument("dir_a", metavar="DIR_A")
    fid.add_argument("dir_b", metavar="DIR_B")
    fid.add_argument("--batch-size", type=_positive_int, default=32)
    _add_device_arg(fid)
    fid.add_argument("--cache-dir", help="where folder statistics are cached (default ~/.cache/style_transformer/fid)")


def _parser_eval_encoder(sub) -> None:
    ee = sub.add_parser("eval-encoder", help="PSNR, LPIPS and attribute agreement of inversions of labelled images",
                        epilog="example:\n  style-transformer dataset synth --n 500 --seed 4000 --out test/\n"
                               "  style-transformer eval-encoder --data test/",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ee.add_argument("--data", required=True, help="folder of images (attributes.csv for attribute agreement)")
    _add_model_args(ee)
    ee.add_argument("--n", type=_positive_int, help="use the first N images (default: all)")
    ee.add_argument("--classifier", help="image attribute classifier (default: the shipped one)")
    ee.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    ee.add_argument("--batch-size", type=_positive_int, default=32)
    _add_device_arg(ee)
    _add_runtime_arg(ee)
    ee.add_argument("--json", help="also write the report as JSON here")


def _parser_evaluate(sub) -> None:
    ev = sub.add_parser("evaluate", help="the comparison table: every inversion method on one folder of test images",
                        epilog="examples:\n  style-transformer evaluate test/ --out eval/\n"
                               "  style-transformer evaluate test/ --method style_transformer --method psp:runs/psp/best.safetensors"
                               " --method wplus --method pti --out eval/",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("data", metavar="DATA_DIR", help="folder of test images (attributes.csv: attribute agreement)")
    ev.add_argument("--method", action="append", metavar="NAME[:CHECKPOINT]",
                    help="repeatable. NAME:CHECKPOINT: an inversion checkpoint (Style Transformer, pSp, e4e); "
                         "style_transformer: the shipped encoder; w / wplus: optimisation from latent_avg; "
                         "pti: W+ optimisation then PTI (default: style_transformer)")
    ev.add_argument("--out", required=True, help="writes results.md, results.csv, results.json")
    ev.add_argument("--generator", help="generator of the optimisation methods (default: the one the shipped "
                                        "encoder was trained for)")
    ev.add_argument("--n", type=_positive_int, help="first N images (default: all)")
    ev.add_argument("--opt-steps", type=_positive_int, default=100, help="optimisation steps (w, wplus, pti)")
    ev.add_argument("--pti-steps", type=_positive_int, default=50)
    ev.add_argument("--lpips", choices=("alex-st", "alex", "vgg"), default="alex-st")
    ev.add_argument("--lpips-trunk", help="torchvision AlexNet/VGG16 weights (standard LPIPS)")
    ev.add_argument("--lpips-heads", help="LPIPS v0.1 heads file (standard LPIPS)")
    ev.add_argument("--id-weights", help="ArcFace IR-SE50 model_ir_se50.pth: identity similarity (faces)")
    ev.add_argument("--classifier", help="image attribute classifier (default: the shipped one, on labelled folders)")
    ev.add_argument("--no-fid", action="store_true")
    ev.add_argument("--no-timing", action="store_true")
    ev.add_argument("--swd-images", type=_positive_int, default=1024, help="images used for SWD")
    ev.add_argument("--edit-images", type=int, default=200,
                    help="images for the editing scores (0: skip)")
    ev.add_argument("--editing", help="editing folder applied to the codes of every method that renders with "
                                      "--generator's weights and has no editing models of its own (default: the "
                                      "shipped editing folder, with the shipped generator)")
    ev.add_argument("--batch-size", type=_positive_int, default=16)
    _add_device_arg(ev)


def _parser_eval_generator(sub) -> None:
    eg = sub.add_parser("eval-generator", help="FID and attribute frequencies of a generator's samples",
                        epilog="example:\n  style-transformer dataset synth --n 10000 --seed 2000 --out ref/\n"
                               "  style-transformer eval-generator --reference ref/ --n 10000",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    eg.add_argument("--generator", help="generator (.safetensors, .pt or NVIDIA .pkl; default: the shipped generator)")
    eg.add_argument("--reference", required=True, help="folder of real images (with attributes.csv for label rates)")
    eg.add_argument("--n", type=_positive_int, default=10000, help="number of samples (default 10000)")
    eg.add_argument("--classifier", help="image attribute classifier (default: the shipped one)")
    eg.add_argument("--no-fid", action="store_true", help="skip FID (attribute frequencies only)")
    eg.add_argument("--no-attributes", action="store_true", help="skip attribute frequencies")
    eg.add_argument("--seed", type=int, default=0)
    eg.add_argument("--batch-size", type=_positive_int, default=64)
    _add_device_arg(eg)
    eg.add_argument("--paired", type=int, default=1000, metavar="N",
                    help="a generator distilled from the renderer (train-gan --distill-renderer): PSNR against "
                         "the paired renders of N held-out draws (default 1000; 0 skips it)")
    eg.add_argument("--json", help="also write the report as JSON here")


def _cmd_fid(args: argparse.Namespace) -> int:
    from ..inference import resolve_device
    from ..metrics.fid import FIDError, fid_folders

    try:
        value = fid_folders(args.dir_a, args.dir_b, device=resolve_device(args.device), batch_size=args.batch_size,
                            cache_dir=args.cache_dir, progress=True)
    except FIDError as e:
        raise UsageError(str(e)) from None
    print(f"FID {value:.4f}")
    return 0


def _cmd_eval_encoder(args: argparse.Namespace) -> int:
    import json

    from ..checkpoints import load_model
    from ..data.datasets import ImageFolderDataset, LabelError
    from ..metrics.inversion import evaluate_inversion

    pipe = _pipeline(args)
    classifier = None
    if args.classifier is not None:
        classifier = load_model(args.classifier, kind="attribute_classifier")
    else:
        from ..pretrained import load_default

        classifier = load_default("attribute_classifier")
    classifier = classifier.to(pipe.device)
    csv = Path(args.data) / "attributes.csv"
    try:
        data = ImageFolderDataset(args.data, pipe.input_size, labels=csv if csv.is_file() else None)
    except LabelError as e:
        raise UsageError(str(e)) from None
    lpips = None
    if not args.no_lpips:
        from ..losses import LPIPS, LPIPSError

        try:
            lpips = LPIPS.load("alex-st").to(pipe.device)
        except LPIPSError as e:
            raise UsageError(f"{e} (or pass --no-lpips)") from None
    report = evaluate_inversion(pipe, data, classifier=classifier if csv.is_file() else None, lpips=lpips,
                                n=args.n, batch_size=args.batch_size, progress=True)
    print(report.to_markdown())
    if args.json:
        _write_text_atomic(Path(args.json), json.dumps(report.to_dict(), indent=2))
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ..checkpoints import load_model
    from ..data.datasets import ImageFolderDataset, LabelError
    from ..inference import load_pipeline, resolve_device
    from ..losses import IDLoss, IDLossError, LPIPS, LPIPSError
    from ..metrics.evaluate import encoder_method, evaluate, optimization_method, to_markdown, write_results
    from ..pretrained import default_path

    device = resolve_device(args.device)
    try:
        lpips = LPIPS.load(args.lpips, trunk=args.lpips_trunk, heads=args.lpips_heads).to(device)
        id_loss = IDLoss.load(args.id_weights).to(device) if args.id_weights else None
    except (LPIPSError, IDLossError) as e:
        raise UsageError(str(e)) from None
    generator = args.generator or str(default_path("encoder_generator"))
    methods = []
    size = None
    for spec in args.method or ["style_transformer"]:
        name, _, ckpt = spec.partition(":")
        if ckpt:
            pipe = load_pipeline(checkpoint=ckpt, device=device)
            methods.append(encoder_method(name, pipe, f"checkpoint {ckpt}"))
        elif name == "style_transformer":
            pipe = load_pipeline(device=device, editing=args.editing)  # --editing: the same models for all
            methods.append(encoder_method(name, pipe, "the shipped encoder"))
        elif name in ("w", "wplus", "pti"):
            pipe = load_pipeline(generator=generator, device=device)
            space = "w" if name == "w" else "wplus"
            methods.append(optimization_method(name, pipe, space, args.opt_steps,
                                               args.pti_steps if name == "pti" else 0, lpips=lpips))
        else:
            raise UsageError(f"--method {spec!r}: give NAME:CHECKPOINT, or one of style_transformer, w, wplus, pti")
        s = pipe.input_size if pipe.model is not None else pipe.generator.size
        if size is not None and s != size:
            raise UsageError(f"--method {spec!r} works at {s}x{s}, another method at {size}x{size}: compare "
                             "methods of one resolution")
        size = s
    csv_path = Path(args.data) / "attributes.csv"
    try:
        data = ImageFolderDataset(args.data, size, labels=csv_path if csv_path.is_file() else None)
    except LabelError as e:
        raise UsageError(str(e)) from None
    classifier = None
    if csv_path.is_file():
        classifier = _image_classifier(args.classifier, device)
    editing = editing_generator = None
    if classifier is not None and args.edit_images > 0:
        from ..editing import DirectionError
        from ..editing.toolkit import EditingModels
        from ..pretrained import EDITING_DIR, WEIGHTS_DIR

        folder = args.editing
        if folder is None and args.generator is None and (WEIGHTS_DIR / EDITING_DIR / "editing.json").is_file():
            folder = WEIGHTS_DIR / EDITING_DIR
        if folder is not None:
            try:
                editing = EditingModels.load(folder)
            except DirectionError as e:
                raise UsageError(str(e)) from None
            editing_generator = load_model(generator, kind="generator")
    records = evaluate(methods, data, n=args.n, batch_size=args.batch_size, lpips=lpips, classifier=classifier,
                       id_loss=id_loss, fid=not args.no_fid, swd_images=args.swd_images, timing=not args.no_timing,
                       device=device, edit_images=args.edit_images, editing=editing,
                       editing_generator=editing_generator, progress=True)
    paths = write_results(records, _make_out_dir(args.out))
    print(to_markdown(records))
    print(f"wrote {paths['md']}, {paths['csv']}, {paths['json']}")
    return 0


def _cmd_eval_generator(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from ..checkpoints import load_model
    from ..inference import resolve_device
    from ..metrics.fid import FIDError
    from ..metrics.generator import evaluate_generator, is_distilled
    from ..pretrained import default_path

    if args.no_fid and args.no_attributes and args.paired <= 0:
        raise UsageError("nothing to measure: --no-fid and --no-attributes together")
    if not Path(args.reference).is_dir():
        raise UsageError(f"{args.reference}: no such folder")
    gen = load_model(args.generator or default_path("generator"), kind="generator")
    if args.no_fid and args.no_attributes and not is_distilled(gen):
        raise UsageError("nothing to measure: --no-fid and --no-attributes together, and --paired needs a "
                         "generator distilled from the renderer")
    classifier = None if args.no_attributes else load_model(args.classifier or default_path("attribute_classifier"),
                                                             kind="attribute_classifier")
    try:
        report = evaluate_generator(gen, args.reference, n=args.n, classifier=classifier, fid=not args.no_fid,
                                    seed=args.seed, batch_size=args.batch_size, device=resolve_device(args.device),
                                    progress=True, paired_n=args.paired)
    except FIDError as e:
        raise UsageError(str(e)) from None
    print(report.to_markdown())
    if args.json:
        _write_text_atomic(Path(args.json), json.dumps(dataclasses.asdict(report), indent=2))
    return 0


# command -> (parser builder, handler)
COMMANDS = {
    "fid": (_parser_fid, _cmd_fid),
    "eval-encoder": (_parser_eval_encoder, _cmd_eval_encoder),
    "evaluate": (_parser_evaluate, _cmd_evaluate),
    "eval-generator": (_parser_eval_generator, _cmd_eval_generator),
}
