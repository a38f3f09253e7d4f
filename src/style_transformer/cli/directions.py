"""``directions``: fit InterFaceGAN boundaries, list an editing folder's directions and defaults."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Dict, List

from ..errors import UsageError
from .common import _add_device_arg, _make_out_dir, _positive_int
from .editing import _latent_label_args, _labelled_samples


def _parser_directions(sub) -> None:
    dr = sub.add_parser("directions", help="latent directions: fit InterFaceGAN boundaries, list directions")
    dr_sub = dr.add_subparsers(dest="directions_command", required=True, metavar="ACTION")
    drf = dr_sub.add_parser("fit", help="fit one boundary per 0/1 label column (or per attribute of the image "
                                        "classifier, on generator samples)",
                            epilog="examples:\n  style-transformer invert faces/ --out inv/\n"
                                   "  style-transformer directions fit --latents inv/latents.npz "
                                   "--labels faces/attributes.csv --out dirs/\n"
                                   "  style-transformer directions fit --samples 10000 --out dirs/   "
                                   "# InterFaceGAN's recipe",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    _latent_label_args(drf, required=False)
    drf.add_argument("--samples", type=_positive_int,
                     help="instead of --latents/--labels: N random codes of --generator, labelled by the image "
                          "attribute classifier on their renders (InterFaceGAN's recipe: a label says what the code "
                          "draws); fits in W")
    drf.add_argument("--generator", help="with --samples: the generator (default: the one the shipped encoder "
                                         "was trained for)")
    drf.add_argument("--classifier", help="with --samples: the image attribute classifier (default: the shipped one)")
    drf.add_argument("--seed", type=int, default=0, help="with --samples: the z seed")
    _add_device_arg(drf)
    drf.add_argument("--out", required=True, help="output folder: directions.json + <attribute>.npy")
    drf.add_argument("--attributes", nargs="+", help="columns to fit (default: every 0/1 column)")
    drf.add_argument("--space", choices=("w", "wplus"), default="w",
                     help="w: one (1, w_dim) normal on the mean code; wplus: (num_ws, w_dim) on the flattened code")
    drf.add_argument("--method", choices=("logistic", "svm"), default="logistic")
    drl = dr_sub.add_parser("list", help="list the directions and editors of an editing folder")
    drl.add_argument("--dir", help="editing folder or directions folder (default: the shipped one)")


def _default_settings(models) -> Dict[str, str]:
    """``directions list``: attribute -> its calibrated defaults, e.g. ``interfacegan 15 @ 4:10 |
    classifier 15 @ 4:8, hold 0 | reference x6 @ 4:8``."""
    out: Dict[str, List[str]] = {}
    for method in ("interfacegan", "classifier", "reference"):
        for a, s in models.settings.get(method, {}).items():
            if s.strength is None:
                continue
            text = f"{method} {'x' if method == 'reference' else ''}{s.strength:g}"
            text += f" @ {s.rows[0]}:{s.rows[1]}" if s.rows else ""
            text += f", hold {s.keep:g}" if method == "classifier" and s.keep is not None else ""
            text += f", removing x{s.remove:g}" if method == "reference" and s.remove is not None else ""
            out.setdefault(a, []).append(text)
    return {a: " | ".join(v) for a, v in out.items()}


def _cmd_directions(args: argparse.Namespace) -> int:
    from ..editing import Direction, DirectionError, fit_boundary, load_directions, save_directions

    if args.directions_command == "list":
        from ..editing.toolkit import EditingModels

        folder = Path(args.dir) if args.dir else None
        if folder is None:
            from ..pretrained import default_editing_dir

            folder = default_editing_dir()
        try:
            if (folder / "directions.json").is_file():
                dirs, available = load_directions(folder), None
            else:
                models = EditingModels.load(folder)
                dirs, available = models.directions, models.available()
        except DirectionError as e:
            raise UsageError(str(e)) from None
        print(f"{folder}:")
        for name, d in dirs.items():
            acc = d.info.get("accuracy")
            print(f"  {name:<22} {d.method:<12} shape {tuple(d.vector.shape)}"
                  + (f", layers {d.layers[0]}:{d.layers[1]}" if d.layers else "")
                  + (f", boundary accuracy {100 * acc:.1f}%" if acc is not None else ""))
        if available:
            for method, attrs in available.items():
                print(f"  {method}: {', '.join(attrs) or '-'}")
            defaults = _default_settings(models)
            if defaults:
                print("  default strengths (reference: scale of the editor's move) @ W+ rows [start, stop):")
                for name, text in defaults.items():
                    print(f"    {name:<22} {text}")
        return 0
    if args.samples is not None:
        if args.latents or args.labels:
            raise UsageError("--samples fits on generator samples: leave out --latents and --labels")
        if args.space != "w":
            raise UsageError("--samples fits in W (every row of a sample's code is the same w)")
        codes, columns, labels = _labelled_samples(args)
        keys = range(len(codes))
    elif not (args.latents and args.labels):
        raise UsageError("give --latents and --labels, or --samples N")
    else:
        from ..editing.build import latents_and_labels

        keys, ws, columns, labels = latents_and_labels(args.latents, args.labels, args.attributes)
        codes = ws.mean(1) if args.space == "w" else ws
    dirs = []
    for j, name in enumerate(columns):
        try:
            normal, _, info = fit_boundary(codes, labels[:, j], args.method)
        except DirectionError as e:
            logging.getLogger("style_transformer").warning("%s: %s; skipped", name, e)
            continue
        dirs.append(Direction(name, normal[None] if args.space == "w" else normal, "interfacegan", info=info))
        print(f"{name:<22} boundary accuracy {100 * info['accuracy']:.1f}% ({len(keys)} latents)")
    if not dirs:
        raise UsageError("no boundary could be fitted")
    save_directions(dirs, _make_out_dir(args.out))
    print(f"wrote {len(dirs)} directions into {args.out}/")
    return 0


# command -> (parser builder, handler)
COMMANDS = {
    "directions": (_parser_directions, _cmd_directions),
}
