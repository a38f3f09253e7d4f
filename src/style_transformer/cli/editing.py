"""Editing commands: ``directions``, ``train-editor``, ``edit``."""

from __future__ import annotations

import argparse
import re
from typing import Optional

from ..errors import UsageError
from .common import (_add_align_args, _add_device_arg, _add_model_args, _add_runtime_arg, _check_align_args,
                     _editing_pipeline, _image_classifier, _make_out_dir, _positive_int)


def _parser_train_editor(sub) -> None:
    tr = sub.add_parser("train-editor", help="train the W+ attribute classifier, the reference editors and the "
                                             "InterFaceGAN directions on encoder latents of labelled images",
                        epilog="example:\n  style-transformer invert faces/ --out inv/\n"
                               "  style-transformer train-editor --latents inv/latents.npz "
                               "--labels faces/attributes.csv --out editing/",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    _latent_label_args(tr)
    tr.add_argument("--out", required=True, help="editing folder (directions/, latent_classifier, editors/)")
    tr.add_argument("--attributes", nargs="+", help="attributes to build editors for (default: every 0/1 column)")
    tr.add_argument("--epochs", type=_positive_int, default=30, help="W+ classifier epochs")
    tr.add_argument("--editor-steps", type=_positive_int, default=2000, help="steps per reference editor")
    tr.add_argument("--hidden", type=_positive_int, nargs="+", default=[1024, 256],
                    help="W+ classifier MLP widths (official: 2048 512)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--fp16", action="store_true", help="store the models as float16 (shipped weights)")
    tr.add_argument("--label-renders", action="store_true",
                    help="train on what each latent draws: replace the label columns that the image classifier "
                         "judges by its verdicts on the latents' renders (an encoder drops some attributes, so "
                         "the input's labels can be wrong for its code)")
    tr.add_argument("--mix-codes", type=int, default=0, metavar="K",
                    help="also train the W+ classifier on K codes per latent made by style mixing and "
                         "interpolating latents, labelled by the image classifier's verdicts on their renders "
                         "(implies --label-renders; default 0: the latents only)")
    tr.add_argument("--near-metric", choices=("covariance", "euclidean"), default="covariance",
                    help="how the editors' loss |w_e - w_t|^2 measures a move: covariance (default; in the metric "
                         "of the generator's mapped codes, so moves where codes never vary, which change the W+ "
                         "classifier but not the image, cost more) or euclidean (the plain distance)")
    tr.add_argument("--generator", help="with --label-renders or --near-metric covariance: the generator "
                                        "(default: the one the shipped encoder was trained for)")
    tr.add_argument("--classifier", help="with --label-renders or --mix-codes: the image attribute classifier "
                                         "(default: the shipped one)")
    _add_device_arg(tr)
    tr.add_argument("--resume", action="store_true",
                    help="continue a build that was stopped: the W+ classifier and the editors it finished "
                         "(kept in OUT/.build/) are reused, the rest is trained (same models as one run)")


def _parser_edit(sub) -> None:
    ed = sub.add_parser("edit", help="invert images and edit an attribute (by strength or reference image)",
                        epilog="examples:\n  style-transformer edit faces/ --attribute Smiling --strength 3 --out e/\n"
                               "  style-transformer edit a.png --attribute Bangs --reference b.png --out e/\n"
                               "  style-transformer edit a.png --attribute 2 --method sefa --strength 5 --out e/",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ed.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    ed.add_argument("--attribute", required=True, help="attribute name (ganspace/sefa: component index 0..9)")
    ed.add_argument("--strength", type=float, help="signed strength (> 0 adds, < 0 removes); with --reference, "
                                                   "a scale > 0 of the editor's move (default: the calibrated one)")
    ed.add_argument("--reference", help="reference image whose attribute is transferred")
    ed.add_argument("--method", choices=("interfacegan", "classifier", "reference", "ganspace", "sefa"),
                    help="default: interfacegan with --strength, reference with --reference")
    ed.add_argument("--layers", help="W+ rows to edit, START:STOP (default: the direction's own or all)")
    ed.add_argument("--out", required=True, help="output folder: <stem>.png (edited) and latents.npz")
    _add_model_args(ed)
    ed.add_argument("--editing", help="editing folder (default: the shipped one)")
    ed.add_argument("--batch-size", type=_positive_int, default=8)
    _add_device_arg(ed)
    _add_runtime_arg(ed)
    _add_align_args(ed)


def _latent_label_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--latents", required=required, help="npz of W+ codes keyed by image stem (what invert writes)")
    p.add_argument("--labels", required=required, help="CSV (file,attr1,...) or CelebA list_attr_celeba.txt")


def _generator_and_classifier(args: argparse.Namespace, classifier: bool = True):
    """(generator, image attribute classifier or None without ``classifier``) on ``--device``: ``--generator``
    / ``--classifier``, else the generator the shipped encoder was trained for and the shipped classifier
    (``directions fit --samples``, ``train-editor``: they make editing models for the shipped encoder's codes)."""
    from ..checkpoints import load_model
    from ..inference import resolve_device
    from ..pretrained import default_path

    device = resolve_device(args.device)
    generator = load_model(args.generator or default_path("encoder_generator"), kind="generator").to(device).eval()
    return generator, _image_classifier(args.classifier, device) if classifier else None


def _labelled_samples(args: argparse.Namespace):
    """(w [N, w_dim], attribute names, 0/1 labels [N, A]) for ``directions fit --samples``."""
    from ..editing import labelled_samples

    generator, clf = _generator_and_classifier(args)
    names = list(clf.attributes)
    bad = [a for a in args.attributes or [] if a not in names]
    if bad:
        raise UsageError(f"the image classifier does not judge {', '.join(bad)} (it knows {', '.join(names)})")
    ws, labels = labelled_samples(generator, clf, args.samples, seed=args.seed, progress=True)
    cols = [names.index(a) for a in args.attributes] if args.attributes else list(range(len(names)))
    return ws, [names[j] for j in cols], labels[:, cols]


def _cmd_train_editor(args: argparse.Namespace) -> int:
    import torch

    from ..editing.build import UNCALIBRATED_STRENGTH, EditingBuildConfig, build_editing_models, latents_and_labels

    keys, ws, columns, labels = latents_and_labels(args.latents, args.labels, None)
    if args.mix_codes < 0:
        raise UsageError(f"--mix-codes must be >= 0, got {args.mix_codes}")
    missing = [a for a in args.attributes or [] if a not in columns]
    if missing:
        raise UsageError(f"{args.labels}: no 0/1 column {', '.join(missing)}")
    cfg = EditingBuildConfig(attributes=args.attributes, epochs=args.epochs, editor_steps=args.editor_steps,
                             hidden=tuple(args.hidden), seed=args.seed, label_renders=args.label_renders,
                             mix_codes=args.mix_codes, near_metric=args.near_metric)
    generator, clf = (_generator_and_classifier(args, cfg.needs_image_classifier) if cfg.needs_generator
                      else (None, None))
    if generator is not None and ws.shape[-1] != generator.style_dim:
        raise UsageError(f"{args.latents}: latents of width {ws.shape[-1]}, the generator's w_dim is "
                         f"{generator.style_dim}")
    import shutil
    from pathlib import Path

    state = Path(args.out) / ".build"  # finished stages, so that a stopped build can --resume
    if state.exists() and not args.resume:
        shutil.rmtree(state)
    models, report = build_editing_models(ws, labels, columns, cfg, generator=generator, classifier=clf, progress=True,
                                          state_dir=state)
    out = _make_out_dir(args.out)
    models.save(out, dtype=torch.float16 if args.fp16 else None)
    shutil.rmtree(state, ignore_errors=True)
    for c, v in report.label_agreement.items():
        print(f"  {c:<22} the renders agree with the labels on {100 * v:.1f}% of the latents")
    print(f"{len(keys)} latents; W+ classifier validation accuracy:")
    for a, v in report.classifier_accuracy.items():
        print(f"  {a:<22} {100 * v:.1f}%  boundary {100 * report.boundary_accuracy[a]:.1f}%"
              if a in report.boundary_accuracy else f"  {a:<22} {100 * v:.1f}%")
    print(f"wrote {out}/ (default strengths {UNCALIBRATED_STRENGTH:g}; `calibrate` sets them from images)")
    return 0


def _parse_layers(text: Optional[str]):
    if text is None:
        return None
    m = re.fullmatch(r"(\d+):(\d+)", text)
    if not m or int(m.group(1)) >= int(m.group(2)):
        raise UsageError(f"--layers must be START:STOP with START < STOP, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _cmd_edit(args: argparse.Namespace) -> int:
    from ..workflow import check_edit_args, edit_files

    check_edit_args(args.strength, args.reference, args.method)  # before any model loads
    layers = _parse_layers(args.layers)
    _check_align_args(args)
    pipe = _editing_pipeline(args)
    run = edit_files(pipe, args.inputs, args.out, args.attribute, strength=args.strength, reference=args.reference,
                     method=args.method, layers=layers, batch_size=args.batch_size, align=args.align,
                     all_faces=args.all_faces, paste_back=args.paste_back)
    method = args.method or pipe.editing.default_method(args.reference is not None)
    how = ", ".join(([f"strength {args.strength:+g}"] if args.strength is not None else [])
                    + ([f"reference {args.reference}"] if args.reference is not None else []))
    print(f"edited {args.attribute} ({method}, {how}) in {len(run.written)} of {run.total} images into {run.out}/"
          + (f"; {len(run.failed)} failed" if run.failed else ""))
    return 1 if run.failed else 0


# command -> (parser builder, handler)
COMMANDS = {
    "train-editor": (_parser_train_editor, _cmd_train_editor),
    "edit": (_parser_edit, _cmd_edit),
}
