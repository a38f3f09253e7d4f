"""A long ``invert`` batch: memory per thousand images, corrupt files skipped and counted, every good
image's code written.

Renders N faces (``dataset synth``), overwrites one file in every 1,000 with junk, inverts the folder
with the shipped models through the same workflow as ``style-transformer invert`` and prints the
process RSS after each thousand images, the failures counted and the codes in ``latents.npz``.

    python benchmarks/bench_long_batch.py --n 20000 --work ~/runs/long_batch
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def rss_mb() -> float:
    from style_transformer.utils import process_rss_mb

    return process_rss_mb()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--work", required=True, help="folder for the rendered faces and the outputs")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args(argv)

    import numpy as np

    from style_transformer import invert_files, load_pipeline
    from style_transformer.data.synthetic import write_dataset

    work = Path(args.work).expanduser()
    faces = work / "faces"
    if not (faces / "attributes.csv").is_file():
        write_dataset(faces, args.n, size=64, seed=5000, progress=True)
    files = sorted(faces.glob("*.png"))[: args.n]
    corrupt = files[999::1000]
    for f in corrupt:
        f.write_bytes(b"not an image " * 10)
    pipe = load_pipeline(device="cpu")
    marks, done, original = [], [0], pipe.invert

    def counting(images, **kw):
        res = original(images, **kw)
        before = done[0]
        done[0] += len(images)
        if done[0] // 1000 > before // 1000:
            marks.append((done[0], round(rss_mb(), 1)))
        return res

    pipe.invert = counting
    t0 = time.perf_counter()
    run = invert_files(pipe, [faces], work / "out", batch_size=args.batch_size)
    seconds = time.perf_counter() - t0
    with np.load(run.latents_path) as npz:
        codes = len(npz.files)
    growth = marks[-1][1] - marks[0][1] if len(marks) > 1 else float("nan")
    print(json.dumps({"inputs": run.total, "written": len(run.written), "failed": len(run.failed),
                      "corrupt_planted": len(corrupt), "codes_in_latents_npz": codes,
                      "seconds": round(seconds, 1), "img_per_s": round(len(run.written) / seconds, 1),
                      "rss_first_thousand_mb": marks[0][1] if marks else None,
                      "rss_last_thousand_mb": marks[-1][1] if marks else None,
                      "rss_growth_mb": round(growth, 1)}))
    print("rss per thousand:", " ".join(f"{k // 1000}k:{v:.0f}" for k, v in marks))
    ok = len(run.failed) == len(corrupt) and codes == run.total - len(corrupt)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    sys.exit(main())
