"""Training commands: ``train-gan``, ``train-encoder``, ``train-classifier``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List

from ..errors import UsageError
from .common import _add_device_arg, _int_list, _positive_int


def _parser_train_gan(sub) -> None:
    tg = sub.add_parser("train-gan", help="train a StyleGAN2 on an image folder",
                        epilog="examples:\n  style-transformer train-gan --data faces/ --out runs/gan --kimg 500\n"
                               "  style-transformer train-gan --data faces/ --out runs/gan --kimg 800 --resume\n"
                               "  style-transformer train-gan --distill-renderer --out runs/distill --kimg 300 \\\n"
                               "      --init-generator src/style_transformer/weights/faces64_generator.safetensors",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    tg.add_argument("--data", help="folder of training images (not with --distill-renderer)")
    tg.add_argument("--out", required=True, help="run folder: checkpoint.pt, config.json, log.jsonl")
    tg.add_argument("--size", type=_positive_int, default=64, help="image size (must match the preset)")
    from ..training.gan import GAN_PRESETS

    tg.add_argument("--preset", default="faces-64", metavar="NAME",
                    help=f"architecture and hyper-parameters: {', '.join(GAN_PRESETS)} (default: faces-64)")
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
    tg.add_argument("--distill-renderer", action="store_true",
                    help="no image folder: learn the procedural face renderer itself, a generator conditioned on "
                         "its binary attributes (drawn at its rates) whose continuous factors come from z, "
                         "regressed onto renders made on the fly (see docs/training.md)")
    from ..training.distill import DISTILL_LOSSES

    tg.add_argument("--loss", choices=DISTILL_LOSSES,
                    help="--distill-renderer's regression loss: l1 (full + half scale) or pyramid "
                         "(Laplacian-pyramid L1, fine levels weighted; the default)")
    tg.add_argument("--adv-weight", type=float, metavar="W",
                    help="--distill-renderer: weight of a conditional adversarial term trained together with "
                         "the regression (0, the default: none; pix2pix's ratio is 0.01)")
    tg.add_argument("--ema-rampup", type=float, metavar="R",
                    help="EMA half-life at most R x the images seen (0: the full half-life from the start, "
                         "e.g. when the EMA starts from --init-generator)")


def _parser_train_encoder(sub) -> None:
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
    from ..training.encoder import ENCODER_PRESETS

    te.add_argument("--preset", default="faces-64", metavar="NAME",
                    help=f"architecture and hyper-parameters: {', '.join(ENCODER_PRESETS)} (default: faces-64)")
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
    _add_device_arg(te)
    te.add_argument("--cache", choices=("auto", "on", "off"), default="auto",
                    help="decode the images once into memory (auto: when they fit in 4 GB)")


def _parser_train_classifier(sub) -> None:
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


def _gan_labels_path(args: argparse.Namespace) -> Path:
    path = Path(args.labels) if args.labels else Path(args.data) / "attributes.csv"
    if not path.is_file():
        raise UsageError(f"{path}: no label file (a conditional GAN needs --labels, or DATA/attributes.csv)")
    return path


def _gan_label_columns(args: argparse.Namespace) -> List[str]:
    from ..data.datasets import LabelError, binary_columns

    path = _gan_labels_path(args)
    try:
        columns = binary_columns(path)
    except LabelError as e:
        raise UsageError(str(e)) from None
    if not columns:
        raise UsageError(f"{path}: no 0/1 label column to condition on")
    return columns


def _resuming_distillation(args: argparse.Namespace) -> bool:
    """Whether ``--resume`` continues a ``--distill-renderer`` run (its config.json says so)."""
    import json

    from ..training.distill import is_distill_config

    if not args.resume:
        return False
    try:
        data = json.loads((Path(args.out) / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and is_distill_config(data)


def _start_and_fit(trainer, args: argparse.Namespace) -> Path:
    """A GAN or distillation trainer: ``--resume`` loads its checkpoint, ``--init-generator`` warm-starts
    G; then it trains. Returns the final checkpoint."""
    if args.resume:
        if args.init_generator:
            raise UsageError("--init-generator starts a new run; it cannot be combined with --resume")
        trainer.load()
    elif args.init_generator:
        from ..checkpoints import load_model

        trainer.init_generator(load_model(args.init_generator, kind="generator"))
    return trainer.fit(progress=True)


def _cmd_train_gan(args: argparse.Namespace) -> int:
    import dataclasses

    if args.distill_renderer or _resuming_distillation(args):
        return _cmd_distill(args)
    if args.data is None:
        raise UsageError("train-gan needs --data (a folder of training images), or --distill-renderer")
    if args.loss is not None or args.adv_weight is not None:
        raise UsageError("--loss and --adv-weight belong to --distill-renderer")

    from ..data.datasets import ImageFolderDataset
    from ..config import ConfigError
    from ..training.common import run_config, training_device, use_cache
    from ..training.gan import GANTrainConfig, GANTrainer, conditional_generator, gan_preset

    out = Path(args.out)
    cfg = run_config(out, args.resume, GANTrainConfig, lambda: gan_preset(args.preset))
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
    device = training_device(args.device)
    if args.snapshot_kimg is not None:
        cfg = dataclasses.replace(cfg, snapshot_kimg=args.snapshot_kimg)
    cache = use_cache(args.cache, args.data, cfg.generator.size)
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
        logging.getLogger("style_transformer").warning("%d unreadable files skipped", dataset.skipped)
    trainer = GANTrainer(cfg, dataset, out, device=device)
    path = _start_and_fit(trainer, args)
    print(f"trained to {cfg.kimg} kimg: {path}")
    return 0


def _cmd_distill(args: argparse.Namespace) -> int:
    """``train-gan --distill-renderer``: the generator learns the renderer (no image folder)."""
    import dataclasses

    from ..config import ConfigError
    from ..training.common import run_config, training_device
    from ..training.distill import DistillConfig, DistillTrainer, distill_preset

    if args.data is not None:
        raise UsageError("--distill-renderer renders its own training images: drop --data")
    if args.conditional or args.labels:
        raise UsageError("--distill-renderer is conditional on the renderer's labels already: drop "
                         "--conditional/--labels")
    if args.d_warmup_kimg is not None:
        raise UsageError("--d-warmup-kimg is for adversarial training alone; --distill-renderer trains its "
                         "discriminator (--adv-weight) together with the regression from the start")
    out = Path(args.out)
    try:
        cfg = run_config(out, args.resume, DistillConfig, lambda: distill_preset(args.preset))
        if not args.resume and cfg.generator.size != args.size:
            raise UsageError(f"preset {args.preset!r} is for size {cfg.generator.size}, not {args.size}")
        if args.resume and args.d_channels is not None:
            raise UsageError("--d-channels cannot change on --resume (the discriminator's weights are saved)")
        overrides = {k: v for k, v in (("kimg", args.kimg), ("batch_size", args.batch_size),
                                       ("snapshot_kimg", args.snapshot_kimg), ("ema_rampup", args.ema_rampup),
                                       ("amp", args.amp), ("loss", args.loss), ("adv_weight", args.adv_weight))
                     if v is not None}
        if args.d_channels is not None:
            overrides["d_channels"] = _int_list(args.d_channels, "--d-channels")
        cfg = dataclasses.replace(cfg, **overrides)
    except ConfigError as e:
        raise UsageError(str(e)) from None
    # a TrainingError (non-finite loss, unusable checkpoint) ends as one line and exit 1 in cli.main
    path = _start_and_fit(DistillTrainer(cfg, out, device=training_device(args.device)), args)
    print(f"trained to {cfg.kimg} kimg: {path}")
    return 0


def _cmd_train_encoder(args: argparse.Namespace) -> int:
    import dataclasses

    from ..checkpoints import load_model
    from ..data.datasets import ImageFolderDataset
    from ..data.images import InputError
    from ..losses import IDLoss, LPIPS
    from ..config import ConfigError
    from ..training.common import run_config, training_device, use_cache
    from ..training.encoder import EncoderTrainConfig, EncoderTrainer, encoder_preset

    out = Path(args.out)
    cfg = run_config(out, args.resume, EncoderTrainConfig, lambda: encoder_preset(args.preset))
    overrides = {k: v for k, v in (("steps", args.steps), ("batch_size", args.batch_size), ("lr", args.lr),
                                   ("val_every", args.val_every), ("val_images", args.val_images),
                                   ("id_lambda", args.id_lambda), ("lpips_net", args.lpips),
                                   ("seed", None if args.resume else args.seed)) if v is not None}
    cfg = dataclasses.replace(cfg, **overrides)
    from ..pretrained import resolve_models

    generator_path = resolve_models(generator=args.generator, encoder=False).generator
    generator = load_model(generator_path, kind="generator")
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
    device = training_device(args.device)
    size = cfg.encoder.input_size
    cache = use_cache(args.cache, args.data, size)
    train = ImageFolderDataset(args.data, size, split="train", cache=cache, progress=cache)
    try:
        val = ImageFolderDataset(args.data, size, split="val", cache=cache)
    except InputError:  # too few images for a validation split
        val = None
    if val is None or len(val) == 0:
        logging.getLogger("style_transformer").warning("no validation images (split 'val' is empty): "
                                                       "best.safetensors is not kept")
        val = None
    trainer = EncoderTrainer(cfg, generator, train, val, out, device=device, lpips=lpips, id_loss=id_loss)
    if args.resume:
        trainer.load()
    print(f"train-encoder: {len(train)} training / {len(val) if val else 0} validation images, "
          f"LPIPS {lpips.net} ({lpips.source}), identity loss "
          f"{'ArcFace ' + str(args.id_weights) if id_loss else 'off'}", file=sys.stderr)
    path = trainer.fit(progress=True)
    print(f"trained {cfg.steps} steps: {path}" + (f" (best validation loss {trainer.best:.4f})" if val else ""))
    return 0


def _cmd_train_classifier(args: argparse.Namespace) -> int:

    from ..checkpoints import save_model
    from ..config import AttributeClassifierConfig
    from ..data.datasets import ImageFolderDataset, LabelError, binary_columns
    from ..data.images import InputError
    from ..training.classifier import ClassifierTrainConfig, train_classifier

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


# command -> (parser builder, handler)
COMMANDS = {
    "train-gan": (_parser_train_gan, _cmd_train_gan),
    "train-encoder": (_parser_train_encoder, _cmd_train_encoder),
    "train-classifier": (_parser_train_classifier, _cmd_train_classifier),
}
