"""Speed benchmark: fast ops vs the reference path (official-style ops and grouped modulated conv).

Prints images/s for
  * inversion, official-256 preset (IR-SE50 encoder, 256 in, StyleGAN2 256 out), batch 1 and 8, CPU;
  * one GAN training step at 64x64, batch 16 (G and D forward and backward, non-saturating loss),
  * StyleGAN3-T synthesis at 64x64, batch 8 (filtered_lrelu fast vs reference path),
each for both paths measured in the same run, their ratio, the largest output difference, and the
achieved GFLOP/s (FLOPs counted with torch.utils.flop_counter).

    python benchmarks/bench_speed.py [--reps 3] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from style_transformer import Discriminator, Generator, GeneratorConfig, StyleTransformer, model_preset, set_ops_impl


def _time(fn, reps: int) -> float:
    """Median wall time of ``fn`` over ``reps`` runs after one warm-up; waits for queued CUDA work."""
    sync = torch.cuda.synchronize if torch.cuda.is_initialized() else (lambda: None)
    fn()  # warm-up (allocator, oneDNN primitive cache, cuDNN algorithm choice)
    sync()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _flops(fn) -> float:
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def bench_matmul(reps: int) -> float:
    """The machine's float32 matmul rate, the ceiling that the convolutions approach."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    t = _time(lambda: a @ b, reps)
    rate = 2 * 2048 ** 3 / t / 1e9
    print(f"float32 matmul 2048^3: {rate:.0f} GFLOP/s")
    return rate


def bench_inversion(reps: int) -> None:
    torch.manual_seed(0)
    model = StyleTransformer(model_preset("official-256")).eval().requires_grad_(False)
    print("inversion: official-256 (IR-SE50, 256 -> 256), CPU, float32")
    print(f"{'batch':>5} {'fast img/s':>11} {'ref img/s':>10} {'speed-up':>9} {'max|diff|':>10} {'GFLOP/s fast':>13}")
    for batch in (1, 8):
        x = torch.rand(batch, 3, 256, 256) * 2 - 1
        results = {}
        for impl in ("ref", "fast"):
            set_ops_impl(model, impl)

            def run():
                with torch.no_grad():
                    return model(x)[0]

            results[impl] = (_time(run, reps), run())
        flops = _flops(lambda: model(x))
        t_fast, out_fast = results["fast"]
        t_ref, out_ref = results["ref"]
        diff = (out_fast - out_ref).abs().max().item()
        print(f"{batch:>5} {batch / t_fast:>11.2f} {batch / t_ref:>10.2f} {t_ref / t_fast:>8.2f}x "
              f"{diff:>10.1e} {flops / t_fast / 1e9:>13.0f}")


def bench_train_step(reps: int) -> None:
    torch.manual_seed(0)
    cfg = GeneratorConfig(size=64, style_dim=512, n_mlp=8, channel_multiplier=1)
    g, d = Generator(cfg), Discriminator(cfg)
    real = torch.rand(16, 3, 64, 64) * 2 - 1
    z = torch.randn(16, cfg.style_dim)

    def step():
        # D step: non-saturating logistic loss on real and (detached) fake
        fake, _ = g([z], randomize_noise=True)
        d_loss = F.softplus(d(fake.detach())).mean() + F.softplus(-d(real)).mean()
        d_loss.backward()
        # G step
        fake, _ = g([z], randomize_noise=True)
        g_loss = F.softplus(-d(fake)).mean()
        g_loss.backward()
        return fake.detach()

    print(f"\nGAN training step: 64x64 ({cfg.channel(4)}-ch, style_dim {cfg.style_dim}), batch 16, "
          "G and D forward + backward, CPU")
    res = {}
    for impl in ("ref", "fast"):
        set_ops_impl(g, impl)
        set_ops_impl(d, impl)
        res[impl] = _time(step, reps)
    # equal outputs: same weights and stored noise, forward only
    ws = g.mapping(z)[:, None].repeat(1, g.num_ws, 1).detach()
    with torch.no_grad():
        a = set_ops_impl(g, "fast").synthesis(ws)
        b = set_ops_impl(g, "ref").synthesis(ws)
    set_ops_impl(g, "fast")
    set_ops_impl(d, "fast")
    flops = _flops(step)
    print(f"fast {16 / res['fast']:.2f} img/s, ref {16 / res['ref']:.2f} img/s, speed-up "
          f"{res['ref'] / res['fast']:.2f}x, max|diff| {(a - b).abs().max().item():.1e}, "
          f"{flops / res['fast'] / 1e9:.0f} GFLOP/s")


def bench_stylegan3(reps: int) -> None:
    from style_transformer.models.stylegan3 import new_stylegan3

    g = new_stylegan3(64, style_dim=256, channel_base=8192, channel_max=128).eval().requires_grad_(False)
    ws = g.mapping(torch.randn(8, g.z_dim))[:, None].repeat(1, g.num_ws, 1)
    print(f"\nStyleGAN3-T synthesis: 64x64 ({g.cfg.input_channels}-ch, {len(g.cfg.layers)} layers, w 256), batch 8, "
          "CPU (filtered_lrelu and modulated conv: fast vs reference path)")
    res = {}
    for impl in ("ref", "fast"):
        set_ops_impl(g, impl)
        with torch.no_grad():
            # the reference path takes about a minute per batch: one timed run after the warm-up
            res[impl] = (_time(lambda: g.synthesis(ws), max(1, reps // 3)), g.synthesis(ws))
    diff = (res["fast"][1] - res["ref"][1]).abs().max().item()
    print(f"fast {8 / res['fast'][0]:.2f} img/s, ref {8 / res['ref'][0]:.2f} img/s, speed-up "
          f"{res['ref'][0] / res['fast'][0]:.2f}x, max|diff| {diff:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    ap.add_argument("--only", choices=("inversion", "train", "stylegan3"), default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_matmul(max(args.reps, 5))
    if args.only in (None, "inversion"):
        bench_inversion(args.reps)
    if args.only in (None, "train"):
        bench_train_step(args.reps)
    if args.only in (None, "stylegan3"):
        bench_stylegan3(args.reps)


if __name__ == "__main__":
    main()
