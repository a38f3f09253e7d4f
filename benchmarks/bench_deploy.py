"""Inversion speed on each runtime, side by side in one run: torch fp32 against the exported ONNX graphs
on ONNX Runtime and OpenVINO (fp32) and both with their int8 encoders (calibrated on 300 renders
of the training seed), for the shipped default model (batch 1 and 32) and the official-256 layout
(IR-SE50 encoder, 256 in, StyleGAN2 256 out; random weights, batch 1 and 8; its int8 encoders are
calibrated on 32 renders: timed, not judged).

Inversion here = encoder + synthesis on a prepared [-1, 1] batch (the graphs' own work; decoding and
resizing are the same for every runtime). Prints images/s (median of ``--reps`` timed runs after a
warm-up), each runtime's speed relative to torch, and the largest difference of its W+ and images from
torch's.

    python benchmarks/bench_deploy.py [--reps 5] [--threads N] [--skip-official]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench_speed import _time as _median_time  # median of timed runs after a warm-up
from style_transformer import load_model
from style_transformer.config import model_preset
from style_transformer.data.synthetic import render_dataset_batch
from style_transformer.deploy import ExportedModel, export_model
from style_transformer.deploy.quantize import quantize_encoder
from style_transformer.models import StyleTransformer
from style_transformer.pretrained import TRAIN_SEED, default_path

VARIANTS = (("onnxruntime", "fp32"), ("openvino", "fp32"), ("onnxruntime", "int8"), ("openvino", "int8"))


def bench(name: str, model, batches, reps: int, folder: Path, calibration: int = 300) -> None:
    export_model(model, folder)
    g = model.decoder
    h, w = model.cfg.encoder.input_shape
    faces = render_dataset_batch(TRAIN_SEED, range(calibration), h).images
    quantize_encoder(folder, faces.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1)
    graphs = {(rt, p): ExportedModel(folder, rt, p) for rt, p in VARIANTS}

    def torch_run(x):
        with torch.no_grad():
            ws = model.encode(x)
            return ws, g.synthesis(ws[:, : g.num_ws], randomize_noise=False)

    def graph_run(rt, x):
        ws = graphs[rt].encode(x)
        return ws, graphs[rt].synthesize(ws[:, : g.num_ws])

    print(f"\n{name}: {h}x{w} in, {g.size} px out, threads {torch.get_num_threads()}")
    print(f"{'batch':>5} {'runtime':>17} {'img/s':>8} {'x torch':>8} {'max|dW+|':>9} {'max|dimg|':>10}")
    for batch in batches:
        x = torch.rand(batch, 3, h, w, generator=torch.Generator().manual_seed(batch)) * 2 - 1
        ws_ref, img_ref = torch_run(x)
        t_ref = _median_time(lambda: torch_run(x), reps)
        print(f"{batch:>5} {'torch fp32':>17} {batch / t_ref:8.1f} {1.0:8.2f} {'':>9} {'':>10}")
        for rt in VARIANTS:
            ws, img = graph_run(rt, x)
            t = _median_time(lambda: graph_run(rt, x), reps)
            print(f"{batch:>5} {' '.join(rt):>17} {batch / t:8.1f} {t_ref / t:8.2f} {(ws - ws_ref).abs().max().item():9.1e} "
                  f"{(img - img_ref).abs().max().item():10.1e}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="threads of every runtime (0: PyTorch's default)")
    p.add_argument("--skip-official", action="store_true", help="only the shipped default model")
    p.add_argument("--skip-default", action="store_true", help="only the official-256 layout")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # the graph runtimes take the same count
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_default:
            model = load_model(default_path("style_transformer")).eval().requires_grad_(False)
            bench("shipped default (faces-64)", model, (1, 32), args.reps, Path(tmp) / "default")
        if not args.skip_official:
            torch.manual_seed(0)
            model = StyleTransformer(model_preset("official-256")).eval().requires_grad_(False)
            with torch.no_grad():
                model.decoder.latent_avg.copy_(model.decoder.mean_latent(256))
            # random weights: the int8 graphs are timed, not judged, so a short calibration does
            bench("official-256 layout (random weights)", model, (1, 8), args.reps, Path(tmp) / "official",
                  calibration=32)


if __name__ == "__main__":
    main()
