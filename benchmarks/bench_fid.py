"""FID feature extraction speed: the eager InceptionV3 (``metrics/inception.py``) against the TorchScript
file it loads its weights from, on the same images, in one run; plus the cost of decoding and
resizing a 64x64 PNG to 299x299.

    python benchmarks/bench_fid.py [--batch 32] [--repeats 2]
"""

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import torch

from style_transformer.data.images import load_image, preprocess
from style_transformer.data.synthetic import write_dataset
from style_transformer.metrics.fid import InceptionFeatures, inception_path


def _rate(fn, x, repeats: int) -> float:
    fn(x[:2])  # warm-up (allocations, oneDNN primitives)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t0)
    return len(x) / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(Path(tmp), args.batch, size=64, seed=0)
        files = sorted(Path(tmp).glob("*.png"))
        t0 = time.perf_counter()
        x = torch.stack([preprocess([load_image(f)], 299)[0] for f in files])
        decode = (time.perf_counter() - t0) / len(files)
    eager = InceptionFeatures("cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        script = torch.jit.load(str(inception_path())).eval()
    to_range = (x + 1) / 2 * (0.9921875 + 1) - 1

    def run_script(batch):
        with torch.no_grad():
            return script(batch.contiguous(memory_format=torch.channels_last))

    r_script = _rate(run_script, to_range, args.repeats)
    r_eager = _rate(eager, x, args.repeats)
    diff = (torch.from_numpy(eager(x)) - run_script(to_range).double()).abs().max().item()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print(f"TorchScript InceptionV3: {r_script:.2f} img/s")
    print(f"eager InceptionV3:       {r_eager:.2f} img/s  ({r_eager / r_script:.2f}x; max abs feature diff {diff:.1e})")
    print(f"decode + resize to 299:  {decode * 1e3:.1f} ms/img")


if __name__ == "__main__":
    main()
