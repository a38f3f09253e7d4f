"""Speed of the shipped default model (64x64 faces): inversion images/s at batch 1 and 32.

Inversion = preprocessing of uint8 images + encoder + generator synthesis, through the public API
(``InversionPipeline.invert``), no gradients. Prints the median of ``--reps`` timed runs after a
warm-up, per batch size, the encoder-only and generator-only shares at batch 32, and an edit at
batch 32 (``InversionPipeline.edit``: encode, edit, render once) against the same edit through
``invert`` (which renders the reconstructions too).

    python benchmarks/bench_default.py [--reps 5] [--threads N] [--device cpu|cuda] [--checkpoint CKPT --generator G]
"""

from __future__ import annotations

import argparse

import torch

from bench_speed import _time as _median_time  # median of timed runs after a warm-up
from style_transformer import load_pipeline
from style_transformer.demo import held_out_faces


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: PyTorch's default)")
    p.add_argument("--checkpoint")
    p.add_argument("--generator")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="cpu (the README's figures) or cuda; CUDA timings wait for the GPU to finish")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    pipe = load_pipeline(checkpoint=args.checkpoint, generator=args.generator, device=args.device)
    faces, _ = held_out_faces(32, pipe.input_size)
    print(f"device {pipe.device}, threads {torch.get_num_threads()}, encoder params "
          f"{sum(p.numel() for p in pipe.model.encoder.parameters()) / 1e6:.2f} M, generator synthesis params "
          f"{sum(p.numel() for n, p in pipe.generator.named_parameters() if not n.startswith('style.')) / 1e6:.2f} M")
    for batch in (1, 32):
        imgs = list(faces[:batch])
        t = _median_time(lambda: pipe.invert(imgs, batch_size=batch), args.reps)
        print(f"invert batch {batch:>2}: {batch / t:8.1f} images/s ({1000 * t / batch:.2f} ms/image)")
    x = (torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1).to(pipe.device)
    with torch.no_grad():
        t_enc = _median_time(lambda: pipe.model.encode(x), args.reps)
        ws = pipe.model.encode(x)
        t_gen = _median_time(lambda: pipe.generator.synthesis(ws[:, :pipe.generator.num_ws]), args.reps)
    print(f"batch 32 parts: encoder {32 / t_enc:.1f} images/s, generator {32 / t_gen:.1f} images/s")
    if args.checkpoint is None:  # an edit with the shipped editing models: encode, edit, render once
        imgs = list(faces)
        t_edit = _median_time(lambda: pipe.edit(imgs, "Smiling", strength=3.0, batch_size=32), args.reps)

        def render_twice():  # what an edit cost when it went through invert (reconstructions rendered too)
            res = pipe.invert(imgs, batch_size=32)
            return pipe.generate(pipe.edit_ws(res.ws, "Smiling", strength=3.0), batch_size=32)

        t_twice = _median_time(render_twice, args.reps)
        print(f"edit batch 32: {32 / t_edit:.1f} images/s; through invert (two generator passes) "
              f"{32 / t_twice:.1f} images/s; speed-up {t_twice / t_edit:.2f}x")


if __name__ == "__main__":
    main()
