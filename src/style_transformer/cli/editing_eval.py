"""``eval-editing`` (read-only: editing quality judged on images) and ``calibrate`` (chooses the editing
folder's default settings on images and writes them into it)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import UsageError
from .common import (_add_device_arg, _add_model_args, _editing_pipeline, _image_classifier, _non_negative_float,
                     _positive_float, _positive_int, _write_text_atomic)

_METHOD_CHOICES = ("interfacegan", "classifier", "reference", "ganspace", "sefa")


def _common_args(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--data", required=True, help=f"folder of {what} images")
    p.add_argument("--n", type=_positive_int, default=500)
    p.add_argument("--attributes", nargs="+", help="default: every attribute with a direction or editor")
    p.add_argument("--methods", nargs="+", default=["interfacegan", "classifier", "reference"], choices=_METHOD_CHOICES)
    _add_model_args(p)


def _calibration_args(p: argparse.ArgumentParser, prefix: str = "") -> None:
    from ..editing.calibrate import REFERENCE_SCALES

    p.add_argument("--reference-strengths", type=_positive_float, nargs="+", metavar="S",
                   default=list(REFERENCE_SCALES),
                   help=f"{prefix}the scales of the reference editors' move to try "
                        f"(default: {' '.join(f'{s:g}' for s in REFERENCE_SCALES)}; 1 is the editor's own output)")
    p.add_argument("--no-layer-search", action="store_true",
                   help=f"{prefix}choose strengths only, keeping the stored row ranges")
    p.add_argument("--classifier-keeps", type=_non_negative_float, nargs="+", metavar="K",
                   help=f"{prefix}also choose, per attribute, the weight of holding the other attributes' "
                        "embeddings in classifier edits among these (the paper's is 1; default: the folder's, "
                        "not searched)")
    p.add_argument("--pick-directions", nargs="+", metavar="DIR",
                   help="per attribute, keep --editing's InterFaceGAN direction or take one of these (calibrated) "
                        "editing folders' (with its strength and rows), whichever edits the --data images best "
                        "(success among those keeping >= 90%% of the other attributes); writes into --editing")
    p.add_argument("--pick-editors", nargs="+", metavar="DIR",
                   help="per attribute, keep --editing's reference editor or take one of these editing folders', "
                        "whichever matches the references best on the --data images; writes into --editing")


def _parser_calibrate(sub) -> None:
    p = sub.add_parser("calibrate", help="choose an editing folder's default strengths and W+ rows on images "
                                         "and write them into its editing.json",
                       epilog="examples:\n  style-transformer calibrate --data train/ --n 300 --editing editing/\n"
                              "  style-transformer calibrate --data train/ --editing editing/ "
                              "--pick-directions other_editing/",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    _common_args(p, "training")
    p.add_argument("--editing", required=True, help="the editing folder to calibrate (written in place)")
    p.add_argument("--classifier", help="image attribute classifier (default: the shipped one)")
    _calibration_args(p)
    p.add_argument("--batch-size", type=_positive_int, default=64)
    _add_device_arg(p)


def _parser_eval_editing(sub) -> None:
    ee2 = sub.add_parser("eval-editing", help="success, preservation and drift of edits, judged on images "
                                              "(reads only; `calibrate` writes settings)",
                         epilog="example:\n  style-transformer eval-editing --data test/ --n 500",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    _common_args(ee2, "held-out")
    ee2.add_argument("--editing", help="editing folder (default: the shipped one)")
    ee2.add_argument("--classifier", help="image attribute classifier (default: the shipped one)")
    ee2.add_argument("--calibrate", action="store_true",
                     help="old spelling of the `calibrate` command: runs it (writes into --editing) instead of "
                          "evaluating")
    _calibration_args(ee2, "with --calibrate: ")
    ee2.add_argument("--batch-size", type=_positive_int, default=64)
    _add_device_arg(ee2)
    ee2.add_argument("--json", help="also write the report as JSON here")


def _images_and_classifier(args: argparse.Namespace):
    """(pipeline, image classifier, attributes, images ``[n, 3, S, S]``) of the editing commands."""
    import torch

    from ..data.datasets import ImageFolderDataset

    pipe = _editing_pipeline(args)
    clf = _image_classifier(args.classifier, pipe.device)
    known = set(pipe.editing.directions) | set(pipe.editing.editors)
    attrs = args.attributes or [a for a in clf.attributes if a in known]
    bad = [a for a in attrs if a not in clf.attributes]
    if bad:
        raise UsageError(f"the image classifier does not judge {', '.join(bad)} (it knows {', '.join(clf.attributes)})")
    data = ImageFolderDataset(args.data, pipe.input_size)
    n = min(args.n, len(data))
    return pipe, clf, attrs, torch.stack([data[i] for i in range(n)])


def _cmd_eval_editing(args: argparse.Namespace) -> int:
    from ..metrics.editing import evaluate_editing

    if args.calibrate or args.pick_directions or args.pick_editors:
        print("style-transformer: note: eval-editing --calibrate / --pick-* is the `calibrate` command; "
              "running it", file=sys.stderr)
        if args.editing is None:
            flag = "--calibrate" if args.calibrate else "--pick-directions/--pick-editors"
            raise UsageError(f"{flag} writes into the editing folder: pass --editing")
        return _cmd_calibrate(args)
    pipe, clf, attrs, images = _images_and_classifier(args)
    report = evaluate_editing(pipe, images, clf, attrs, methods=args.methods, batch_size=args.batch_size,
                              progress=True)
    print(f"{len(images)} images of {args.data}, judged by the image attribute classifier:")
    print(report.to_markdown())
    if args.json:
        _write_text_atomic(Path(args.json), json.dumps(report.to_dict(), indent=2))
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from ..editing.calibrate import calibrate_editing

    if args.pick_directions and args.pick_editors:
        raise UsageError("--pick-directions and --pick-editors: one at a time")
    pipe, clf, attrs, images = _images_and_classifier(args)
    if args.pick_directions or args.pick_editors:
        return _pick(args, pipe, images, clf, attrs, "directions" if args.pick_directions else "editors")
    cal = calibrate_editing(pipe, images, clf, attrs, methods=args.methods, layer_search=not args.no_layer_search,
                            keeps=args.classifier_keeps, reference_grid=args.reference_strengths,
                            batch_size=args.batch_size, progress=True)
    pipe.editing.save_settings(args.editing)
    print(f"calibrated default strengths on {len(images)} images of {args.data}: {json.dumps(cal.strengths)}")
    if cal.rows:
        print(f"and W+ row ranges [start, stop): {json.dumps(cal.rows)}")
    if cal.keeps:
        print(f"and hold weights of classifier edits: {json.dumps(cal.keeps)}")
    if cal.removes:
        print(f"and scales of reference edits that remove the attribute: {json.dumps(cal.removes)}")
    return 0


def _pick(args: argparse.Namespace, pipe, images, clf, attrs, kind: str) -> int:
    """``calibrate --pick-directions DIR...`` / ``--pick-editors DIR...`` (``editing.calibrate.pick_per_attribute``),
    written into the editing folder."""
    from ..editing import DirectionError
    from ..editing.calibrate import pick_per_attribute, write_pick
    from ..editing.toolkit import EditingModels

    folders = args.pick_directions if kind == "directions" else args.pick_editors
    try:
        candidates = [EditingModels.load(d) for d in folders]
    except DirectionError as e:
        raise UsageError(str(e)) from None
    names = [str(args.editing)] + list(folders)
    pick = pick_per_attribute(pipe, images, clf, attrs, candidates, kind, batch_size=args.batch_size, progress=True)
    print("| attribute | " + " | ".join(names) + " | chosen |")
    print("|---|" + "---:|" * len(names) + "---|")
    for a in attrs:
        if a not in pick.chosen:
            continue
        cells = []
        for rep in pick.reports:
            sc = next((x for x in rep.scores if x.attribute == a and x.n), None)
            cells.append(f"{100 * sc.success:.1f}% / {100 * sc.preservation:.1f}%" if sc else "-")
        print(f"| {a} | " + " | ".join(cells) + f" | {names[pick.chosen[a]]} |")
    write_pick(args.editing, pipe.editing, pick, folders)
    print(f"(success or match / others preserved on {len(images)} images of {args.data}); wrote the chosen "
          f"{kind} into {args.editing}/")
    return 0


# command -> (parser builder, handler)
COMMANDS = {
    "eval-editing": (_parser_eval_editing, _cmd_eval_editing),
    "calibrate": (_parser_calibrate, _cmd_calibrate),
}
