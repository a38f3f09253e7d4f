"""Video files in and out through PyAV (FFmpeg's libraries): frames streamed, timestamps and audio kept.

``VideoReader(path)`` decodes the first video stream frame by frame as RGB ``uint8`` arrays with their
timestamps (variable frame rates stay variable) and keeps the audio packets it meets on the way, so a
``VideoWriter`` can copy them into its output as the video reaches their time: one pass over the
input, memory bounded by how far the processing lags behind the decoding. ``VideoWriter`` encodes
H.264 (libx264) into an MP4 written beside its destination and renamed into place when closed, so an
interrupted run leaves no output file. PyAV is an optional extra (``pip install
'style-transformer[video]'``); without it, opening a video is a one-line error that says so.
"""

from __future__ import annotations

import collections
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Deque, Iterator, Optional, Tuple, Union

import numpy as np

from ..errors import InputError, OutputError, UsageError
from ..utils import PathLike

INSTALL_HINT = "pip install 'style-transformer[video]' (or pip install av)"
# audio codecs an MP4 holds as they are; any other audio is re-encoded as AAC
_MP4_AUDIO = {"aac", "mp3", "opus", "alac", "flac", "ac3", "eac3"}


def require_av():
    """The ``av`` module, or a one-line ``UsageError`` saying what to install."""
    import importlib.util

    if importlib.util.find_spec("av") is None:
        raise UsageError(f"video needs PyAV: {INSTALL_HINT}")
    import av

    return av


