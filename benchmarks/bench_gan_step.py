"""Where a GAN training step's time goes, and images/s of the step variants, measured in one run.

The step is ``GANTrainer.train_step`` itself (preset ``faces-64`` unless told otherwise), on rendered
faces held in memory. The breakdown comes from the step's own ``record_function`` labels under the
PyTorch profiler (data, D step: G forward, D forward, D backward; R1; G step forward, backward;
optimisers; EMA); the speeds from plain timed steps, the variants interleaved round by round so that
the machine's load affects them alike.

    python benchmarks/bench_gan_step.py [--preset faces-64] [--batch 32] [--steps 8] [--rounds 3]
        [--d-channels 256,256,256,128,64 ...]
"""

import argparse
import dataclasses
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from style_transformer.data.datasets import ImageFolderDataset
from style_transformer.data.synthetic import write_dataset
from style_transformer.training.gan import GANTrainer, gan_preset


def _trainer(cfg, data, out, conditional: bool):
    if conditional:
        from style_transformer.training.gan import conditional_generator

        cfg = dataclasses.replace(cfg, generator=conditional_generator(cfg.generator, data.attribute_names,
                                                                       data.label_table()))
    return GANTrainer(cfg, data, out)


def _timed(trainer, steps: int) -> float:
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return steps * trainer.cfg.batch_size / (time.perf_counter() - t0)


def _breakdown(trainer, steps: int):
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            trainer.train_step()
    totals = defaultdict(float)
    for evt in prof.key_averages():
        if evt.key.startswith("gan/"):
            totals[evt.key] += evt.cpu_time_total / 1e6
    return totals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="faces-64")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=8, help="timed steps per variant per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--d-channels", action="append", default=[], metavar="W,W,...",
                    help="also time a discriminator with these widths (4..size px); repeatable")
    args = ap.parse_args()
    base = dataclasses.replace(gan_preset(args.preset), batch_size=args.batch, d_reg_every=4)
    size = base.generator.size
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(Path(tmp) / "faces", 256, size=size, seed=0)
        data = ImageFolderDataset(Path(tmp) / "faces", size, cache=True,
                                  labels=Path(tmp) / "faces" / "attributes.csv")
        variants = {
            "float32": _trainer(dataclasses.replace(base, amp="off"), data, Path(tmp) / "a", False),
            "bf16 autocast": _trainer(dataclasses.replace(base, amp="bf16"), data, Path(tmp) / "b", False),
            "float32, conditional": _trainer(dataclasses.replace(base, amp="off"), data, Path(tmp) / "c", True),
        }
        for i, widths in enumerate(args.d_channels):
            d_channels = tuple(int(v) for v in widths.split(","))
            variants[f"float32, D {widths}"] = _trainer(dataclasses.replace(base, d_channels=d_channels), data,
                                                        Path(tmp) / f"d{i}", False)
        for t in variants.values():  # warm-up: allocations, oneDNN primitives
            _timed(t, 2)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, preset {args.preset}, batch "
              f"{args.batch}, R1 every 4 steps (its share is 4x the preset's 1/16)\n")
        print("time per step by phase (profiler, float32):")
        totals = _breakdown(variants["float32"], args.steps)
        step_total = sum(v for k, v in totals.items() if k.count("/") == 1 or k.startswith("gan/d_step/")
                         or k.startswith("gan/g_step/"))
        for key, value in sorted(totals.items(), key=lambda kv: -kv[1]):
            print(f"  {key:28s} {1e3 * value / args.steps:8.1f} ms  {100 * value / step_total:5.1f}%")
        rates = defaultdict(list)
        for _ in range(args.rounds):
            for name, t in variants.items():
                rates[name].append(_timed(t, args.steps))
        print("\nimages/s (median of rounds; variants interleaved):")
        ref = sorted(rates["float32"])[len(rates["float32"]) // 2]
        for name, r in rates.items():
            med = sorted(r)[len(r) // 2]
            print(f"  {name:36s} {med:7.2f} img/s  {med / ref:5.2f}x")


if __name__ == "__main__":
    main()
