"""int8 post-training quantisation of an exported encoder with each runtime's own tooling.

``quantize_encoder(folder, images)`` calibrates ``encoder.onnx`` on images of the model's domain and
writes one int8 encoder per runtime:

- ONNX Runtime: ``encoder.int8.onnx`` by ``onnxruntime.quantization.quantize_static`` (QDQ format,
  MinMax activation ranges, int8 weights per output channel, uint8 activations), run with ONNX
  Runtime's int8 kernels (VNNI on CPUs that have it). Manifest graph ``encoder_int8``.
- OpenVINO: ``encoder.int8.xml``/``.bin`` (OpenVINO IR) by NNCF's post-training quantisation
  (``nncf.quantize``, transformer model type: SmoothQuant and bias correction), run with OpenVINO's
  int8 kernels. Manifest graph ``encoder_int8_openvino``. (OpenVINO does not compile ONNX Runtime's
  QDQ graph of the transformer layers, hence a graph of its own.)

The synthesis network stays fp32: its weights are modulated per image, so int8 buys less there and
costs image quality.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Optional, Sequence, Tuple

import numpy as np

from ..errors import InputError, UsageError
from .onnx import MANIFEST, read_manifest
from .runtime import INT8_GRAPHS
from ..utils import PathLike

CALIBRATION_BATCH = 16
_NEEDS = {"onnxruntime": ("onnxruntime",), "openvino": ("openvino", "nncf")}
_METHODS = {"onnxruntime": "onnxruntime.quantization.quantize_static: QDQ, MinMax, per-channel int8 weights, "
                           "uint8 activations",
            "openvino": "nncf.quantize (OpenVINO backend, ModelType.TRANSFORMER): SmoothQuant, fast bias correction, "
                        "per-channel int8 weights"}


def missing_packages(runtime: str) -> Tuple[str, ...]:
    """The packages that quantising for ``runtime`` needs and that are not installed."""
    import importlib.util

    return tuple(p for p in _NEEDS[runtime] if importlib.util.find_spec(p) is None)


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


@contextlib.contextmanager
def _quiet_tools():
    """The quantisers' chatter off stdout: root-logger warnings muted (ONNX Runtime's per-weight axis
    notes), NNCF's log at errors, and its progress bars sent to stderr (stdout may carry a report)."""
    import logging

    root, nncf_log = logging.getLogger(), logging.getLogger("nncf")
    levels = root.level, nncf_log.level
    root.setLevel(logging.ERROR)
    nncf_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        root.setLevel(levels[0])
        nncf_log.setLevel(levels[1])


def _quantize_onnxruntime(source: Path, target: Path, images: np.ndarray, tmp: Path) -> None:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self):
            self.start = 0

        def get_next(self):
            if self.start >= len(images):
                return None
            batch = images[self.start: self.start + CALIBRATION_BATCH]
            self.start += CALIBRATION_BATCH
            return {"image": batch}

    prepared = tmp / "encoder.pre.onnx"
    quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
    result = tmp / target.name
    quantize_static(str(prepared), str(result), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    os.replace(result, target)


def _quantize_openvino(source: Path, target: Path, images: np.ndarray, tmp: Path) -> None:
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(source))
    dataset = nncf.Dataset([images[i: i + 1] for i in range(len(images))])
    quantized = nncf.quantize(model, dataset, subset_size=len(images), model_type=nncf.ModelType.TRANSFORMER)
    result = tmp / target.name
    ov.save_model(quantized, str(result))
    os.replace(result.with_suffix(".bin"), target.with_suffix(".bin"))  # the weights first, the graph last
    os.replace(result, target)


_QUANTIZERS = {"onnxruntime": (_quantize_onnxruntime, "encoder.int8.onnx"),
               "openvino": (_quantize_openvino, "encoder.int8.xml")}


def quantize_encoder(folder: PathLike, images: np.ndarray, source: str = "",
                     runtimes: Optional[Sequence[str]] = None) -> dict:
    """Writes the int8 encoder of each runtime in ``runtimes`` (default: every one whose packages are
    installed) into ``folder``, calibrated on ``images`` ``[N, 3, H, W]`` in [-1, 1], and records them
    in the manifest. Returns the manifest."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if "encoder" not in manifest["graphs"]:
        raise UsageError(f"{folder}: no encoder graph to quantise (a generator-only export)")
    expect = (3, *manifest["encoder"]["input_size"])
    if images.ndim != 4 or tuple(images.shape[1:]) != expect:
        raise InputError(f"calibration images must be [N, {expect[0]}, {expect[1]}, {expect[2]}], got {images.shape}")
    if runtimes is None:
        runtimes = [r for r in INT8_GRAPHS if not missing_packages(r)]
        if not runtimes:
            raise UsageError("--int8 needs ONNX Runtime (onnxruntime) or OpenVINO with NNCF (openvino, nncf): "
                             "pip install 'style-transformer[deploy]'")
    for runtime in runtimes:
        missing = missing_packages(runtime)
        if missing:
            raise UsageError(f"int8 for {runtime} needs {' and '.join(missing)}: pip install 'style-transformer[deploy]'")
    images = np.ascontiguousarray(images, dtype=np.float32)
    int8 = manifest.get("int8", {})
    methods = dict(int8.get("methods", {}))
    for runtime in runtimes:
        quantize, name = _QUANTIZERS[runtime]
        with tempfile.TemporaryDirectory(dir=folder) as tmp, _quiet_tools():
            quantize(folder / manifest["graphs"]["encoder"], folder / name, images, Path(tmp))
        manifest["graphs"][INT8_GRAPHS[runtime]] = name
        methods[INT8_GRAPHS[runtime]] = _METHODS[runtime]
    manifest["int8"] = {"graphs": ["encoder"], "calibration_images": int(len(images)), "calibration_source": source,
                        "methods": methods}
    tmp_manifest = folder / (MANIFEST + ".tmp")
    tmp_manifest.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp_manifest, folder / MANIFEST)
    return manifest


def ensure_int8_encoder(folder: PathLike, model, checkpoint, runtime: str = "onnxruntime") -> None:
    """The pipeline's ``precision="int8"``: quantises the cached export's encoder for ``runtime`` when
    it has none. The shipped encoder is calibrated on 300 renders of its training seed; any other
    checkpoint needs calibration images of its own domain, given to ``export --int8 --calibration DIR``."""
    folder = Path(folder)
    if INT8_GRAPHS[runtime] in read_manifest(folder)["graphs"]:
        return
    if model is None:
        raise UsageError("--precision int8 quantises the encoder: it needs an inversion checkpoint")
    from ..pretrained import TRAIN_SEED, default_path

    try:
        shipped = checkpoint is not None and Path(checkpoint).resolve() == default_path("style_transformer").resolve()
    except (OSError, InputError):  # the shipped file is missing from this install (CheckpointError)
        shipped = False
    if not shipped:
        raise UsageError("--precision int8 calibrates on images of the model's domain: run style-transformer export "
                         "CHECKPOINT OUT --int8 --calibration DIR and run the graphs in OUT")
    from ..data.synthetic import render_dataset_batch

    h, w = model.cfg.encoder.input_shape
    faces = render_dataset_batch(TRAIN_SEED, range(300), h).images
    quantize_encoder(folder, faces.transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1,
                     source=f"300 renders of the training seed {TRAIN_SEED}", runtimes=[runtime])