@dataclass(frozen=True)
class VideoInfo:
    """What a video stream is: size, nominal rate (``fps``), time base, frame count (0 when the file
    does not say), duration in seconds (0 when unknown), and whether an audio stream goes with it."""

    width: int
    height: int
    fps: Fraction
    time_base: Fraction
    frames: int
    duration: float
    has_audio: bool
    codec: str


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index in decoding order, timestamp (``pts`` in the stream's time base and
    ``time`` in seconds) and pixels ``[H, W, 3]`` uint8 RGB."""

    index: int
    pts: int
    time: float
    rgb: np.ndarray


class VideoReader:
    """Decodes ``path``'s first video stream (a context manager; ``frames()`` streams it once).

    Raises:
        InputError: a missing path, a file FFmpeg cannot read, a file without a video stream, or a
            stream that breaks off mid-way (a corrupt file).
    """

    def __init__(self, path: PathLike):
        av = require_av()
        self.path = Path(path)
        if not self.path.exists():
            raise InputError(f"{self.path}: no such file")
        if self.path.is_dir():
            raise InputError(f"{self.path}: a folder, not a video file")
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
            raise InputError(f"{self.path}: not a readable video ({_reason(e)})") from None
        if not self._container.streams.video:
            self._container.close()
            raise InputError(f"{self.path}: no video stream in this file")
        self._video = self._container.streams.video[0]
        self._video.thread_type = "AUTO"
        audio = self._container.streams.audio
        self._audio = audio[0] if audio else None
        cc = self._video.codec_context
        rate = self._video.average_rate or self._video.guessed_rate or Fraction(25)
        duration = float(self._video.duration * self._video.time_base) if self._video.duration else (
            self._container.duration / 1e6 if self._container.duration else 0.0)
        if not cc.width or not cc.height:
            self._container.close()
            raise InputError(f"{self.path}: the video stream has no frame size (a corrupt file)")
        self.info = VideoInfo(width=cc.width, height=cc.height, fps=Fraction(rate), time_base=self._video.time_base,
                              frames=int(self._video.frames or 0), duration=duration, has_audio=self._audio is not None,
                              codec=cc.name)
        self.audio_packets: Deque[Tuple[float, object]] = collections.deque()

    @property
    def audio_stream(self):
        return self._audio

    def frames(self) -> Iterator[Frame]:
        """The frames in presentation order, as they decode; audio packets met on the way are kept
        in ``audio_packets`` as ``(time in seconds, packet)``."""
        av = require_av()
        streams = [self._video] + ([self._audio] if self._audio is not None else [])
        index, last_pts = 0, None
        try:
            for packet in self._container.demux(*streams):
                if packet.stream is self._audio:
                    if packet.dts is not None:
                        t = float(packet.pts * packet.time_base) if packet.pts is not None else float(
                            packet.dts * packet.time_base)
                        self.audio_packets.append((t, packet))
                    continue
                for frame in packet.decode():
                    pts = frame.pts if frame.pts is not None else (0 if last_pts is None else last_pts + 1)
                    last_pts = pts
                    yield Frame(index, int(pts), float(pts * self._video.time_base), frame.to_ndarray(format="rgb24"))
                    index += 1
        except av.FFmpegError as e:
            raise InputError(f"{self.path}: the video breaks off at frame {index} ({_reason(e)}): a corrupt "
                             "or truncated file") from None
        if index == 0:
            raise InputError(f"{self.path}: no frame decodes (an empty or corrupt video)")

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_output_video(path: PathLike) -> Path:
    """``path`` as an output video: an ``.mp4`` (or ``.m4v``/``.mov``) in an existing folder."""
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise UsageError(f"{path}: write the video as .mp4 (H.264)")
    if not path.parent.is_dir():
        raise OutputError(f"{path.parent}: no such folder for the output video")
    if path.is_dir():
        raise OutputError(f"{path}: a folder; give the output video's file name")
    return path


class VideoWriter:
    """Encodes RGB frames into an H.264 MP4 at ``path`` with ``like``'s size, rate and time base,
    copying ``reader``'s audio (re-encoded as AAC when MP4 cannot hold it as it is).

    Frames are written with their own timestamps (``write(rgb, pts)``, ``pts`` in ``like.time_base``),
    so a variable frame rate is kept. The file is built beside ``path`` and renamed into place by
    ``close()``; ``close(commit=False)`` (or an exception inside a ``with`` block) removes it.

    Args:
        crf: libx264's constant rate factor (0 lossless, 18 near-transparent, 23 its default).
    """

    def __init__(self, path: PathLike, like: VideoInfo, reader: Optional[VideoReader] = None, crf: int = 18,
                 size: Optional[Tuple[int, int]] = None):
        av = require_av()
        self.path = check_output_video(path)
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix}")
        width, height = size or (like.width, like.height)
        try:
            self._out = av.open(str(self._tmp), "w", format="mp4")
        except (av.FFmpegError, OSError) as e:
            raise OutputError(f"{self.path}: cannot write here ({_reason(e)})") from None
        self._stream = self._out.add_stream("libx264", rate=like.fps)
        self._stream.width, self._stream.height = width, height
        # 4:2:0 chroma needs even sides; odd ones keep full chroma
        self._stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        self._stream.codec_context.time_base = like.time_base
        self._stream.time_base = like.time_base
        self._stream.options = {"crf": str(int(crf)), "preset": "veryfast"}
        self._time_base = like.time_base
        self._reader = reader
        self._audio_out, self._audio_codec = None, None
        if reader is not None and reader.audio_stream is not None:
            src = reader.audio_stream
            if src.codec_context.name in _MP4_AUDIO:
                self._audio_out = self._out.add_stream_from_template(src)
            else:
                self._audio_out = self._out.add_stream("aac", rate=src.codec_context.sample_rate or 48000,
                                                       layout=src.codec_context.layout.name or "stereo")
                self._audio_codec = "aac"
        self._last_pts: Optional[int] = None
        self.frames = 0

    def write(self, rgb: np.ndarray, pts: int) -> None:
        """Encodes one ``[H, W, 3]`` uint8 frame at ``pts``; copies the audio up to its time."""
        av = require_av()
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1  # strictly increasing timestamps: a repeated pts would stop the muxer
        self._last_pts = pts
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb, dtype=np.uint8), format="rgb24")
        frame.pts, frame.time_base = int(pts), self._time_base
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        self.frames += 1
        self._copy_audio(float(pts * self._time_base))

    def _copy_audio(self, until: Optional[float]) -> None:
        if self._audio_out is None:
            return
        queue = self._reader.audio_packets
        while queue and (until is None or queue[0][0] <= until):
            _, packet = queue.popleft()
            if self._audio_codec is None:
                packet.stream = self._audio_out
                self._out.mux(packet)
            else:
                for frame in packet.decode():
                    frame.pts = None
                    for out_packet in self._audio_out.encode(frame):
                        self._out.mux(out_packet)

    def close(self, commit: bool = True) -> Optional[Path]:
        """Finishes the file and renames it into place (``commit``), or removes it. Returns the path
        written, or None."""
        if self._out is None:
            return self.path if commit else None
        try:
            if commit:
                for packet in self._stream.encode(None):
                    self._out.mux(packet)
                if self._reader is not None:
                    self._copy_audio(None)
                if self._audio_codec is not None:
                    for packet in self._audio_out.encode(None):
                        self._out.mux(packet)
            self._out.close()
        except Exception:
            self._out = None
            self._tmp.unlink(missing_ok=True)
            raise
        self._out = None
        if commit and self.frames:
            os.replace(self._tmp, self.path)
            return self.path
        self._tmp.unlink(missing_ok=True)
        return None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(commit=exc_type is None)


def _reason(e: Exception) -> str:
    """FFmpeg's own words for an error (``Invalid data found when processing input``), without the
    errno and path PyAV adds."""
    text = getattr(e, "strerror", None) or str(e).strip() or type(e).__name__
    return str(text).splitlines()[0][:160]


def write_video(path: PathLike, frames: np.ndarray, fps: Union[int, Fraction] = 30, crf: int = 18) -> Path:
    """Writes ``frames`` ``[N, H, W, 3]`` uint8 at a constant ``fps`` (no audio) as an H.264 MP4."""
    fps = Fraction(fps)
    info = VideoInfo(width=frames.shape[2], height=frames.shape[1], fps=fps, time_base=1 / fps, frames=len(frames),
                     duration=len(frames) / float(fps), has_audio=False, codec="h264")
    with VideoWriter(path, info, crf=crf) as w:
        for i, rgb in enumerate(frames):
            w.write(rgb, i)
    return Path(path)


def clip_attributes_path(clip: PathLike) -> Path:
    """Where ``write_synth_clip`` puts a clip's per-frame attributes: beside it, ``CLIP.csv``."""
    return Path(clip).with_suffix(".csv")


