"""Validation curves of encoder runs side by side, at the steps they share (equal images seen).

    python experiments/training_curves.py style_transformer=runs/enc64 psp=runs/psp64 e4e=runs/e4e64

Reads each RUN/log.jsonl (what ``train-encoder`` writes) and prints one Markdown table: validation
PSNR (dB) and LPIPS (the run's own network, named in RUN/config.json) per method at every validation
step that all runs reached, and the training speed (median images/s of the logged steps).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Tuple


def read_run(run: Path) -> Tuple[Dict[int, Tuple[float, float]], float, str]:
    """(step -> (val PSNR, val LPIPS), median img/s, LPIPS network) of one run folder."""
    log = run / "log.jsonl"
    if not log.is_file():
        raise SystemExit(f"error: {log}: no such file (not a train-encoder run folder?)")
    val: Dict[int, Tuple[float, float]] = {}
    speeds: List[float] = []
    for n, line in enumerate(log.read_text().splitlines(), 1):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise SystemExit(f"error: {log}:{n}: not a JSON line") from None
        if "img_per_s" in rec:
            speeds.append(float(rec["img_per_s"]))
        if "val/psnr" in rec:
            val[int(rec["step"])] = (float(rec["val/psnr"]), float(rec["val/lpips"]))
    net = "?"
    if (run / "config.json").is_file():
        net = json.loads((run / "config.json").read_text()).get("lpips_net", "?")
    return val, (statistics.median(speeds) if speeds else float("nan")), net


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", metavar="NAME=RUN", help="method name and its run folder")
    args = ap.parse_args(argv)
    runs = {}
    for item in args.runs:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            ap.error(f"expected NAME=RUN, got {item!r}")
        runs[name] = read_run(Path(path))
    steps = sorted(set.intersection(*(set(v[0]) for v in runs.values())))
    if not steps:
        print("error: the runs share no validation step", file=sys.stderr)
        return 1
    names = list(runs)
    nets = {v[2] for v in runs.values()}
    print(f"validation PSNR (dB) / LPIPS ({', '.join(sorted(nets))}) at equal steps")
    print("| step | " + " | ".join(names) + " |")
    print("|---:|" + "---:|" * len(names))
    for s in steps:
        cells = [f"{runs[n][0][s][0]:.2f} / {runs[n][0][s][1]:.4f}" for n in names]
        print(f"| {s:,} | " + " | ".join(cells) + " |")
    print("| img/s (median) | " + " | ".join(f"{runs[n][1]:.1f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
