"""How much a random edit of a given size disturbs the image classifier's verdicts: the preservation
floor that an attribute edit of the same size has to beat.

    python experiments/edit_fragility.py test500/ --n 200 --strengths 2 4.5 8 15

Each held-out image is inverted by the shipped encoder (or --checkpoint); every W+ row of its code
gets ``s * v``, where ``v`` is a random unit direction drawn per image from the generator's own code
distribution (N(0, C), C the covariance of ``mapping(z)``, ``editing.w_covariance``), then normalised.
A direction edit of strength ``s`` on all rows moves a code exactly as far. Prints, per strength, the
share of all attribute verdicts kept and how often each attribute's verdict flipped.
"""

from __future__ import annotations

import argparse
import sys

import torch

from style_transformer import load_pipeline
from style_transformer.data.datasets import ImageFolderDataset
from style_transformer.editing import judge_codes, w_covariance
from style_transformer.pretrained import load_default


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", help="folder of held-out images")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--strengths", type=float, nargs="+", default=[2.0, 4.5, 8.0, 15.0])
    ap.add_argument("--checkpoint", help="Style Transformer checkpoint (default: the shipped encoder)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    pipe = load_pipeline(checkpoint=args.checkpoint)
    try:
        data = ImageFolderDataset(args.data, pipe.input_size)
    except Exception as e:  # a missing or empty folder
        print(f"error: {e}", file=sys.stderr)
        return 2
    judge = load_default("attribute_classifier").to(pipe.device)
    images = torch.stack([data[i] for i in range(min(args.n, len(data)))])
    ws = pipe.invert(list(images)).ws

    def verdicts(codes):  # the judge's verdicts on the codes' renders
        return judge_codes(pipe.generator, judge, codes).bool().cpu()

    base = verdicts(ws)
    evals, evecs = torch.linalg.eigh(w_covariance(pipe.generator))
    root = (evecs * evals.clamp_min(0).sqrt()).float()  # x @ root.T ~ N(0, C) for x ~ N(0, I)
    g = torch.Generator().manual_seed(args.seed)
    names = list(judge.attributes)
    print(f"{len(ws)} images of {args.data}; random code-distributed unit directions on all rows")
    print("| strength | verdicts kept | " + " | ".join(names) + " |")
    print("|---:|---:|" + "---:|" * len(names))
    for s in args.strengths:
        v = torch.randn(len(ws), ws.shape[-1], generator=g) @ root.T
        v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
        after = verdicts(ws + s * v[:, None, :])
        flips = (after != base).float().mean(0)
        print(f"| {s:g} | {100 * float((after == base).float().mean()):.1f}% | "
              + " | ".join(f"{100 * float(f):.1f}%" for f in flips) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
