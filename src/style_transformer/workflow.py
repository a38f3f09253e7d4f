"""Files in, results out: the batch workflow that ``invert``, ``edit`` and scripts share.

inputs (files and folders) -> readable images (optionally FFHQ-aligned faces) in batches -> the
pipeline -> ``<name>.png`` per result (with alignment, optionally ``<name>_pasted.png``: the photo with
the face blended back in) and one ``latents.npz`` keyed by name. Every file is written atomically (a
temporary name, then renamed), so an interrupted run never leaves a half-written output. Unreadable
inputs, and photos without a face when aligning, are skipped with a warning line and listed in the
result; the rest is still written.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .errors import InputError, OutputError, RunError, StyleTransformerError, UsageError
from .utils import PathLike, atomic_path


log = logging.getLogger(__name__)


@dataclass
class ImageBatch:
    """One batch of inputs: output names, PIL images and, when aligned, ``(photo, quad)`` per face for
    pasting back (else None)."""

    names: List[str]
    images: List
    sources: List[Optional[Tuple]]


@dataclass
class BatchRun:
    """What a batch run did.

    Attributes:
        out: the output folder.
        total: input files.
        written: names of the results written in this run.
        skipped: names already in the output folder and kept (``skip_existing``).
        failed: input files that were skipped (unreadable, or no face found).
    """

    out: Path
    total: int
    written: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)

    @property
    def latents_path(self) -> Path:
        return self.out / "latents.npz"

    @property
    def latents(self) -> Dict[str, np.ndarray]:
        """Every code in ``latents.npz`` (read from the file; empty when none was written)."""
        return load_latents(self.latents_path) if self.latents_path.is_file() else {}


class BatchInterrupted(RunError):
    """A batch run stopped by an interrupt (Ctrl-C) after writing what was done; ``run`` says how far."""

    exit_code = 130

    def __init__(self, run: BatchRun):
        super().__init__(f"interrupted after {len(run.written)} results of {run.total} inputs; {run.latents_path} "
                         f"holds the codes of every result written so far")
        self.run = run


class LatentsWriter:
    """Writes ``latents.npz`` entry by entry (constant memory however many codes), to a temporary file
    renamed onto the target by ``close`` (an interrupted or failed run leaves the previous file)."""

    def __init__(self, path: Path, keep: Optional[Path] = None, replaced: Sequence[str] = ()):
        import tempfile
        import zipfile

        self.path = Path(path)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write ({e.strerror or e})") from None
        os.close(fd)
        self.tmp = Path(tmp)
        self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True)
        self.names: set = set()
        if keep is not None and keep.is_file():  # an earlier run's codes, streamed over (not re-inverted)
            replaced = set(replaced)
            with zipfile.ZipFile(keep) as old:
                for info in old.infolist():
                    name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                    if name in replaced or name in self.names:
                        continue
                    with old.open(info) as src, self.zip.open(info.filename, "w", force_zip64=True) as dst:
                        while chunk := src.read(1 << 20):
                            dst.write(chunk)
                    self.names.add(name)

    def add(self, name: str, array: np.ndarray) -> None:
        if name in self.names:
            raise ValueError(f"latents.npz already holds {name!r}")
        try:
            with self.zip.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write ({e.strerror or e})") from None
        self.names.add(name)

    def close(self, commit: bool = True) -> None:
        """Finishes the file and renames it onto the target (``commit``), else removes it."""
        try:
            self.zip.close()
            if commit and self.names:
                os.chmod(self.tmp, 0o644)
                os.replace(self.tmp, self.path)
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write ({e.strerror or e})") from None
        finally:
            if self.tmp.exists():
                self.tmp.unlink()


def unique_stems(files: Sequence[Path]) -> List[str]:
    """Output names: each file's stem, ``<stem>_1``, ``<stem>_2`` ... where stems repeat."""
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


def image_batches(files: Sequence[Path], batch_size: int, failures: List[str], aligner=None,
                  all_faces: bool = False, desc: str = "images") -> Iterator[ImageBatch]:
    """Reads ``files`` in batches with a progress bar.

    Unreadable files (and, with an ``aligner``, photos without a face) are skipped with a warning line
    and appended to ``failures``. With an aligner the images are the FFHQ-aligned largest faces (or all
    faces, named ``<stem>_face<k>``).
    """
    from tqdm import tqdm

    from .data.align import NoFaceError
    from .data.images import ImageLoadError, load_image

    stems = unique_stems(files)
    bar = tqdm(total=len(files), desc=desc, unit="img")
    for i in range(0, len(files), batch_size):
        batch = ImageBatch([], [], [])
        for f, stem in zip(files[i: i + batch_size], stems[i: i + batch_size]):
            try:
                im = load_image(f)
            except ImageLoadError as e:
                failures.append(str(f))
                log.warning("skipping %s", e)
                continue
            if aligner is None:
                batch.names.append(stem)
                batch.images.append(im)
                batch.sources.append(None)
                continue
            try:
                faces = aligner.align(im, all_faces=all_faces)
            except NoFaceError:
                failures.append(str(f))
                log.warning("skipping %s: no face found (without alignment the whole image is used)", f)
                continue
            for k, face in enumerate(faces):
                batch.names.append(f"{stem}_face{k}" if all_faces else stem)
                batch.images.append(face.image)
                batch.sources.append((im, face.quad))
        if batch.names:
            yield batch
        bar.update(min(batch_size, len(files) - i))
    bar.close()


