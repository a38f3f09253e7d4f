"""Training datasets: image folders with optional attribute labels and a deterministic split."""

from __future__ import annotations

import csv
import logging
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch

from .. import errors
from PIL import Image

from .images import ImageLoadError, InputError, list_image_files, load_image, resize_uint8, uint8_to_input
from ..utils import PathLike

log = logging.getLogger(__name__)


class LabelError(errors.InputError, ValueError):
    """A label file is unreadable or does not match the images."""


def load_labels(path: PathLike) -> Tuple[List[str], Dict[str, np.ndarray]]:
    """Reads attribute labels.

    Two formats: CelebA's ``list_attr_celeba.txt`` (a count line, a line of attribute names, then
    ``file v1 v2 ...`` with values -1/1, mapped to 0/1), or a CSV ``file,attr1,attr2,...`` with a header.

    Returns:
        (attribute names, {file name: float32 values}).
    """
    path = Path(path)
    if not path.is_file():
        raise LabelError(f"{path}: label file not found")
    try:
        text = path.read_bytes().decode("utf-8-sig").strip().splitlines()
    except UnicodeDecodeError as e:
        raise LabelError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise LabelError(f"{path}: cannot read ({e.strerror or e})") from None
    if not text:
        raise LabelError(f"{path}: empty label file")
    table: Dict[str, np.ndarray] = {}
    if path.suffix.lower() == ".csv" or "," in text[0]:
        rows = list(csv.reader(text))
        names = [c.strip() for c in rows[0][1:]]
        body = rows[1:]
        mapping = None
    else:
        if len(text) < 2:
            raise LabelError(f"{path}: a CelebA attribute list needs a count line and a line of names")
        names = text[1].split()
        body = [line.split() for line in text[2:]]
        mapping = {"-1": 0.0, "1": 1.0, "0": 0.0}
    for lineno, row in enumerate(body, start=2):
        if not row:
            continue
        if len(row) != len(names) + 1:
            raise LabelError(f"{path}: line {lineno + 1} has {len(row) - 1} values, expected {len(names)}")
        try:
            vals = [mapping[v] if mapping is not None else float(v) for v in row[1:]]
        except (KeyError, ValueError):
            raise LabelError(f"{path}: line {lineno + 1} has a value that is not a number") from None
        table[row[0].strip()] = np.asarray(vals, dtype=np.float32)
    return names, table


def binary_columns(path: PathLike) -> List[str]:
    """Names of the label columns whose values are all 0 or 1."""
    names, table = load_labels(path)
    if not table:
        return []
    values = np.stack(list(table.values()))
    return [n for j, n in enumerate(names) if np.isin(values[:, j], (0.0, 1.0)).all()]


def item_image(item) -> torch.Tensor:
    """The image of a dataset item (``ImageFolderDataset`` yields an image, or ``(image, labels)``)."""
    return item[0] if isinstance(item, (tuple, list)) else item


def split_of(name: str, val_fraction: float) -> str:
    """``"val"`` or ``"train"`` from a stable hash of the relative file name (adding files never
    moves existing ones between splits)."""
    return "val" if (zlib.crc32(name.encode()) % 100_000) < val_fraction * 100_000 else "train"


class ImageFolderDataset(torch.utils.data.Dataset):
    """Images under ``root`` (recursive), as ``[3, size, size]`` tensors in [-1, 1].

    Unreadable files are skipped with a warning and counted in ``skipped``. With ``labels``, items
    are ``(img, labels)`` and images without a label row are skipped too.

    Args:
        root: folder of images (png, jpg, webp, bmp).
        size: output side (bilinear resize, as the inference path).
        labels: optional CelebA attribute file or CSV.
        split: ``"all"``, ``"train"`` or ``"val"``.
        val_fraction: share of files in ``"val"``.
        columns: keep only these label columns, in this order (default: all).
        cache: decode every image once at start and keep them in memory as uint8 (``N * 3 * size^2``
            bytes; 50k images at 64x64 take 0.6 GB) so training steps never touch the disk.
    """

    def __init__(self, root: PathLike, size: int, labels: Optional[PathLike] = None, split: str = "all",
                 val_fraction: float = 0.05, cache: bool = False, progress: bool = False,
                 columns: Optional[List[str]] = None):
        if split not in ("all", "train", "val"):
            raise ValueError(f"split must be all, train or val, got {split!r}")
        root = Path(root)
        if not root.is_dir():
            raise InputError(f"{root}: no such folder")
        self.root, self.size = root, size
        files = list_image_files(root)
        self.skipped = 0
        self.attribute_names: List[str] = []
        table: Dict[str, np.ndarray] = {}
        if labels is not None:
            self.attribute_names, table = load_labels(labels)
            if columns is not None:
                missing = [c for c in columns if c not in self.attribute_names]
                if missing:
                    raise LabelError(f"{labels}: no column {', '.join(missing)} (has {', '.join(self.attribute_names)})")
                pick = [self.attribute_names.index(c) for c in columns]
                table = {k: v[pick] for k, v in table.items()}
                self.attribute_names = list(columns)
        kept: List[Path] = []
        for f in files:
            rel = f.relative_to(root).as_posix()
            if split != "all" and split_of(rel, val_fraction) != split:
                continue
            if labels is not None and rel not in table and f.name not in table:
                self.skipped += 1
                log.warning("skipping %s: no label row", f)
                continue
            try:
                with Image.open(f) as im:
                    im.verify()
            except Exception as e:  # PIL raises many types for corrupt files
                self.skipped += 1
                log.warning("skipping %s: not a readable image (%s)", f, str(e)[:80] or type(e).__name__)
                continue
            kept.append(f)
        if not kept:
            raise InputError(f"{root}: no usable images for split {split!r}")
        self.files = kept
        self._labels = ([table.get(f.relative_to(root).as_posix(), table.get(f.name)) for f in kept]
                        if labels is not None else None)
        self._cache: Optional[torch.Tensor] = None
        if cache:
            self._cache = self._decode_all(progress)

    def _decode_all(self, progress: bool) -> torch.Tensor:
        from tqdm import tqdm

        data = torch.empty(len(self.files), 3, self.size, self.size, dtype=torch.uint8)
        good: List[int] = []
        for i, f in enumerate(tqdm(self.files, desc="caching images", unit="img", disable=not progress)):
            try:
                data[len(good)] = resize_uint8(load_image(f), self.size)
            except ImageLoadError as e:  # the header scan passed but the data is broken
                self.skipped += 1
                log.warning("skipping %s", e)
                continue
            good.append(i)
        if not good:
            raise InputError(f"{self.root}: no usable images")
        self.files = [self.files[i] for i in good]
        if self._labels is not None:
            self._labels = [self._labels[i] for i in good]
        return data[:len(good)].clone() if len(good) < len(data) else data

    def _load(self, i: int) -> torch.Tensor:
        try:
            return resize_uint8(load_image(self.files[i]), self.size)
        except ImageLoadError as e:  # broke after the scan (e.g. truncated data past the header)
            raise InputError(str(e)) from None

    def __len__(self) -> int:
        return len(self.files)

    def label_table(self) -> Optional[torch.Tensor]:
        """Every item's labels ``[N, len(attribute_names)]`` (item order), or None without labels."""
        if self._labels is None:
            return None
        return torch.from_numpy(np.stack(self._labels)) if self._labels else torch.zeros(0, len(self.attribute_names))

    def __getitem__(self, i: int):
        img = uint8_to_input(self._cache[i] if self._cache is not None else self._load(i))
        if self._labels is None:
            return img
        return img, torch.from_numpy(self._labels[i])
