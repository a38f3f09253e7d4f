"""Inversion and training speed on a GPU, every variant in one run (on a CPU: the same cases, small).

Inversion is the device-side forward (encoder, then the synthesis network on the codes) of three
models: the shipped default (64 px faces), `official-256` (256 in, 256 out) and `official-ffhq`
(256 in, 1024 out; random weights: speed does not depend on them). Per model and batch size it times
every variant:

* ops: `fast` (tuned for the CPU) and `ref` (the official code's grouped convolution);
* mode: `eager`, or `graphed` (the pipeline's CUDA-graph replay, `accel.GraphedForward`);
* precision: `fp32`, `tf32` (TF32 matmuls and convolutions) and `bf16` (autocast),

and prints ms per image, images/s and the largest difference of the images (and of the codes) from the
eager fp32 `ref` forward of the same batch. Training: images/s of `GANTrainer.train_step` (preset
faces-64) and `EncoderTrainer.train_step` (preset faces-64) at the preset's batch and GPU-sized ones,
with the share of wall time the GPU was busy (CUDA kernel time under the PyTorch profiler / wall).

On a CPU (no CUDA, or `--device cpu`) the cases shrink to batches 1 and 2, one timed run, no
graphs or TF32, and training at batch 4 for two steps: the script runs end to end (the test suite
does so), the numbers mean little.

    python benchmarks/bench_gpu.py [--device auto|cuda|cpu] [--models default official-256 official-ffhq]
        [--batches 1 8 32 256] [--reps 5] [--train-batches 32 64 256] [--train-steps 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench_speed import _time as _median_seconds  # median of timed runs after a warm-up, CUDA synced
from style_transformer import InversionPipeline, create_model, load_pipeline

GPU_BATCHES = (1, 8, 32, 256)
CPU_BATCHES = (1, 2)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _precision(name: str, device: torch.device):
    """fp32 (TF32 off), tf32 (TF32 matmuls and cuDNN convolutions) or bf16 (autocast)."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = name == "tf32"
    try:
        if name == "bf16":
            with torch.autocast(device.type, dtype=torch.bfloat16):
                yield
        else:
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _models(names, device):
    """name -> (generator, encoder model)."""
    out = {}
    for name in names:
        if name == "default":
            pipe = load_pipeline(device="cpu")
            out[name] = (pipe.generator, pipe.model)
        else:
            torch.manual_seed(0)
            model = create_model(name).eval()
            out[name] = (model.decoder, model)
    return out


def bench_inversion(names, batches, reps, device, rows):
    cuda = device.type == "cuda"
    precisions = ("fp32", "tf32", "bf16") if cuda else ("fp32", "bf16")
    modes = (False, True) if cuda else (False,)
    for name, (gen, model) in _models(names, device).items():
        size = model.cfg.encoder.input_shape
        for batch in batches:
            x = (torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(batch)) * 2 - 1).to(device)
            base = None
            for ops in ("ref", "fast"):
                for precision in precisions:
                    for graphed in modes:
                        pipe = InversionPipeline(gen, model, device, ops=ops, cuda_graphs=graphed)
                        n = gen.num_ws

                        def forward():
                            with torch.no_grad():
                                ws = pipe._encoder_forward(x)
                                return ws, pipe._synthesis_forward(ws[:, :n].contiguous())

                        try:
                            with _precision(precision, device):
                                t = _median_seconds(forward, reps)  # the warm-up call records a graphed case's graph
                                ws, img = forward()
                        except torch.cuda.OutOfMemoryError:
                            print(f"{name} batch {batch} {ops} {precision}: out of GPU memory", file=sys.stderr)
                            torch.cuda.empty_cache()
                            continue
                        ws, img = ws.float(), img.float()
                        if base is None:  # the first case: eager fp32 ref
                            base = (ws, img)
                        row = dict(section="inversion", model=name, batch=batch, ops=ops, precision=precision,
                                   mode="graphed" if graphed else "eager", ms_per_image=1000 * t / batch,
                                   images_per_s=batch / t, max_diff_images=float((img - base[1]).abs().max()),
                                   max_diff_codes=float((ws - base[0]).abs().max()),
                                   graph_fallback=pipe._encoder_forward.failure or pipe._synthesis_forward.failure)
                        rows.append(row)
                        print(f"{name:14s} batch {batch:>3} {ops:4s} {precision:4s} {row['mode']:7s} "
                              f"{row['ms_per_image']:9.3f} ms/img {row['images_per_s']:10.1f} img/s  "
                              f"max diff img {row['max_diff_images']:.2e} codes {row['max_diff_codes']:.2e}"
                              + (f"  (graph fell back: {row['graph_fallback']})" if row["graph_fallback"] else ""),
                              flush=True)


