"""FID curve of a GAN run: FID of the EMA snapshots in RUN/snapshots/ against a reference folder.

    python experiments/fid_curve.py runs/gan64 --reference ref/ --n 2000 --every 40

Prints a Markdown table (kimg, FID, the Frechet distance in the attribute classifier's features, the
largest attribute-frequency gap) and writes RUN/fid_curve.json. ``--last K`` scores only the newest K
snapshots; ``--no-judge`` skips the classifier. FID from fewer samples is biased
upward (the final 10k-sample number comes from ``style-transformer eval-generator``); every point
of one curve uses the same n, so the points compare with each other.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from style_transformer.checkpoints import load_model
from style_transformer.metrics.generator import evaluate_generator
from style_transformer.utils import atomic_path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="GAN run folder (config.json, snapshots/)")
    ap.add_argument("--reference", required=True, help="folder of real images")
    ap.add_argument("--n", type=int, default=2000, help="samples per snapshot")
    ap.add_argument("--every", type=float, default=0.0, help="only snapshots at least this many kimg apart")
    ap.add_argument("--last", type=int, default=0, help="only the newest this many snapshots (0: all)")
    ap.add_argument("--classifier", help="attribute classifier (default: the shipped one)")
    ap.add_argument("--no-judge", action="store_true", help="FID only: no attribute classifier")
    args = ap.parse_args()
    judge = None
    if not args.no_judge:
        from style_transformer.pretrained import default_path

        judge = load_model(args.classifier or default_path("attribute_classifier"), kind="attribute_classifier")
    run = Path(args.run)
    snaps = sorted((run / "snapshots").glob("g_ema-[0-9]*.safetensors"))
    if args.last > 0:
        snaps = snaps[-args.last:]
    if not snaps:
        print(f"error: no snapshots in {run / 'snapshots'}", file=sys.stderr)
        return 2
    points, last = [], None
    for i, path in enumerate(snaps):
        kimg = int(re.search(r"g_ema-(\d+)", path.name).group(1)) / 1000  # images shown
        if last is not None and kimg - last < args.every and i != len(snaps) - 1:
            continue
        last = kimg
        report = evaluate_generator(load_model(path, kind="generator"), args.reference, n=args.n, classifier=judge)
        points.append({"kimg": round(kimg, 3), "fid": report.fid, "n": args.n, "snapshot": path.name,
                       "fd_classifier": report.fd_classifier, "sample_rates": report.sample_rates,
                       "reference_rates": report.reference_rates,
                       "max_gap": report.max_rate_gap if judge is not None else None})
        extra = (f"  FD(classifier) {report.fd_classifier:.4f}  largest gap {report.max_rate_gap:4.1f} points"
                 if judge is not None else "")
        print(f"{kimg:8.1f} kimg  FID {report.fid:7.2f}{extra}", flush=True)
    print("\n| kimg | FID (%d samples) | FD (classifier features) | largest gap (points) |\n|---:|---:|---:|---:|" % args.n)
    for p in points:
        fd = "" if p["fd_classifier"] is None else f"{p['fd_classifier']:.4f}"
        gap = "" if p["max_gap"] is None else f"{p['max_gap']:.1f}"
        print(f"| {p['kimg']:.0f} | {p['fid']:.2f} | {fd} | {gap} |")
    if judge is not None:
        last = points[-1]
        print(f"\nattribute frequencies at {last['kimg']:.0f} kimg (samples / reference): " + ", ".join(
            f"{a} {100 * r:.1f}/{100 * last['reference_rates'][a]:.1f}" for a, r in last["sample_rates"].items()))
    with atomic_path(run / "fid_curve.json") as tmp:
        tmp.write_text(json.dumps(points, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
