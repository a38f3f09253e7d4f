"""What label edits can reach with this generator: per attribute and method, the best success with
>= 90% of the other attributes kept, and the most an edit reaches at all when nothing need be kept.

    python experiments/edit_ceiling.py edit_cal/ --n 120 [--methods interfacegan classifier]
        [--strengths 3 6 11 20 30 60] [--attributes Eyeglasses Blond_Hair ...] [--rows 0-9 2-5 ...]

Every (W+ row range, strength) pair (the ranges of ``calibrate_strengths``, strengths up to twice the
calibration grid's largest) is scored by ``score_settings`` (the sweep that calibration chooses from)
on the images' inversions, judged on images by the image attribute classifier, as ``eval-editing``
does. An attribute whose most reachable
success is low is bound by the generator (no code moved this way draws it); one that reaches its
target only where the other attributes change is bound by entanglement (or by the judge's fragility,
``experiments/edit_fragility.py``).
"""

from __future__ import annotations

import argparse
import sys

import torch

from style_transformer import load_pipeline
from style_transformer.data.datasets import ImageFolderDataset
from style_transformer.editing.calibrate import candidate_row_ranges, score_settings
from style_transformer.pretrained import load_default


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="folder of images (the calibration renders)")
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--methods", nargs="+", default=["interfacegan", "classifier"],
                    choices=("interfacegan", "classifier"))
    ap.add_argument("--strengths", type=float, nargs="+", default=[3.0, 6.0, 11.0, 20.0, 30.0, 60.0])
    ap.add_argument("--attributes", nargs="+", help="default: every attribute with a direction")
    ap.add_argument("--rows", nargs="+", metavar="A-B",
                    help="W+ row ranges to try, first-last inclusive (default: calibration's, all rows and "
                         "40-60%% spans)")
    ap.add_argument("--min-preservation", type=float, default=0.9)
    args = ap.parse_args()
    pipe = load_pipeline()
    judge = load_default("attribute_classifier").to(pipe.device)
    try:
        data = ImageFolderDataset(args.data, pipe.input_size)
    except Exception as e:  # a missing or empty folder
        print(f"error: {e}", file=sys.stderr)
        return 2
    attrs = args.attributes or [a for a in judge.attributes if a in pipe.editing.directions]
    unknown = [a for a in attrs if a not in judge.attributes]
    if unknown:
        print(f"error: unknown attributes {unknown}; the classifier knows {judge.attributes}", file=sys.stderr)
        return 2
    images = torch.stack([data[i] for i in range(min(args.n, len(data)))])
    ws = pipe.invert(list(images)).ws
    ranges = candidate_row_ranges(pipe.generator.num_ws)
    if args.rows:
        try:
            ranges = [(int(a), int(b) + 1) for a, b in (r.split("-") for r in args.rows)]
        except ValueError:
            print(f"error: --rows takes first-last pairs such as 2-5, got {args.rows}", file=sys.stderr)
            return 2
        bad = [f"{a}-{b - 1}" for a, b in ranges if not 0 <= a < b <= pipe.generator.num_ws]
        if bad:
            print(f"error: --rows {bad} outside rows 0-{pipe.generator.num_ws - 1}", file=sys.stderr)
            return 2
    # method -> attribute -> [(strength, success, preservation, rows, keep)]
    results = score_settings(pipe, images, judge, attrs, methods=args.methods, grid=args.strengths,
                             layer_ranges=ranges, ws=ws, progress=True)
    keep = args.min_preservation
    print(f"{len(images)} images; {len(ranges) * len(args.strengths)} settings per edit (strengths "
          f"{args.strengths}, row ranges {[f'{a}-{b - 1}' for a, b in ranges]})\n")
    print(f"| method | attribute | best success with >= {keep:.0%} kept | most reached (kept, setting) |")
    print("|---|---|---:|---:|")
    for m, by_attribute in results.items():
        for a, rows in by_attribute.items():
            best = max((x for x in rows if x[2] >= keep), key=lambda x: (x[1], x[2], x[0], x[3]),
                       default=None)
            top = max(rows, key=lambda x: (x[1], x[2]))
            best_txt = f"{best[1]:.1%} (x{best[0]:g}, rows {best[3][0]}-{best[3][1] - 1})" if best \
                else "none keeps enough"
            print(f"| {m} | {a} | {best_txt} | {top[1]:.1%} ({top[2]:.1%} kept, x{top[0]:g}, "
                  f"rows {top[3][0]}-{top[3][1] - 1}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
