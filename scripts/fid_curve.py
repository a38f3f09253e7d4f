"""FID curve of a GAN run: FID of the EMA snapshots in RUN/snapshots/ against a reference folder.

    python scripts/fid_curve.py runs/gan64 --reference ref/ --n 2000 --every 40

Prints a Markdown table (kimg, FID) and writes RUN/fid_curve.json. FID from fewer samples is biased
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
    args = ap.parse_args()
    run = Path(args.run)
    snaps = sorted((run / "snapshots").glob("g_ema-[0-9]*.safetensors"))
    if not snaps:
        print(f"error: no snapshots in {run / 'snapshots'}", file=sys.stderr)
        return 2
    points, last = [], None
    for i, path in enumerate(snaps):
        kimg = int(re.search(r"g_ema-(\d+)", path.name).group(1)) / 1000  # images shown
        if last is not None and kimg - last < args.every and i != len(snaps) - 1:
            continue
        last = kimg
        report = evaluate_generator(load_model(path, kind="generator"), args.reference, n=args.n)
        points.append({"kimg": round(kimg, 3), "fid": report.fid, "n": args.n, "snapshot": path.name})
        print(f"{kimg:8.1f} kimg  FID {report.fid:7.2f}", flush=True)
    print("\n| kimg | FID (%d samples) |\n|---:|---:|" % args.n)
    for p in points:
        print(f"| {p['kimg']:.0f} | {p['fid']:.2f} |")
    with atomic_path(run / "fid_curve.json") as tmp:
        tmp.write_text(json.dumps(points, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
