"""Editing commands: ``directions``, ``train-editor``, ``edit``."""

from __future__ import annotations

import argparse
import re
import sys
from typing import Dict, List, Optional

import numpy as np

from ..errors import UsageError
from .common import _add_align_args, _aligner, _editing_pipeline, _image_batches, _image_classifier, _load_latents, _make_out_dir, _positive_int, _write_npz_atomic, _write_outputs


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
    tr.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")


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
    ed.add_argument("--checkpoint", help="Style Transformer checkpoint (default: the shipped encoder)")
    ed.add_argument("--generator", help="generator to render with (with --checkpoint; .safetensors, .pt or NVIDIA .pkl)")
    ed.add_argument("--editing", help="editing folder (default: the shipped one)")
    ed.add_argument("--batch-size", type=_positive_int, default=8)
    ed.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    _add_align_args(ed)


def _latent_label_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--latents", required=required, help="npz of W+ codes keyed by image stem (what invert writes)")
    p.add_argument("--labels", required=required, help="CSV (file,attr1,...) or CelebA list_attr_celeba.txt")


def _latents_and_labels(latents: str, labels: str, columns: Optional[List[str]]):
    """(keys, codes [N, L, d], label names, labels [N, C]) for the images present in both files."""
    import torch

    from ..data.datasets import LabelError, binary_columns, load_labels
    from ..training.editing import label_matrix

    arrays = _load_latents(latents)
    try:
        names, table = load_labels(labels)
        binary = binary_columns(labels)
    except LabelError as e:
        raise UsageError(str(e)) from None
    columns = columns or binary
    bad = [c for c in columns if c not in binary]
    if bad:
        raise UsageError(f"{labels}: {', '.join(bad)} is not a 0/1 column (0/1 columns: {', '.join(binary)})")
    stems = {k.rsplit(".", 1)[0] for k in table} | set(table)
    keys = [k for k in arrays if k in stems]
    if not keys:
        raise UsageError(f"no latent in {latents} has a label row in {labels} (keys are image stems)")
    shapes = {arrays[k].shape for k in keys}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise UsageError(f"{latents}: expected W+ arrays of one (num_ws, w_dim) shape, got {sorted(shapes)[:3]}")
    ws = torch.from_numpy(np.stack([arrays[k] for k in keys]).astype(np.float32))
    if not torch.isfinite(ws).all():
        raise UsageError(f"{latents}: latents contain NaN or Inf")
    return keys, ws, columns, label_matrix(names, table, keys, columns)


def _generator_and_judge(args: argparse.Namespace, judge: bool = True):
    """(generator, image attribute classifier or None without ``judge``) on ``--device``: ``--generator``
    / ``--classifier``, else the generator the shipped encoder was trained for and the shipped classifier
    (``directions fit --samples``, ``train-editor``: they make editing models for the shipped encoder's codes)."""
    from ..checkpoints import load_model
    from ..inference import resolve_device
    from ..pretrained import default_path

    device = resolve_device(args.device)
    generator = load_model(args.generator or default_path("encoder_generator"), kind="generator").to(device).eval()
    return generator, _image_classifier(args.classifier, device) if judge else None


def _labelled_samples(args: argparse.Namespace):
    """(w [N, w_dim], attribute names, 0/1 labels [N, A]) for ``directions fit --samples``."""
    from ..editing import labelled_samples

    generator, clf = _generator_and_judge(args)
    names = list(clf.attributes)
    bad = [a for a in args.attributes or [] if a not in names]
    if bad:
        raise UsageError(f"the image classifier does not judge {', '.join(bad)} (it knows {', '.join(names)})")
    ws, labels = labelled_samples(generator, clf, args.samples, seed=args.seed, progress=True)
    cols = [names.index(a) for a in args.attributes] if args.attributes else list(range(len(names)))
    return ws, [names[j] for j in cols], labels[:, cols]


