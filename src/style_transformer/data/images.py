"""The one image-loading path: discovery, decoding to RGB, preprocessing, and saving.

Preprocessing follows the official pipeline: PIL RGB, bilinear resize to the encoder's input size,
``ToTensor`` (/255), ``Normalize(0.5, 0.5)`` -> [-1, 1]. Saving follows it too:
``uint8(clamp((img + 1) / 2, 0, 1) * 255)`` (truncation, as the official ``tensor2im``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Iterable, List, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image, ImageOps
from .. import errors
from ..utils import PathLike, atomic_path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


class InputError(errors.InputError):
    """A path given by the user does not exist or holds no images."""


class ImageLoadError(errors.InputError):
    """One file could not be decoded as an image."""


def list_image_files(folder: PathLike) -> List[Path]:
    """Image files (by extension) under ``folder``, recursively, sorted."""
    return sorted(f for f in Path(folder).rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)


def collect_images(inputs: Iterable[PathLike]) -> List[Path]:
    """Expands files and folders (recursively, image extensions only) into a file list.

    Args:
        inputs: image files and/or folders, in the order given.

    Returns:
        Files in input order; each folder's files sorted.

    Raises:
        InputError: a path does not exist, or the inputs contain no files at all.
    """
    files: List[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            files.extend(list_image_files(p))
        elif p.is_file():
            files.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    if not files:
        raise InputError("no image files found in " + ", ".join(str(i) for i in inputs))
    return files


def load_image(path: PathLike) -> Image.Image:
    """Decodes an image file to 8-bit RGB (EXIF orientation applied; gray, RGBA, palette, 16-bit).

    Raises:
        ImageLoadError: the file is unreadable or not an image.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as im:
                im.load()
                im = ImageOps.exif_transpose(im)
                return to_rgb(im)
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as e:
        raise ImageLoadError(f"{path}: not a readable image ({str(e)[:120] or type(e).__name__})") from None


def to_rgb(im: Image.Image) -> Image.Image:
    """Converts any PIL mode to RGB; 16/32-bit integer images are scaled to 8 bit."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im).astype(np.float64)
        scale = 65535.0 if im.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / scale * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        # composite on white, rather than exposing whatever RGB hides under alpha 0
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    return im.convert("RGB")


ImageLike = Union[Image.Image, np.ndarray, torch.Tensor, PathLike]


def _hw(size: Union[int, Tuple[int, int]]) -> Tuple[int, int]:
    """(height, width) from a side or an (h, w) pair."""
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def preprocess(images: Sequence[ImageLike], size: Union[int, Tuple[int, int]]) -> torch.Tensor:
    """Turns images into the encoder's input.

    Args:
        images: PIL images, paths, uint8 HxWx3 arrays (or float in [0, 1]), or tensors
            ``[3, H, W]``/``[N, 3, H, W]`` already in [-1, 1].
        size: encoder input side, or (height, width) of a non-square input (resized without keeping
            the aspect, as the official code's ``Resize((h, w))``).

    Returns:
        img ``[N, 3, h, w]`` float32 in [-1, 1].
    """
    h, w = _hw(size)
    out: List[torch.Tensor] = []
    for item in images:
        if isinstance(item, torch.Tensor):
            t = item.detach().float()
            t = t.unsqueeze(0) if t.ndim == 3 else t
            if t.ndim != 4 or t.shape[1] != 3:
                raise ValueError(f"image tensors must be [3, H, W] or [N, 3, H, W], got {tuple(item.shape)}")
            if not torch.isfinite(t).all():
                raise ValueError("image tensor contains NaN or Inf")
            if t.shape[-2:] != (h, w):
                t = torch.nn.functional.interpolate(t, size=(h, w), mode="bilinear", align_corners=False,
                                                    antialias=True)
            out.extend(t.cpu())
            continue
        if isinstance(item, np.ndarray):
            arr = item
            if arr.dtype != np.uint8:
                if not np.isfinite(arr).all():
                    raise ValueError("image array contains NaN or Inf")
                arr = (np.clip(arr, 0, 1) * 255 + 0.5).astype(np.uint8)
            if arr.ndim == 3 and arr.shape[-1] == 1:
                arr = arr[..., 0]  # HxWx1: gray
            if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (3, 4))):
                raise ValueError(f"image arrays must be HxW, HxWx1, HxWx3 or HxWx4, got {arr.shape}")
            im = to_rgb(Image.fromarray(arr))  # RGBA: composited on white, as files are
        elif isinstance(item, Image.Image):
            im = to_rgb(item)
        else:
            im = load_image(item)
        out.append(uint8_to_input(resize_uint8(im, (h, w))))
    return torch.stack(out) if out else torch.empty(0, 3, h, w)


def resize_uint8(im: Image.Image, size: Union[int, Tuple[int, int]]) -> torch.Tensor:
    """RGB PIL image -> uint8 ``[3, h, w]`` (PIL bilinear, the official resize; ``size`` is a side or
    (h, w))."""
    h, w = _hw(size)
    im = im.resize((w, h), Image.BILINEAR)
    return torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1)


def pool_to_size(img: torch.Tensor, size: Union[int, Tuple[int, int]]) -> torch.Tensor:
    """img ``[N, 3, H, H]`` -> ``[N, 3, h, w]`` (``size`` is a side or (h, w)): pSp's face pool (area
    averaging) when the side divides ``H``, else antialiased bilinear. Used to compare generator
    outputs with encoder inputs."""
    h, w = _hw(size)
    if tuple(img.shape[-2:]) == (h, w):
        return img
    if h == w and img.shape[-1] % w == 0 and img.shape[-2] % h == 0:
        return torch.nn.functional.adaptive_avg_pool2d(img, (h, w))
    return torch.nn.functional.interpolate(img, size=(h, w), mode="bilinear", align_corners=False, antialias=True)


def uint8_to_input(t: torch.Tensor) -> torch.Tensor:
    """uint8 ``[..., 3, H, W]`` -> float32 in [-1, 1] (the same arithmetic as ``preprocess``)."""
    return (t.float() / 255.0 - 0.5) / 0.5


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """img ``[N, 3, H, W]`` in [-1, 1] -> uint8 ``[N, H, W, 3]`` (the official truncating rule)."""
    x = ((img.detach().float().cpu() + 1) / 2).clamp(0, 1) * 255
    return x.permute(0, 2, 3, 1).numpy().astype(np.uint8)


def as_written(img: torch.Tensor) -> torch.Tensor:
    """img ``[N, 3, H, W]`` in [-1, 1] -> the same images as ``save_image`` stores them (8-bit), read back
    in [-1, 1]: metrics judge what a user gets."""
    return uint8_to_input(torch.from_numpy(to_uint8(img)).permute(0, 3, 1, 2))


def save_image(img: torch.Tensor, path: PathLike) -> None:
    """Writes one image ``[3, H, W]`` in [-1, 1] as PNG, atomically (temp file + rename)."""
    with atomic_path(path) as tmp:
        Image.fromarray(to_uint8(img.unsqueeze(0))[0]).save(tmp, format="PNG")
