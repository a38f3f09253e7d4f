"""``eval-editing``: editing quality judged on images, and the calibration of the editing folder's defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UsageError
from .common import (_editing_pipeline, _image_classifier, _non_negative_float, _positive_float, _positive_int,
                     _write_text_atomic)


def _parser_eval_editing(sub) -> None:
    ee2 = sub.add_parser("eval-editing", help="success, preservation and drift of edits, judged on images",
                         epilog="example:\n  style-transformer eval-editing --data test/ --n 500",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    ee2.add_argument("--data", required=True, help="folder of held-out images")
    ee2.add_argument("--n", type=_positive_int, default=500)
    ee2.add_argument("--attributes", nargs="+", help="default: every attribute with a direction or editor")
    ee2.add_argument("--methods", nargs="+", default=["interfacegan", "classifier", "reference"],
                     choices=("interfacegan", "classifier", "reference", "ganspace", "sefa"))
    ee2.add_argument("--checkpoint", help="Style Transformer checkpoint (default: the shipped encoder)")
    ee2.add_argument("--generator", help="generator to render with (with --checkpoint; .safetensors, .pt or NVIDIA .pkl)")
    ee2.add_argument("--editing", help="editing folder (default: the shipped one)")
    ee2.add_argument("--classifier", help="image attribute classifier (default: the shipped one)")
    ee2.add_argument("--calibrate", action="store_true",
                     help="first choose default strengths and W+ row ranges of --methods' label and reference "
                          "edits on these (training) images and write them into the editing folder's editing.json")
    ee2.add_argument("--reference-strengths", type=_positive_float, nargs="+", metavar="S",
                     default=[0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0],
                     help="with --calibrate: the scales of the reference editors' move to try "
                          "(default: 0.75 1 1.5 2 3 4 6; 1 is the editor's own output)")
    ee2.add_argument("--no-layer-search", action="store_true",
                     help="with --calibrate: choose strengths only, keeping the stored row ranges")
    ee2.add_argument("--classifier-keeps", type=_non_negative_float, nargs="+", metavar="K",
                     help="with --calibrate: also choose, per attribute, the weight of holding the other "
                          "attributes' embeddings in classifier edits among these (the paper's is 1; default: "
                          "the folder's, not searched)")
    ee2.add_argument("--pick-directions", nargs="+", metavar="DIR",
                     help="per attribute, keep --editing's InterFaceGAN direction or take one of these (calibrated) "
                          "editing folders' (with its strength and rows), whichever edits the --data images best "
                          "(success among those keeping >= 90%% of the other attributes); writes into --editing")
    ee2.add_argument("--pick-editors", nargs="+", metavar="DIR",
                     help="per attribute, keep --editing's reference editor or take one of these editing folders', "
                          "whichever matches the references best on the --data images; writes into --editing")
    ee2.add_argument("--batch-size", type=_positive_int, default=64)
    ee2.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ee2.add_argument("--json", help="also write the report as JSON here")


def _cmd_eval_editing(args: argparse.Namespace) -> int:
    import json

    import torch

    from ..data.datasets import ImageFolderDataset
    from ..metrics.editing import (calibrate_reference_directions, calibrate_strengths, candidate_row_ranges,
                                  evaluate_editing)

    pipe = _editing_pipeline(args)
    clf = _image_classifier(args.classifier, pipe.device)
    known = set(pipe.editing.directions) | set(pipe.editing.editors)
    attrs = args.attributes or [a for a in clf.attributes if a in known]
    bad = [a for a in attrs if a not in clf.attributes]
    if bad:
        raise UsageError(f"the image classifier does not judge {', '.join(bad)} (it knows {', '.join(clf.attributes)})")
    data = ImageFolderDataset(args.data, pipe.input_size)
    n = min(args.n, len(data))
    images = torch.stack([data[i] for i in range(n)])
    if args.pick_directions or args.pick_editors:
        if args.pick_directions and args.pick_editors:
            raise UsageError("--pick-directions and --pick-editors: one at a time")
        return _pick_per_attribute(args, pipe, images, clf, attrs,
                                   "directions" if args.pick_directions else "editors")
    if args.calibrate:
        if args.editing is None:
            raise UsageError("--calibrate writes into the editing folder: pass --editing")
        methods = [m for m in args.methods if m in ("interfacegan", "classifier", "reference")]
        ranges = None if args.no_layer_search else candidate_row_ranges(pipe.generator.num_ws)
        ws = pipe.invert(list(images), batch_size=args.batch_size).ws  # once for both calibrations
        strengths, layers, keeps = calibrate_strengths(pipe, images, clf, attrs, methods=methods,
                                                       layer_ranges=ranges, batch_size=args.batch_size,
                                                       progress=True, keeps=args.classifier_keeps,
                                                       reference_grid=args.reference_strengths, ws=ws)
        for m, v in strengths.items():
            pipe.editing.strengths.setdefault(m, {}).update(v)
        for m, v in layers.items():
            pipe.editing.layers.setdefault(m, {}).update(v)
        pipe.editing.classifier_keep.update(keeps)
        removes = {}
        if "reference" in methods and pipe.editing.latent_classifier is not None:
            # then, on the chosen rows, separate scales for the edits that add and that remove
            adds, removes = calibrate_reference_directions(pipe, images, clf, attrs, grid=args.reference_strengths,
                                                           batch_size=args.batch_size, progress=True, ws=ws)
            pipe.editing.strengths.setdefault("reference", {}).update(adds)
            strengths.setdefault("reference", {}).update(adds)
            pipe.editing.reference_remove.update(removes)
        _write_text_atomic(Path(args.editing) / "editing.json", pipe.editing.settings_json())
        print(f"calibrated default strengths on {n} images of {args.data}: {json.dumps(strengths)}")
        if layers:
            print(f"and W+ row ranges [start, stop): {json.dumps(layers)}")
        if keeps:
            print(f"and hold weights of classifier edits: {json.dumps(keeps)}")
        if removes:
            print(f"and scales of reference edits that remove the attribute: {json.dumps(removes)}")
        return 0
    report = evaluate_editing(pipe, images, clf, attrs, methods=args.methods, batch_size=args.batch_size,
                              progress=True)
    print(f"{n} images of {args.data}, judged by the image attribute classifier:")
    print(report.to_markdown())
    if args.json:
        _write_text_atomic(Path(args.json), json.dumps(report.to_dict(), indent=2))
    return 0


def _pick_per_attribute(args: argparse.Namespace, pipe, images, clf, attrs, kind: str) -> int:
    """``eval-editing --pick-directions DIR...`` (InterFaceGAN directions, each with its calibrated strength
    and rows) or ``--pick-editors DIR...`` (reference editors): per attribute, the editing folder's model
    or one of DIR...'s, whichever edits the images best; the choice is written into the editing folder."""
    from ..checkpoints import save_model
    from ..editing import DirectionError, save_directions
    from ..editing.toolkit import EditingModels
    from ..inference import InversionPipeline
    from ..metrics.editing import best_per_attribute, evaluate_editing

    flag, method = {"directions": ("--pick-directions", "interfacegan"),
                    "editors": ("--pick-editors", "reference")}[kind]
    if args.editing is None:
        raise UsageError(f"{flag} writes into the editing folder: pass --editing")
    folders = args.pick_directions if kind == "directions" else args.pick_editors
    try:
        candidates = [pipe.editing] + [EditingModels.load(d) for d in folders]
    except DirectionError as e:
        raise UsageError(str(e)) from None
    names = [str(args.editing)] + list(folders)
    ws = pipe.invert(list(images), batch_size=args.batch_size).ws
    reports = []
    for name, models in zip(names, candidates):
        view = InversionPipeline(pipe.generator, None, pipe.device, editing=models)
        todo = [a for a in attrs if a in getattr(models, kind)]
        print(f"scoring the {kind} of {name}", flush=True)
        reports.append(evaluate_editing(view, images, clf, todo, methods=(method,), ws=ws,
                                        batch_size=args.batch_size, progress=True))
    pick = best_per_attribute(reports, method)
    target = pipe.editing
    print("| attribute | " + " | ".join(names) + " | chosen |")
    print("|---|" + "---:|" * len(names) + "---|")
    for a in attrs:
        if a not in pick:
            continue
        cells = []
        for rep in reports:
            sc = next((x for x in rep.scores if x.attribute == a and x.n), None)
            cells.append(f"{100 * sc.success:.1f}% / {100 * sc.preservation:.1f}%" if sc else "-")
        k = pick[a]
        print(f"| {a} | " + " | ".join(cells) + f" | {names[k]} |")
        if not k:
            continue
        src = candidates[k]
        getattr(target, kind)[a] = getattr(src, kind)[a]
        for mine, theirs in ((target.strengths, src.strengths), (target.layers, src.layers)):
            value = theirs.get(method, {}).get(a)  # a direction or editor comes with its calibrated setting
            if value is None:
                mine.get(method, {}).pop(a, None)
            else:
                mine.setdefault(method, {})[a] = value
        if kind == "editors":
            if a in src.reference_remove:
                target.reference_remove[a] = src.reference_remove[a]
            else:
                target.reference_remove.pop(a, None)
    folder = Path(args.editing)
    if kind == "directions":
        save_directions(list(target.directions.values()), folder / "directions")
        _write_text_atomic(folder / "editing.json", target.settings_json())
    else:
        import torch
        from safetensors import safe_open

        for a, k in pick.items():
            if k:  # stored as the chosen file was (fp16 stays fp16)
                with safe_open(str(Path(folders[k - 1]) / "editors" / f"{a}.safetensors"), "pt") as f:
                    half = any(f.get_slice(key).get_dtype() == "F16" for key in f.keys())
                save_model(target.editors[a], folder / "editors" / f"{a}.safetensors",
                           dtype=torch.float16 if half else None)
        _write_text_atomic(folder / "editing.json", target.settings_json())
    print(f"(success or match / others preserved on {len(images)} images of {args.data}); wrote the chosen "
          f"{kind} into {folder}/")
    return 0


# command -> (parser builder, handler)
COMMANDS = {
    "eval-editing": (_parser_eval_editing, _cmd_eval_editing),
}
