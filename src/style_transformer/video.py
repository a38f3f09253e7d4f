"""Invert and edit a video, frame by frame but steady over time.

One streamed pass over the clip (``data.video``: PyAV decodes, encodes and copies the audio), in
stages that each hold only a batch or a short window of frames, so memory stays flat however long
the clip is:

1. crop: without alignment the whole frame is the face (resized to the encoder's input); with it,
   dlib's landmarks give each frame's FFHQ crop square, and the square's corners are smoothed over
   time (a centred Gaussian of ``smooth_crop`` frames) so the crop does not shake. A frame where no
   face is found is written as it is (its code row is marked ``face = False``).
2. invert a batch of crops, and edit the codes with the same edit and strength on every frame
   (reference edits: one reference image for the whole clip).
3. smooth the (edited) W+ codes over time: a centred Gaussian of ``smooth`` frames (0 turns it off),
   with the weights renormalised at the clip's ends and around frames without a face.
4. render the codes with the generator's stored noise (no random noise from frame to frame), and
   paste back into the frame through the smoothed square's feathered mask (aligned), or resize to
   the frame (not aligned); encode with the input's size, rate and timestamps.

A centred window needs ``ceil(3 * sigma)`` frames of look-ahead, so output lags the decoding by that
many frames plus a batch; nothing else is held.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Optional, Tuple

import numpy as np
import torch

from .errors import OutputError, UsageError
from .utils import PathLike

DEFAULT_SMOOTH = 1.5  # sigma, in frames, of the Gaussian over the W+ codes
DEFAULT_SMOOTH_CROP = 2.0  # sigma, in frames, of the Gaussian over the crop square's corners
DEFAULT_BATCH = 32


@dataclass
class _Record:
    """One frame on its way through the stages."""

    frame: Any  # data.video.Frame
    face: bool = True
    quad: Optional[np.ndarray] = None  # the crop square (aligned), raw then smoothed
    ws: Optional[np.ndarray] = None  # [L, w_dim]


@dataclass
class VideoRun:
    """What a video run wrote.

    Attributes:
        out: the output video.
        latents: the per-frame codes (``.npz``: ``wplus`` ``[N, L, w_dim]``, ``pts``, ``time``, ``face``),
            or None.
        frames: frames written.
        faces: frames with a face (inverted and, for edits, edited).
        seconds: wall-clock time of the run.
    """

    out: Path
    latents: Optional[Path]
    frames: int
    faces: int
    seconds: float
    info: Any = field(default=None, repr=False)

    @property
    def fps(self) -> float:
        """Frames processed per second, end to end (decode, crop, invert, edit, render, encode)."""
        return self.frames / max(self.seconds, 1e-9)


class TemporalSmoother:
    """A centred Gaussian over time, streamed: ``push`` frames' values (``None`` for a frame that has
    none) and get back, in order, every frame whose window is complete; ``flush`` at the end.

    The value of frame ``i`` becomes ``sum_j g(j - i) v_j / sum_j g(j - i)`` over the frames ``j`` within
    ``ceil(3 sigma)`` of ``i`` that have a value, ``g(k) = exp(-k^2 / (2 sigma^2))``: the clip's ends and
    gaps renormalise instead of pulling toward zero. ``sigma = 0`` passes values through.
    """

    def __init__(self, sigma: float):
        if not (sigma >= 0 and math.isfinite(sigma)):
            raise UsageError(f"a smoothing sigma must be a finite number >= 0 (frames), got {sigma}")
        self.sigma = float(sigma)
        self.radius = int(math.ceil(3 * sigma)) if sigma > 0 else 0
        k = np.arange(-self.radius, self.radius + 1, dtype=np.float64)
        self.weights = np.exp(-0.5 * (k / sigma) ** 2) if sigma > 0 else np.ones(1)
        self._values: List[Optional[np.ndarray]] = []
        self._items: List[Any] = []
        self._first = 0  # frame index of _values[0]
        self._next = 0  # next frame to hand back
        self._count = 0

    def push(self, value: Optional[np.ndarray], item: Any = None) -> List[Tuple[Optional[np.ndarray], Any]]:
        self._values.append(None if value is None else np.asarray(value, dtype=np.float64))
        self._items.append(item)
        self._count += 1
        return self._emit(self._count - self.radius)

    def flush(self) -> List[Tuple[Optional[np.ndarray], Any]]:
        return self._emit(self._count)

    def _emit(self, upto: int) -> List[Tuple[Optional[np.ndarray], Any]]:
        out = []
        r = self.radius
        for i in range(self._next, max(upto, self._next)):
            item = self._items[i - self._first]
            value = self._values[i - self._first]
            if value is not None and r:
                acc, total = np.zeros_like(value), 0.0
                for j in range(max(i - r, self._first), min(i + r, self._count - 1) + 1):
                    v = self._values[j - self._first]
                    if v is not None:
                        w = self.weights[j - i + r]
                        acc += w * v
                        total += w
                value = acc / total
            out.append((value, item))
        self._next = max(upto, self._next)
        drop = self._next - r - self._first  # frames no window needs any more
        if drop > 0:
            del self._values[:drop], self._items[:drop]
            self._first += drop
        return out


def smooth_sequence(values: np.ndarray, sigma: float) -> np.ndarray:
    """``TemporalSmoother`` over a whole ``[T, ...]`` array at once (for analysis and tests)."""
    s = TemporalSmoother(sigma)
    out = [v for x in values for v, _ in s.push(x)] + [v for v, _ in s.flush()]
    return np.stack(out) if out else np.asarray(values, dtype=np.float64)


def _smoothed(records: Iterable[_Record], sigma: float, attr: str) -> Iterator[_Record]:
    smoother = TemporalSmoother(sigma)
    for rec in records:
        for value, r in smoother.push(getattr(rec, attr) if rec.face else None, rec):
            if value is not None:
                setattr(r, attr, value.astype(np.float32))
            yield r
    for value, r in smoother.flush():
        if value is not None:
            setattr(r, attr, value.astype(np.float32))
        yield r


def _batched(records: Iterable[_Record], size: int) -> Iterator[List[_Record]]:
    batch: List[_Record] = []
    for rec in records:
        batch.append(rec)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def prepare_edit(pipe, attribute: Optional[str], strength: Optional[float], reference, method: Optional[str],
                 layers, aligner=None):
    """Checks an edit before any work (the attribute, method, strength and reference) and inverts the
    reference. Returns ``(method, ws_ref)``; ``(None, None)`` when ``attribute`` is None (no edit)."""
    from .workflow import prepare_edit as _prepare

    if attribute is None:
        if strength is not None or reference is not None or method is not None:
            raise UsageError("--strength, --reference and --method need --attribute")
        return None, None
    return _prepare(pipe, attribute, strength, reference, method, layers, aligner, default_strength=True)


def process_video(pipe, src: PathLike, out: PathLike, attribute: Optional[str] = None,
                  strength: Optional[float] = None, reference: Optional[PathLike] = None, method: Optional[str] = None,
                  layers: Optional[Tuple[int, int]] = None, smooth: float = DEFAULT_SMOOTH, align: bool = False,
                  smooth_crop: float = DEFAULT_SMOOTH_CROP, batch_size: int = DEFAULT_BATCH,
                  latents: Optional[PathLike] = None, crf: int = 18, progress: bool = False,
                  on_frame: Optional[Callable[[np.ndarray], None]] = None) -> VideoRun:
    """Inverts (and, with ``attribute``, edits) every frame of ``src`` into the video ``out`` (module
    docstring). Everything is checked before the first frame is decoded; ``out`` and ``latents`` are
    written beside their destinations and renamed into place at the end, so an error or Ctrl-C leaves
    neither.

    Args:
        pipe: ``InversionPipeline`` with an encoder (and editing models for an edit).
        src: the input video (anything FFmpeg reads).
        out: the output ``.mp4`` (H.264, the input's size, frame rate and timestamps, its audio copied).
        attribute, strength, reference, method, layers: the edit, as ``InversionPipeline.edit``.
        smooth: sigma in frames of the Gaussian over the W+ codes (0: each frame on its own).
        align: FFHQ-align each frame (dlib), smooth the crop over time and paste the result back.
        smooth_crop: sigma in frames of the Gaussian over the crop square (with ``align``).
        batch_size: frames per forward pass.
        latents: also write the per-frame codes here (``.npz``).
        crf: libx264's quality (18: near-transparent).
        progress: a progress bar.
        on_frame: called with every output frame (``[H, W, 3]`` uint8) as it goes to the encoder.

    Returns:
        ``VideoRun``.
    """
    from .data.images import to_uint8
    from .data.video import VideoReader, VideoWriter, check_output_video
    from .workflow import face_aligner

    if batch_size < 1:
        raise UsageError(f"the batch size must be >= 1, got {batch_size}")
    for name, sigma in (("smooth", smooth), ("smooth_crop", smooth_crop)):
        if not (sigma >= 0 and math.isfinite(sigma)):
            raise UsageError(f"--{name.replace('_', '-')} must be a finite number >= 0 (frames), got {sigma}")
    out = check_output_video(out)
    if latents is not None and Path(latents).suffix != ".npz":
        raise UsageError(f"{latents}: the codes are written as .npz")
    start = time.perf_counter()
    reader = VideoReader(src)  # a missing or unreadable input first: before any other work
    g = pipe.generator
    bar = None
    try:
        aligner = face_aligner(pipe, align, paste_back=align)
        method, ws_ref = prepare_edit(pipe, attribute, strength, reference, method, layers, aligner)
        info = reader.info
        writer = VideoWriter(out, info, reader=reader, crf=crf)
        codes, ok = None, False
        try:
            codes = _CodeWriter(Path(latents), g.num_ws, g.style_dim) if latents is not None else None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=info.frames or None, desc="edit-video" if attribute else "invert-video",
                           unit="frame")
            records = _crops(reader.frames(), aligner, smooth_crop)

            def encode_and_edit(recs: Iterable[_Record]) -> Iterator[_Record]:
                for batch in _batched(recs, batch_size):
                    faces = [r for r in batch if r.face]
                    if faces:
                        ws = pipe.encode([_crop(r, aligner) for r in faces])
                        if attribute is not None:
                            ws = pipe.edit_ws(ws, attribute, strength=strength, ws_ref=ws_ref, method=method,
                                              layers=layers)
                        for r, w in zip(faces, ws.numpy()):
                            r.ws = w
                    yield from batch

            records = _smoothed(encode_and_edit(records), smooth, "ws")
            faces_seen = 0
            for batch in _batched(records, batch_size):
                faces = [r for r in batch if r.face]
                images = {}
                if faces:
                    ws = torch.from_numpy(np.stack([r.ws for r in faces]))
                    rendered = to_uint8(pipe.generate(ws, batch_size=batch_size))  # 8-bit, the whole batch at once
                    images = {id(r): img for r, img in zip(faces, rendered)}
                for r in batch:
                    rgb = _compose(r, images.get(id(r)), info)
                    writer.write(rgb, r.frame.pts)
                    if on_frame is not None:
                        on_frame(rgb)
                    if codes is not None:
                        codes.add(r)
                    faces_seen += r.face
                    r.frame = None  # the pixels are written: let them go
                if bar is not None:
                    bar.update(len(batch))
            ok = True
        finally:
            if codes is not None:
                codes.close(commit=ok)
            writer.close(commit=ok)
    finally:
        if bar is not None:
            bar.close()
        reader.close()
    return VideoRun(out=out, latents=Path(latents) if latents is not None else None, frames=writer.frames,
                    faces=faces_seen, seconds=time.perf_counter() - start, info=info)


def invert_video(pipe, src: PathLike, out: PathLike, latents: Optional[PathLike] = None, **kwargs) -> VideoRun:
    """``process_video`` without an edit: the reconstruction of every frame (and its codes)."""
    return process_video(pipe, src, out, latents=latents, **kwargs)


def edit_video(pipe, src: PathLike, out: PathLike, attribute: str, strength: Optional[float] = None,
               reference: Optional[PathLike] = None, **kwargs) -> VideoRun:
    """``process_video`` with an edit of ``attribute`` at ``strength`` (or toward ``reference``)."""
    if attribute is None:
        raise UsageError("edit-video needs --attribute")
    return process_video(pipe, src, out, attribute=attribute, strength=strength, reference=reference, **kwargs)


def _crops(frames: Iterable, aligner, smooth_crop: float) -> Iterator[_Record]:
    """Stage 1: a record per frame; with an aligner, its crop square (smoothed over time)."""
    if aligner is None:
        for f in frames:
            yield _Record(f)
        return
    from PIL import Image

    from .data.align import ffhq_quad

    def detected() -> Iterator[_Record]:
        for f in frames:
            found = aligner.landmarks(Image.fromarray(f.rgb))
            yield _Record(f, face=bool(found), quad=ffhq_quad(found[0]) if found else None)

    yield from _smoothed(detected(), smooth_crop, "quad")


def _crop(rec: _Record, aligner):
    if aligner is None:
        return rec.frame.rgb
    from PIL import Image

    from .data.align import crop_quad

    return crop_quad(Image.fromarray(rec.frame.rgb), rec.quad, aligner.size)


def _compose(rec: _Record, image: Optional[np.ndarray], info) -> np.ndarray:
    """The output frame: the input frame where there is no face, else the render (``[S, S, 3]`` uint8)
    resized to the frame (not aligned) or pasted back through the crop square (aligned)."""
    from PIL import Image

    if image is None:
        return rec.frame.rgb
    if rec.quad is None and image.shape[:2] == (info.height, info.width):
        return image
    face = Image.fromarray(image)
    if rec.quad is None:
        return np.asarray(face.resize((info.width, info.height), Image.LANCZOS))
    from .data.align import paste_back

    return np.asarray(paste_back(Image.fromarray(rec.frame.rgb), face, rec.quad))


class _CodeWriter:
    """Per-frame codes streamed to a temporary file, written as ``.npz`` by ``close`` (constant memory)."""

    def __init__(self, path: Path, rows: int, width: int):
        import tempfile

        self.path, self.rows, self.width = path, rows, width
        if not path.parent.is_dir():
            raise OutputError(f"{path.parent}: no such folder for the codes")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".raw")
        self._raw = os.fdopen(fd, "wb")
        self._raw_path = Path(tmp)
        self.pts: List[int] = []
        self.time: List[float] = []
        self.face: List[bool] = []

    def add(self, rec: _Record) -> None:
        ws = rec.ws[: self.rows] if rec.ws is not None else np.zeros((self.rows, self.width), np.float32)
        self._raw.write(np.ascontiguousarray(ws, dtype="<f4").tobytes())
        self.pts.append(rec.frame.pts)
        self.time.append(rec.frame.time)
        self.face.append(bool(rec.face))

    def close(self, commit: bool = True) -> None:
        import zipfile

        from .workflow import LatentsWriter

        self._raw.close()
        try:
            if not commit or not self.pts:
                return
            out = LatentsWriter(self.path)
            try:
                with out.zip.open("wplus.npy", "w", force_zip64=True) as f, open(self._raw_path, "rb") as raw:
                    np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False,
                                                             "shape": (len(self.pts), self.rows, self.width)})
                    while chunk := raw.read(1 << 20):
                        f.write(chunk)
                out.names.add("wplus")
                out.add("pts", np.asarray(self.pts, np.int64))
                out.add("time", np.asarray(self.time, np.float64))
                out.add("face", np.asarray(self.face, bool))
            except (OSError, zipfile.BadZipFile) as e:
                out.close(commit=False)
                raise OutputError(f"{self.path}: cannot write ({e})") from None
            out.close()
        finally:
            self._raw_path.unlink(missing_ok=True)