def write_synth_clip(out: PathLike, n_frames: int = 90, fps: int = 30, size: int = 64, seed: int = 0,
                     subject: int = 0, crf: int = 18) -> Tuple[Path, Path]:
    """Renders a clip of a procedural face (``synthetic.animate_attributes``: a turn of the head,
    moving light, a smile appearing) as an H.264 MP4 at ``out``, and its per-frame attributes as
    ``clip_attributes_path(out)`` (``frame,time,`` then ``synthetic.ATTRIBUTES``; the CSV is written
    last, so a complete CSV means a complete pair). Every frame's true image is
    ``render_faces(read_clip_attributes(csv), size)``. Returns (video, csv)."""
    from ..utils import atomic_path
    from .synthetic import ATTRIBUTES, BINARY_ATTRIBUTES, animate_attributes, render_faces

    attrs = animate_attributes(seed, n_frames, subject)
    write_video(out, render_faces(attrs, size), fps=fps, crf=crf)
    lines = ["frame,time," + ",".join(ATTRIBUTES)]
    for i in range(n_frames):
        vals = [str(int(attrs[k][i])) if k in BINARY_ATTRIBUTES else f"{attrs[k][i]:.9g}" for k in ATTRIBUTES]
        lines.append(f"{i},{i / fps:.6f}," + ",".join(vals))
    csv = clip_attributes_path(out)
    with atomic_path(csv) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    return Path(out), csv


def read_clip_attributes(csv: PathLike) -> dict:
    """A clip's per-frame attributes (``write_synth_clip``'s CSV): one float64 array ``[N]`` per name."""
    from .synthetic import ATTRIBUTES

    csv = Path(csv)
    try:
        lines = csv.read_text().strip().splitlines()
    except FileNotFoundError:
        raise InputError(f"{csv}: no such file (the clip's per-frame attributes, written by "
                         "`dataset synth-video`)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{csv}: cannot read ({e})") from None
    header = lines[0].split(",") if lines else []
    if header[:2] != ["frame", "time"] or any(a not in header for a in ATTRIBUTES):
        raise InputError(f"{csv}: not a clip attribute table (want frame,time and every renderer attribute)")
    try:
        table = np.array([[float(v) for v in line.split(",")] for line in lines[1:]], dtype=np.float64)
    except ValueError as e:
        raise InputError(f"{csv}: a value is not a number ({e})") from None
    if table.ndim != 2 or table.shape[1] != len(header) or not np.isfinite(table).all():
        raise InputError(f"{csv}: rows of unequal length or non-finite values")
    return {name: table[:, header.index(name)] for name in ("frame", "time", *ATTRIBUTES)}