def _train_editor_models(args: argparse.Namespace, ws):
    """``train-editor``: (generator, image classifier), each None when no option needs it: the generator
    for --label-renders, --mix-codes and --near-metric covariance (its w_dim checked against the
    latents'), the image classifier for the first two."""
    needs_judge = bool(args.label_renders or args.mix_codes)
    if not needs_judge and args.near_metric != "covariance":
        return None, None
    generator, clf = _generator_and_judge(args, needs_judge)
    if ws.shape[-1] != generator.style_dim:
        raise UsageError(f"{args.latents}: latents of width {ws.shape[-1]}, the generator's w_dim is "
                         f"{generator.style_dim}")
    return generator, clf


def _judge_latents(args: argparse.Namespace, generator, clf, ws, columns, labels):
    """``train-editor --label-renders``: the label columns the image classifier judges, replaced by its
    verdicts on the renders of the latents (what each code draws); other columns stay."""
    from ..editing import judge_codes

    judged = [c for c in columns if c in clf.attributes]
    unjudged = [c for c in columns if c not in clf.attributes]
    if args.mix_codes and unjudged:
        raise UsageError(f"--mix-codes: the image classifier does not judge {', '.join(unjudged)}, so mixed codes "
                         f"have no label for it (it judges {', '.join(clf.attributes)})")
    if not judged:
        raise UsageError(f"the image classifier judges none of the label columns ({', '.join(columns)})")
    verdicts = judge_codes(generator, clf, ws, progress=True)
    labels = labels.clone()
    for c in judged:
        j, k = columns.index(c), clf.attributes.index(c)
        agree = float((labels[:, j] == verdicts[:, k]).float().mean())
        print(f"  {c:<22} the renders agree with the labels on {100 * agree:.1f}% of the latents")
        labels[:, j] = verdicts[:, k]
    return labels


def _mixed_training_codes(args: argparse.Namespace, generator, clf, ws, columns, labels):
    """``train-editor --mix-codes K``: the latents and their (render) labels, followed by ``K`` mixed
    codes per latent (``editing.mixed_codes``) labelled by the image classifier's verdicts on their
    renders (every column is one it judges: checked by ``_judge_latents``)."""
    import torch

    from ..editing import judge_codes, mixed_codes

    mixed = mixed_codes(ws, args.mix_codes, seed=args.seed)
    print(f"labelling {len(mixed)} mixed codes by their renders")
    verdicts = judge_codes(generator, clf, mixed, progress=True)
    mixed_labels = verdicts[:, [clf.attributes.index(c) for c in columns]].to(labels.dtype)
    return torch.cat([ws, mixed]), torch.cat([labels, mixed_labels])


def _cmd_train_editor(args: argparse.Namespace) -> int:
    from ..config import LatentClassifierConfig
    from ..editing import Direction, fit_boundary, w_covariance
    from ..editing.toolkit import EditingModels
    from ..training.common import TrainingError
    from ..training.editing import (EditorTrainConfig, covariance_whitening, train_latent_classifier,
                                   train_reference_editor)

    keys, ws, columns, labels = _latents_and_labels(args.latents, args.labels, None)
    wanted = args.attributes or columns
    missing = [a for a in wanted if a not in columns]
    if missing:
        raise UsageError(f"{args.labels}: no 0/1 column {', '.join(missing)}")
    if args.mix_codes < 0:
        raise UsageError(f"--mix-codes must be >= 0, got {args.mix_codes}")
    generator, judge = _train_editor_models(args, ws)
    if judge is not None:
        labels = _judge_latents(args, generator, judge, ws, columns, labels)
    clf_ws, clf_labels = ws, labels
    if args.mix_codes:
        clf_ws, clf_labels = _mixed_training_codes(args, generator, judge, ws, columns, labels)
    whitening = covariance_whitening(w_covariance(generator)) if args.near_metric == "covariance" else None
    out = _make_out_dir(args.out)
    cfg = LatentClassifierConfig(attributes=tuple(columns), num_ws=ws.shape[1], w_dim=ws.shape[2],
                                 hidden=tuple(args.hidden))
    try:
        clf, acc = train_latent_classifier(clf_ws, clf_labels, cfg, epochs=args.epochs, seed=args.seed,
                                           progress=True)
        models = EditingModels(latent_classifier=clf)
        for a in wanted:
            j = columns.index(a)
            normal, _, info = fit_boundary(ws.mean(1), labels[:, j])
            models.directions[a] = Direction(a, normal[None], "interfacegan", info=info)
            models.editors[a], _ = train_reference_editor(ws, labels[:, j], clf, a,
                                                          EditorTrainConfig(steps=args.editor_steps, seed=args.seed),
                                                          progress=True, near_whitening=whitening)
    except TrainingError as e:
        print(f"style-transformer: error: {e}", file=sys.stderr)
        return 1
    models.strengths = {"interfacegan": {a: 3.0 for a in wanted}, "classifier": {a: 3.0 for a in wanted}}
    import torch

    models.save(out, dtype=torch.float16 if args.fp16 else None)
    print(f"{len(keys)} latents; W+ classifier validation accuracy:")
    for a, v in acc.items():
        print(f"  {a:<22} {100 * v:.1f}%  boundary {100 * models.directions[a].info['accuracy']:.1f}%"
              if a in models.directions else f"  {a:<22} {100 * v:.1f}%")
    print(f"wrote {out}/ (default strengths 3.0; `eval-editing --calibrate` sets them from images)")
    return 0


