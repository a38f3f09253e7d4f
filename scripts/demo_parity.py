"""Offline demo until the default model ships: invert images with an official-format checkpoint.

Writes ``OUT/parity_style_transformer.pt`` (the official inversion-checkpoint format, weights from the
parity rule of tests/parity_rule.py, seed 1), the two official reference inputs as PNGs, then runs
``style-transformer invert`` on them and reports how far the result is from the official outputs.
The weights are not trained, so reconstructions are not faces: this shows the pipeline and parity.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _parity_rule():
    spec = importlib.util.spec_from_file_location("parity_rule", ROOT / "tests" / "parity_rule.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="demo_out")
    ap.add_argument("inputs", nargs="*", help="images to invert (default: the official reference inputs)")
    args = ap.parse_args()

    from style_transformer.cli import main as cli_main
    from style_transformer.data import to_uint8

    out = Path(args.out)
    (out / "inputs").mkdir(parents=True, exist_ok=True)
    ckpt = out / "parity_style_transformer.pt"
    if not ckpt.exists():
        torch.save(_parity_rule().official_styletransformer_checkpoint(1), ckpt)
    ref = torch.load(ROOT / "tests" / "data" / "parity" / "public_styletransformer.pt", weights_only=True)
    inputs = args.inputs
    if not inputs:
        for i, arr in enumerate(to_uint8(ref["inputs"]["x"])):
            Image.fromarray(arr).save(out / "inputs" / f"reference_{i}.png")
        inputs = [str(out / "inputs")]
    rc = cli_main(["invert", *inputs, "--checkpoint", str(ckpt), "--out", str(out / "inverted"), "--device", "cpu"])
    if not args.inputs:
        # PNG inputs are 8-bit; the official run used the float tensors, so compare those directly
        from style_transformer import load_pipeline
        res = load_pipeline(checkpoint=ckpt, device="cpu").invert(ref["inputs"]["x"])
        d_codes = (res.ws - ref["outputs"]["codes"]).abs().max().item()
        d_img = (res.images - ref["outputs"]["images"]).abs().max().item()
        print(f"parity with the official implementation: max |codes diff| {d_codes:.2e}, "
              f"max |image diff| {d_img:.2e} (tolerance 1e-3)")
    print(f"reconstructions and latents.npz: {out / 'inverted'}/")
    return rc


if __name__ == "__main__":
    sys.exit(main())