def _busy_share(step, steps: int, device: torch.device):
    """(images/s, share of wall time with a CUDA kernel running or None on the CPU) over ``steps``."""
    if device.type != "cuda":
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        return time.perf_counter() - t0, None
    from torch.profiler import ProfilerActivity, profile

    _sync(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        _sync(device)
        wall = time.perf_counter() - t0
    kernel_us = sum(e.device_time_total for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA)
    return wall, min(1.0, kernel_us / 1e6 / wall)


def bench_training(batches, steps, device, rows):
    from style_transformer.data.datasets import ImageFolderDataset
    from style_transformer.data.synthetic import write_dataset
    from style_transformer.losses import LPIPS
    from style_transformer.pretrained import load_default
    from style_transformer.training.encoder import EncoderTrainer, encoder_preset
    from style_transformer.training.gan import GANTrainer, gan_preset

    gan_cfg, enc_cfg = gan_preset("faces-64"), encoder_preset("faces-64")
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(Path(tmp) / "faces", max(256, max(batches)), size=64, seed=0)
        data = ImageFolderDataset(Path(tmp) / "faces", 64, cache=True)
        generator = load_default("encoder_generator")
        lpips = LPIPS.load(enc_cfg.lpips_net)
        for kind, preset_batch in (("train-gan", gan_cfg.batch_size), ("train-encoder", enc_cfg.batch_size)):
            for batch in sorted({preset_batch, *batches}) if device.type == "cuda" else batches:
                out = Path(tmp) / f"{kind}-{batch}"
                if kind == "train-gan":
                    trainer = GANTrainer(dataclasses.replace(gan_cfg, batch_size=batch), data, out, device=device)
                else:
                    trainer = EncoderTrainer(dataclasses.replace(enc_cfg, batch_size=batch), generator, data, None,
                                             out, device=device, lpips=lpips)
                try:
                    for _ in range(2):  # warm-up (and the first lazy-regularisation steps)
                        trainer.train_step()
                    wall, busy = _busy_share(trainer.train_step, steps, device)
                except torch.cuda.OutOfMemoryError:
                    print(f"{kind} batch {batch}: out of GPU memory", file=sys.stderr)
                    torch.cuda.empty_cache()
                    continue
                row = dict(section="training", trainer=kind, batch=batch, preset_batch=batch == preset_batch,
                           images_per_s=steps * batch / wall, gpu_busy=busy)
                rows.append(row)
                print(f"{kind:14s} batch {batch:>4}{' (preset)' if row['preset_batch'] else '         '} "
                      f"{row['images_per_s']:9.1f} img/s  GPU busy "
                      f"{'-' if busy is None else f'{100 * busy:.0f}%'}", flush=True)
                del trainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"))
    p.add_argument("--models", nargs="+", default=["default", "official-256", "official-ffhq"],
                   choices=("default", "official-256", "official-ffhq"))
    p.add_argument("--batches", nargs="+", type=int, help=f"default: {GPU_BATCHES} on CUDA, {CPU_BATCHES} on the CPU")
    p.add_argument("--reps", type=int, help="timed runs per case (median; default 5 on CUDA, 1 on the CPU)")
    p.add_argument("--train-batches", nargs="+", type=int, help="default: 64 256 on CUDA (and the preset's), 4 on the CPU")
    p.add_argument("--train-steps", type=int, help="timed steps per trainer and batch (default 10 on CUDA, 2 on the CPU)")
    p.add_argument("--skip-training", action="store_true")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    cuda = torch.cuda.is_available() and args.device != "cpu"
    if args.device == "cuda" and not cuda:
        sys.exit("error: --device cuda but PyTorch sees no CUDA device")
    device = torch.device("cuda" if cuda else "cpu")
    name = torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} threads"
    print(f"bench_gpu: {name}, PyTorch {torch.__version__}", flush=True)
    rows: list = []
    t0 = time.perf_counter()
    bench_inversion(args.models, args.batches or (GPU_BATCHES if cuda else CPU_BATCHES),
                    args.reps or (5 if cuda else 1), device, rows)
    if not args.skip_training:
        bench_training(args.train_batches or ((64, 256) if cuda else (4,)), args.train_steps or (10 if cuda else 2),
                       device, rows)
    print(f"bench_gpu: {len(rows)} cases in {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": name, "torch": torch.__version__, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
