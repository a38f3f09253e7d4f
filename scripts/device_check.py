"""Does the toolkit give the same results on a GPU as on the CPU? Inversion, rendering and every edit
method, run through the public API on both devices from the same inputs, compared.

    python scripts/device_check.py [--n 32] [--device cuda]

Prints, per step, the largest absolute difference between the CPU and the GPU result (codes in W+
units, images in [-1, 1]) and whether the image attribute classifier's verdicts on the two renders
agree. GPU convolutions and matrix products sum in another order than the CPU's (and cuDNN may use
TF32), so differences of about 1e-3 are expected; a device bug shows as a difference of order 1 or an
error. Exit status 1 when any step differs by more than ``--tol`` on the codes.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from style_transformer import load_pipeline
from style_transformer.data.images import pool_to_size
from style_transformer.demo import held_out_faces
from style_transformer.inference import resolve_device
from style_transformer.pretrained import load_default


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=32, help="held-out rendered faces")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tol", type=float, default=0.05, help="largest allowed difference of the codes")
    args = ap.parse_args()
    try:
        dev = resolve_device(args.device)
    except RuntimeError as e:  # --device cuda without a GPU
        print(f"error: {e}", file=sys.stderr)
        return 2
    faces, _ = held_out_faces(args.n)
    pipes = {"cpu": load_pipeline(device="cpu"), "other": load_pipeline(device=dev)}
    judge = load_default("attribute_classifier")  # on the CPU: both devices' renders judged alike
    worst = 0.0

    def report(step, codes, imgs):
        """Codes and renders ({"cpu": ..., "other": ...}) of one step on both devices, compared."""
        nonlocal worst
        diff = float((codes["cpu"] - codes["other"]).abs().max())
        worst = max(worst, diff)
        img_diff = float((imgs["cpu"] - imgs["other"]).abs().max())
        with torch.no_grad():
            verdicts = [judge.predict(pool_to_size(imgs[d].float(), judge.cfg.size).clamp(-1, 1)) > 0.5
                        for d in ("cpu", "other")]
        agree = float((verdicts[0] == verdicts[1]).float().mean())
        print(f"{step:<34} max |cpu - {dev}|: codes {diff:.2e}, images {img_diff:.2e}, verdicts agree "
              f"{100 * agree:.1f}%", flush=True)

    t = {}
    inv = {}
    for d, p in pipes.items():
        p.invert(list(faces[:2]))  # warm-up
        t0 = time.perf_counter()
        inv[d] = p.invert(list(faces))  # returns CPU tensors: the GPU's work is finished
        t[d] = time.perf_counter() - t0
    print(f"invert {args.n} faces: cpu {t['cpu']:.3f} s, {dev} {t['other']:.3f} s")
    report("invert", {d: r.ws for d, r in inv.items()}, {d: r.images for d, r in inv.items()})
    ws = inv["cpu"].ws  # from here on both devices edit the same codes
    ref = ws.roll(1, 0)
    for method, attrs in pipes["cpu"].editing.available().items():
        for attribute in (attrs[:3] if method not in ("ganspace", "sefa") else ["0", "3"]):
            kwargs = {"ws_ref": ref} if method == "reference" else {"strength": 3.0}
            try:
                outs = {d: p.edit_ws(ws, attribute, method=method, **kwargs) for d, p in pipes.items()}
            except Exception as e:  # a device bug: say which edit, go on with the others
                print(f"{method} {attribute}: ERROR {type(e).__name__}: {e}", flush=True)
                worst = float("inf")
                continue
            report(f"edit {method} {attribute}", outs, {d: pipes[d].generate(o) for d, o in outs.items()})
    print(f"largest code difference: {worst:.2e} (tolerance {args.tol})")
    return 0 if worst <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