def write_images(out: Path, batch: ImageBatch, images: torch.Tensor, paste_back: bool = False) -> None:
    """``<name>.png`` per image ``[N, 3, H, W]`` in [-1, 1]; with ``paste_back``, also
    ``<name>_pasted.png`` where the batch was aligned."""
    from PIL import Image

    from .data.align import paste_back as paste
    from .data.images import save_image, to_uint8

    for name, img, src in zip(batch.names, images, batch.sources):
        save_image(img, out / f"{name}.png")
        if paste_back and src is not None:
            face = Image.fromarray(to_uint8(img[None])[0])
            with atomic_path(out / f"{name}_pasted.png") as tmp:
                paste(src[0], face, src[1]).save(tmp, format="PNG")


def latent_names(path: PathLike) -> List[str]:
    """The names in a ``latents.npz`` without reading its arrays (empty when there is no file)."""
    import zipfile

    p = Path(path)
    if not p.is_file():
        return []
    try:
        with zipfile.ZipFile(p) as z:
            return [n[:-4] if n.endswith(".npy") else n for n in z.namelist()]
    except (zipfile.BadZipFile, OSError) as e:
        raise InputError(f"{p}: not a readable .npz of arrays ({e})") from None


def write_latents(path: Path, latents: Dict[str, np.ndarray]) -> None:
    """An ``.npz`` of name -> array, written atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **latents)


def load_latents(path: PathLike) -> Dict[str, np.ndarray]:
    """Reads a ``latents.npz`` (name -> array), as ``invert`` writes it.

    Raises:
        InputError: the file is missing or is not an ``.npz`` of numeric arrays.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: latents file not found")
    try:
        with np.load(p, allow_pickle=False) as data:
            arrays = {k: np.asarray(data[k]) for k in data.files}
    except Exception as e:  # zip, zlib and format errors surface as many exception types
        first = str(e).strip().splitlines()[0][:150] if str(e).strip() else type(e).__name__
        raise InputError(f"{p}: not a readable .npz of arrays ({first})") from None
    bad = [k for k, v in arrays.items() if v.dtype.kind not in "fiub"]
    if bad:
        raise InputError(f"{p}: {bad[0]} is not a numeric array (dtype {arrays[bad[0]].dtype})")
    return arrays


def make_output_dir(path: PathLike) -> Path:
    """Creates the output folder (``InputError`` naming it when that fails)."""
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"{out}: cannot create the output folder ({e.strerror or e})") from None
    return out


def check_align_args(align: bool, all_faces: bool = False, paste_back: bool = False) -> None:
    """Every face and pasting back work on aligned faces: ``UsageError`` without alignment."""
    if not align and (all_faces or paste_back):
        raise UsageError("--all-faces and --paste-back need --align (they work on aligned faces)")


def check_refine_args(refine_steps: int, pti_steps: int) -> None:
    if refine_steps < 0 or pti_steps < 0:
        raise UsageError("--refine-steps and --pti-steps must be >= 0")


def face_aligner(pipe, align: bool, all_faces: bool = False, paste_back: bool = False):
    """The FFHQ aligner at the encoder's input size when ``align`` (None otherwise)."""
    check_align_args(align, all_faces, paste_back)
    if not align:
        return None
    from .data.align import FaceAligner

    return FaceAligner(size=pipe.input_size)