def _parse_layers(text: Optional[str]):
    if text is None:
        return None
    m = re.fullmatch(r"(\d+):(\d+)", text)
    if not m or int(m.group(1)) >= int(m.group(2)):
        raise UsageError(f"--layers must be START:STOP with START < STOP, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _cmd_edit(args: argparse.Namespace) -> int:
    from ..data.images import ImageLoadError, collect_images, load_image
    from ..editing import DirectionError

    from ..data.align import NoFaceError

    if args.strength is None and args.reference is None:
        raise UsageError("one of --strength or --reference is required")
    if args.strength is not None and not np.isfinite(args.strength):
        raise UsageError(f"--strength must be a finite number, got {args.strength}")
    layers = _parse_layers(args.layers)
    files = collect_images(args.inputs)
    pipe = _editing_pipeline(args)
    aligner = _aligner(args, pipe)
    ws_ref = None
    if args.reference is not None:
        try:
            ref = load_image(args.reference)
            ref = aligner.align(ref)[0].image if aligner is not None else ref
            ws_ref = pipe.invert([ref]).ws
        except ImageLoadError as e:
            raise UsageError(str(e)) from None
        except NoFaceError:
            raise UsageError(f"{args.reference}: no face found in the reference (--no-align uses the whole image)") from None
    method = args.method or pipe.editing.default_method(ws_ref is not None)
    if (method == "reference") != (ws_ref is not None):
        raise UsageError("--method reference needs --reference, and --reference needs --method reference")
    try:  # check the attribute and method before any image is written
        pipe.edit_ws(pipe.sample_ws(1), args.attribute, strength=args.strength, ws_ref=ws_ref, method=method,
                     layers=layers)
    except (DirectionError, ValueError) as e:
        raise UsageError(str(e)) from None
    out = _make_out_dir(args.out)
    latents: Dict[str, np.ndarray] = {}
    failed: List[str] = []
    for names, batch, sources in _image_batches(files, args.batch_size, "edit", failed, aligner, args.all_faces):
        res = pipe.invert(batch, batch_size=args.batch_size)
        ws = pipe.edit_ws(res.ws, args.attribute, strength=args.strength, ws_ref=ws_ref, method=method,
                          layers=layers)
        _write_outputs(out, names, pipe.generate(ws, batch_size=args.batch_size), sources, args.paste_back)
        for stem, w in zip(names, ws):
            latents[stem] = w.numpy().astype(np.float32)
    if latents:
        _write_npz_atomic(out / "latents.npz", latents)
    how = ", ".join(([f"strength {args.strength:+g}"] if args.strength is not None else [])
                    + ([f"reference {args.reference}"] if args.reference is not None else []))
    print(f"edited {args.attribute} ({method}, {how}) in {len(latents)} of {len(files)} images into {out}/"
          + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


# command -> (parser builder, handler)
COMMANDS = {
    "train-editor": (_parser_train_editor, _cmd_train_editor),
    "edit": (_parser_edit, _cmd_edit),
}
