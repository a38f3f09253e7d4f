"""int8 post-training quantisation of an exported encoder with ONNX Runtime's own quantiser.

``quantize_encoder(folder, images)`` calibrates ``encoder.onnx`` on images of the model's domain
(activation ranges by MinMax over the calibration batches) and writes ``encoder.int8.onnx``: QDQ
format, int8 weights per output channel, uint8 activations. ONNX Runtime runs it with its int8
kernels (VNNI on CPUs that have it); OpenVINO reads the same QDQ graph as a low-precision model. The
manifest records the graph as ``encoder_int8`` with how it was calibrated.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Sequence, Union

import numpy as np

from ..errors import InputError, UsageError
from .onnx import MANIFEST, read_manifest

PathLike = Union[str, os.PathLike]
CALIBRATION_BATCH = 16


def calibration_images(inputs: Sequence[PathLike], size, n: int = 300) -> np.ndarray:
    """Up to ``n`` images of ``inputs`` (files and/or folders) as the encoder's input ``[N, 3, H, W]``
    float32 in [-1, 1] (the project's one image loader and preprocessing)."""
    from ..data.images import collect_images, load_image, preprocess

    files = collect_images(inputs)
    if not files:
        raise InputError(f"{', '.join(map(str, inputs))}: no images to calibrate on")
    out, skipped = [], 0
    for f in files:
        if len(out) >= n:
            break
        try:
            out.append(preprocess([load_image(f)], size)[0].numpy())
        except (InputError, ValueError, OSError):
            skipped += 1
    if len(out) < min(n, 32):
        raise InputError(f"only {len(out)} readable calibration images ({skipped} unreadable); give at least "
                         f"{min(n, 32)} images of the model's domain")
    return np.stack(out).astype(np.float32)


def quantize_encoder(folder: PathLike, images: np.ndarray, source: str = "") -> dict:
    """Writes ``folder/encoder.int8.onnx`` calibrated on ``images`` ``[N, 3, H, W]`` in [-1, 1] and
    records it in the manifest. Returns the manifest."""
    import importlib.util

    if importlib.util.find_spec("onnxruntime") is None:
        raise UsageError("--int8 needs the onnxruntime package: pip install 'style-transformer[deploy]'")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    folder = Path(folder)
    manifest = read_manifest(folder)
    if "encoder" not in manifest["graphs"]:
        raise UsageError(f"{folder}: no encoder graph to quantise (a generator-only export)")
    expect = (3, *manifest["encoder"]["input_size"])
    if images.ndim != 4 or tuple(images.shape[1:]) != expect:
        raise InputError(f"calibration images must be [N, {expect[0]}, {expect[1]}, {expect[2]}], got {images.shape}")

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.start = 0

        def get_next(self):
            if self.start >= len(images):
                return None
            batch = images[self.start: self.start + CALIBRATION_BATCH]
            self.start += CALIBRATION_BATCH
            return {"image": batch}

    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        prepared = Path(tmp) / "encoder.pre.onnx"
        quant_pre_process(str(folder / manifest["graphs"]["encoder"]), str(prepared), skip_symbolic_shape=True)
        result = Path(tmp) / "encoder.int8.onnx"
        quantize_static(str(prepared), str(result), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        os.replace(result, folder / "encoder.int8.onnx")
    manifest["graphs"]["encoder_int8"] = "encoder.int8.onnx"
    manifest["int8"] = {"graphs": ["encoder"], "calibration_images": int(len(images)), "calibration_source": source,
                        "method": "onnxruntime.quantization.quantize_static: QDQ, MinMax, per-channel int8 "
                                  "weights, uint8 activations"}
    tmp_manifest = folder / (MANIFEST + ".tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp_manifest, folder / MANIFEST)
    return manifest


def ensure_int8_encoder(folder: PathLike, model, checkpoint) -> None:
    """The pipeline's ``precision="int8"``: quantises the cached export's encoder when it has none.
    The shipped encoder is calibrated on 300 renders of its training seed; any other checkpoint needs
    calibration images of its own domain, given to ``export --int8 --calibration DIR``."""
    folder = Path(folder)
    if "encoder_int8" in read_manifest(folder)["graphs"]:
        return
    if model is None:
        raise UsageError("--precision int8 quantises the encoder: it needs an inversion checkpoint")
    from ..pretrained import TRAIN_SEED, default_path

    try:
        shipped = checkpoint is not None and Path(checkpoint).resolve() == default_path("style_transformer").resolve()
    except Exception:
        shipped = False
    if not shipped:
        raise UsageError("--precision int8 calibrates on images of the model's domain: run style-transformer export "
                         "CHECKPOINT OUT --int8 --calibration DIR and run the graphs in OUT")
    from ..data.synthetic import render_dataset_batch

    h, w = model.cfg.encoder.input_shape
    faces = render_dataset_batch(TRAIN_SEED, range(300), h).images
    quantize_encoder(folder, faces.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1,
                     source=f"300 renders of the training seed {TRAIN_SEED}")