def _run(inputs: Sequence[PathLike], out: PathLike, batch_size: int, aligner, all_faces: bool, paste_back: bool,
         desc: str, step, skip_existing: bool = False) -> BatchRun:
    from .data.images import collect_images

    files = collect_images(inputs)
    run = BatchRun(make_output_dir(out), len(files))
    redo: List[str] = []
    if skip_existing:  # a result counts as done when its PNG and its code are both there
        done = set(latent_names(run.latents_path))  # names only: the codes stay on disk
        todo, again = [], set()
        for f, stem in zip(files, unique_stems(files)):
            if stem in done and (run.out / f"{stem}.png").is_file():
                run.skipped.append(stem)
            else:
                todo.append(f)
                again.add(stem)
        # the old codes of what this run does again (``<stem>`` or, with all faces, ``<stem>_face<k>``)
        redo = [n for n in done if n in again or n.rpartition("_face")[0] in again]
        files = todo
    writer = LatentsWriter(run.latents_path, keep=run.latents_path if skip_existing else None, replaced=redo)
    committed = False
    try:
        for batch in image_batches(files, batch_size, run.failed, aligner, all_faces, desc=desc):
            ws, images = step(batch)
            write_images(run.out, batch, images, paste_back)
            for name, w in zip(batch.names, ws):
                writer.add(name, w.numpy().astype(np.float32))
                run.written.append(name)
        writer.close()
        committed = True
    except KeyboardInterrupt:
        writer.close()  # what was completed stays usable
        committed = True
        raise BatchInterrupted(run) from None
    except StyleTransformerError:  # e.g. the disk filled: keep the codes of what was finished, if it fits
        committed = True
        try:
            writer.close()
        except StyleTransformerError:
            pass
        raise
    finally:
        if not committed:
            writer.close(commit=False)
    return run


def invert_files(pipe, inputs: Sequence[PathLike], out: PathLike, batch_size: int = 8, align: bool = False,
                 all_faces: bool = False, paste_back: bool = False, refine_steps: int = 0, pti_steps: int = 0,
                 randomize_noise: bool = False, skip_existing: bool = False) -> BatchRun:
    """Inverts image files and folders into ``out`` (module docstring).

    Args:
        pipe: ``InversionPipeline`` with an encoder.
        inputs: image files and/or folders.
        out: output folder (created).
        batch_size: images per forward pass.
        align: FFHQ-align the faces first (dlib).
        all_faces: with ``align``: every face, not only the largest.
        paste_back: with ``align``: also write the results blended into the photos.
        refine_steps: W+ optimisation steps after the encoder (0: encoder only).
        pti_steps: pivotal tuning steps (per batch).
        randomize_noise: fresh noise inputs instead of the stored ones.
        skip_existing: leave the inputs whose ``<name>.png`` and code are already in ``out`` (an
            interrupted run continues); their codes stay in ``latents.npz``.

    Returns:
        ``BatchRun``.

    Raises:
        BatchInterrupted: on Ctrl-C, after ``latents.npz`` got the codes of every result written.
    """
    check_refine_args(refine_steps, pti_steps)

    def step(batch: ImageBatch):
        res = pipe.invert(batch.images, batch_size=batch_size, randomize_noise=randomize_noise)
        if refine_steps > 0 or pti_steps > 0:
            res = pipe.refine(batch.images, res, steps=refine_steps, pti_steps=pti_steps)
        return res.ws, res.images

    aligner = face_aligner(pipe, align, all_faces, paste_back)
    return _run(inputs, out, batch_size, aligner, all_faces, paste_back, "invert", step, skip_existing)


def latents_file_codes(pipe, path: PathLike) -> Tuple[List[str], torch.Tensor]:
    """The codes of a latents ``.npz`` for ``pipe``'s generator: (file-safe names, W+ ``[N, num_ws, w_dim]``),
    one image per array (``(num_ws, w_dim)`` W+ or a single ``(w_dim,)`` w; rows past the generator's count
    are dropped, as officially). ``UsageError`` names an array that does not fit."""
    import re

    arrays = load_latents(path)
    if not arrays:
        raise UsageError(f"{path}: holds no arrays")
    keys, rows = [], []
    for key, arr in arrays.items():
        if arr.ndim not in (1, 2) or not np.issubdtype(arr.dtype, np.number):
            raise UsageError(f"{path}: array {key!r} has shape {arr.shape} and dtype {arr.dtype}; "
                             "expected numbers shaped (num_ws, w_dim) or (w_dim,)")
        ws = torch.from_numpy(arr.astype(np.float32))
        try:
            ws = pipe.as_wplus(ws[None] if ws.ndim == 2 else ws)  # one image per array
        except ValueError as e:
            raise UsageError(f"{path}: array {key!r}: {e}") from None
        keys.append(re.sub(r"[^A-Za-z0-9._-]", "_", key))
        rows.append(ws[0, : pipe.generator.num_ws])
    return keys, torch.stack(rows)


