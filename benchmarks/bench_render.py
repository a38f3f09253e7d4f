"""Procedural face rendering speed on one core (target: at least 300 images/s at 64x64).

    python benchmarks/bench_render.py [--size 64] [--n 1024]
"""

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the target is stated

from style_transformer.data.synthetic import render_dataset_batch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    render_dataset_batch(0, range(16), args.size)
    t0 = time.perf_counter()
    for start in range(0, args.n, args.batch):
        render_dataset_batch(0, range(start, min(args.n, start + args.batch)), args.size)
    dt = time.perf_counter() - t0
    print(f"rendered {args.n} faces at {args.size}x{args.size}: {args.n / dt:.0f} images/s (one core)")


if __name__ == "__main__":
    main()
