"""Data commands: ``dataset synth``."""

from __future__ import annotations

import argparse

from ..errors import UsageError
from .common import _make_out_dir, _positive_int


def _parser_dataset(sub) -> None:
    ds = sub.add_parser("dataset", help="dataset tools")
    ds_sub = ds.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    synth = ds_sub.add_parser("synth", help="render procedural faces with attributes.csv",
                              epilog="example:\n  style-transformer dataset synth --n 1000 --out faces/",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    synth.add_argument("--n", type=_positive_int, required=True, help="number of faces")
    synth.add_argument("--out", required=True, help="output folder: NNNNNN.png and attributes.csv")
    synth.add_argument("--size", type=_positive_int, default=64, help="image side in pixels (default 64)")
    synth.add_argument("--seed", type=int, default=0, help="dataset seed: face i depends only on (seed, i)")


def _cmd_dataset(args: argparse.Namespace) -> int:
    from ..data.synthetic import write_dataset

    if args.size < 8:
        raise UsageError(f"--size must be at least 8, got {args.size}")
    out = _make_out_dir(args.out)
    csv = write_dataset(out, args.n, size=args.size, seed=args.seed, progress=True)
    print(f"wrote {args.n} faces ({args.size}x{args.size}, seed {args.seed}) and {csv}")
    return 0


# command -> (parser builder, handler)
COMMANDS = {
    "dataset": (_parser_dataset, _cmd_dataset),
}