def generate_files(pipe, out: PathLike, ws: torch.Tensor, names: Sequence[str], batch_size: int = 8,
                   randomize_noise: bool = False, save_latents: bool = True, progress: bool = True) -> Path:
    """Renders codes ``ws`` into ``out/<name>.png`` (each PNG written atomically), and ``out/latents.npz``
    of the codes when ``save_latents``. Returns the output folder."""
    from .data.images import save_image

    out = make_output_dir(out)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(names), desc="generate", unit="img")
    try:
        for i in range(0, len(names), batch_size):
            imgs = pipe.generate(ws[i: i + batch_size], randomize_noise=randomize_noise, batch_size=batch_size)
            for name, img in zip(names[i: i + batch_size], imgs):
                save_image(img, out / f"{name}.png")
            if bar is not None:
                bar.update(len(imgs))
    finally:
        if bar is not None:
            bar.close()
    if save_latents:
        write_latents(out / "latents.npz", {k: w.numpy() for k, w in zip(names, ws)})
    return out


def check_edit_args(strength: Optional[float], reference: Optional[PathLike], method: Optional[str],
                    default_strength: bool = False) -> None:
    """The checks of an edit's arguments that need no model (run again by ``prepare_edit``; the CLI
    calls this before loading anything): a strength or a reference (unless ``default_strength``), a
    finite strength, the reference method with a reference and only with one."""
    if strength is None and reference is None and not default_strength:
        raise UsageError("an edit needs a strength or a reference image (one of --strength or --reference is "
                         "required)")
    if strength is not None and not np.isfinite(strength):
        raise UsageError(f"--strength must be a finite number, got {strength}")
    if method is not None and (method == "reference") != (reference is not None):
        raise UsageError("--method reference needs --reference, and --reference needs --method reference")


def prepare_edit(pipe, attribute: str, strength: Optional[float], reference: Optional[PathLike],
                 method: Optional[str], layers: Optional[Tuple[int, int]], aligner=None,
                 default_strength: bool = False):
    """Checks an edit before anything is written (attribute, method, strength, reference: one trial
    edit of a sampled code) and inverts the reference image (aligned like the inputs). Without a
    strength or a reference, ``default_strength`` takes the editing folder's calibrated strength (else
    it is an error). Returns ``(method, ws_ref)``."""
    from .data.align import NoFaceError
    from .data.images import load_image

    check_edit_args(strength, reference, method, default_strength)
    ws_ref = None
    if reference is not None:
        ref = load_image(reference)
        if aligner is not None:
            try:
                ref = aligner.align(ref)[0].image
            except NoFaceError:
                raise InputError(f"{reference}: no face found in the reference (without alignment the whole "
                                 "image is used)") from None
        ws_ref = pipe.encode([ref])
    method = method or pipe.editing.default_method(ws_ref is not None)
    if (method == "reference") != (ws_ref is not None):
        raise UsageError("reference edits need a reference image, and a reference image needs the reference method")
    pipe.edit_ws(pipe.sample_ws(1), attribute, strength=strength, ws_ref=ws_ref, method=method, layers=layers)
    return method, ws_ref


def edit_files(pipe, inputs: Sequence[PathLike], out: PathLike, attribute: str, strength: Optional[float] = None,
               reference: Optional[PathLike] = None, method: Optional[str] = None,
               layers: Optional[Tuple[int, int]] = None, batch_size: int = 8, align: bool = False,
               all_faces: bool = False, paste_back: bool = False) -> BatchRun:
    """Inverts image files and folders and edits ``attribute`` into ``out`` (module docstring).

    The attribute, method and reference are checked before any file is written.

    Args:
        pipe: ``InversionPipeline`` with an encoder and editing models.
        inputs, out, batch_size, align, all_faces, paste_back: as ``invert_files``.
        attribute: attribute name (component index for ganspace/sefa).
        strength: signed strength (reference edits: a scale > 0 of the editor's move); default: the
            editing folder's calibrated one.
        reference: reference image file for reference edits (aligned like the inputs).
        method: editing method (default: reference with a reference image, else interfacegan).
        layers: ``(start, stop)`` W+ rows to edit.

    Returns:
        ``BatchRun`` (its latents are the edited codes).
    """
    aligner = face_aligner(pipe, align, all_faces, paste_back)
    method, ws_ref = prepare_edit(pipe, attribute, strength, reference, method, layers, aligner)

    def step(batch: ImageBatch):  # encode, edit, render once, the codes on the pipeline's device throughout
        ws = torch.cat([pipe._encode(batch.images[i: i + batch_size]) for i in range(0, len(batch.images), batch_size)])
        ws = pipe._edit_ws(ws, attribute, strength=strength, ws_ref=ws_ref, method=method, layers=layers)
        return ws.cpu(), pipe.generate(ws, batch_size=batch_size)

    return _run(inputs, out, batch_size, aligner, all_faces, paste_back, "edit", step)
