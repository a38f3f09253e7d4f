"""Exported graphs run by ONNX Runtime or OpenVINO, behind the pipeline's ``encode``/``generate``.

``ExportedModel(folder, runtime)`` opens the graphs of an exported folder (``deploy.onnx``) with one
runtime; ``exported_for(...)`` exports a loaded model once into a cache folder keyed by its source
files' hashes and reuses it after. The runtimes are an optional extra: without them, asking for one
is a one-line error that says what to install.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Dict, Optional, Sequence

import numpy as np
import torch

from ..errors import InputError, UsageError
from .onnx import FORMAT_VERSION, OPSET, export_model, file_sha256, read_manifest
from ..utils import PathLike

RUNTIMES = ("torch", "onnxruntime", "openvino")
PRECISIONS = ("fp32", "int8")  # int8: the encoder quantised (deploy.quantize); synthesis stays fp32
INT8_GRAPHS = {"onnxruntime": "encoder_int8", "openvino": "encoder_int8_openvino"}  # runtime -> manifest graph
_PACKAGES = {"onnxruntime": "onnxruntime", "openvino": "openvino"}


def check_runtime(runtime: str, precision: str = "fp32") -> None:
    """Raises ``UsageError`` for an unknown runtime or precision, a precision the runtime does not
    run, or a runtime whose package is not installed: before anything is exported or quantised."""
    if runtime not in RUNTIMES:
        raise UsageError(f"unknown runtime {runtime!r}; choose from {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if runtime == "torch":
        if precision != "fp32":
            raise UsageError(f"--precision {precision} runs exported graphs: add --runtime onnxruntime or openvino")
        return
    import importlib.util

    if importlib.util.find_spec(_PACKAGES[runtime]) is None:
        raise UsageError(f"--runtime {runtime} needs the {_PACKAGES[runtime]} package: "
                         f"pip install 'style-transformer[deploy]' (or pip install {_PACKAGES[runtime]})")


def _threads() -> int:
    return max(1, torch.get_num_threads())


class _Graph:
    """One graph on one runtime: ``graph(**arrays) -> array`` (float32 in, float32 out)."""

    def __init__(self, path: Path, runtime: str):
        self.path, self.runtime = Path(path), runtime
        if runtime == "onnxruntime":
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = _threads()
            opts.log_severity_level = 3
            # no busy-waiting between ops: spinning workers compete with the caller for the cores
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            self.inputs = [i.name for i in self._session.get_inputs()]
        elif runtime == "openvino":
            import openvino as ov

            core = ov.Core()
            self._session = core.compile_model(str(path), "CPU", {"INFERENCE_NUM_THREADS": _threads()})
            # a port may carry several tensor names: the graph's own input name is among them
            self._ports = [set(i.get_names()) for i in self._session.inputs]
            self.inputs = [next((n for n in ("image", "wplus", "z", "c") if n in names), sorted(names)[0])
                           for names in self._ports]
        else:
            raise UsageError(f"unknown graph runtime {runtime!r}")

    def __call__(self, **arrays: np.ndarray) -> np.ndarray:
        feed = {k: np.ascontiguousarray(arrays[k], dtype=np.float32) for k in self.inputs}
        if self.runtime == "onnxruntime":
            return self._session.run(None, feed)[0]
        return np.asarray(self._session(feed)[0])


class ExportedModel:
    """The graphs of an exported folder on ``runtime`` (``"onnxruntime"`` or ``"openvino"``).

    Args:
        folder: what ``export_onnx`` wrote.
        runtime: which runtime runs the graphs.
    """

    def __init__(self, folder: PathLike, runtime: str, precision: str = "fp32"):
        if runtime == "torch":
            raise UsageError("ExportedModel runs graphs on onnxruntime or openvino, not torch")
        check_runtime(runtime, precision)
        self.folder, self.runtime, self.precision = Path(folder), runtime, precision
        self.manifest = read_manifest(self.folder)
        self._encoder = INT8_GRAPHS[runtime] if precision == "int8" else "encoder"
        if precision == "int8" and self._encoder not in self.manifest["graphs"]:
            raise UsageError(f"{self.folder}: no int8 encoder for {runtime}; export with --int8 --calibration DIR"
                             + (" (with nncf installed)" if runtime == "openvino" else ""))
        self._graphs: Dict[str, _Graph] = {}

    def graph(self, name: str) -> _Graph:
        if name not in self._graphs:
            file = self.manifest["graphs"].get(name)
            if file is None:
                raise UsageError(f"{self.folder}: the export has no {name} graph")
            self._graphs[name] = _Graph(self.folder / file, self.runtime)
        return self._graphs[name]

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """``[N, 3, H, W]`` in [-1, 1] -> W+ ``[N, n_styles, w_dim]`` (``latent_avg`` added)."""
        return torch.from_numpy(self.graph(self._encoder)(image=image.detach().cpu().numpy()))

    def synthesize(self, wplus: torch.Tensor) -> torch.Tensor:
        """W+ ``[N, num_ws, w_dim]`` -> images ``[N, 3, S, S]`` in [-1, 1] (stored noise)."""
        return torch.from_numpy(self.graph("synthesis")(wplus=wplus.detach().cpu().numpy()))

    def map(self, z: torch.Tensor, c: Optional[torch.Tensor] = None) -> torch.Tensor:
        """z ``[N, z_dim]`` (and labels ``[N, c_dim]``) -> w ``[N, w_dim]``."""
        arrays = {"z": z.detach().cpu().numpy()}
        if c is not None:
            arrays["c"] = c.detach().cpu().numpy()
        return torch.from_numpy(self.graph("mapping")(**arrays))


def cache_root() -> Path:
    """Where exports made for ``load_pipeline(runtime=...)`` are kept (``STYLE_TRANSFORMER_CACHE``, else
    ``~/.cache/style_transformer``, then ``onnx/``)."""
    root = os.environ.get("STYLE_TRANSFORMER_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "style_transformer") / "onnx"


def exported_for(model: torch.nn.Module, sources: Sequence[Optional[PathLike]], generator=None,
                 progress: bool = False) -> Path:
    """An exported folder of ``model`` (and ``generator``) from the cache, exported now if missing.
    The key is the SHA-256 of the source files (and the export format), so a changed file is exported
    again. Models not loaded from files are exported every time, to a fresh folder."""
    key = hashlib.sha256(f"v{FORMAT_VERSION}-opset{OPSET}".encode())
    files = [Path(s) for s in sources if s is not None]
    if not files or not all(f.is_file() for f in files):
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="style_transformer_onnx_")) / "export"
        export_model(model, folder, generator=generator)
        return folder
    key.update(type(model).__name__.encode())  # a file exported as a generator differs from its encoder export
    for f in files:
        key.update(file_sha256(f).encode())
    folder = cache_root() / key.hexdigest()[:24]
    try:
        read_manifest(folder)
        return folder
    except InputError:  # not there yet, or left half-written: export (again)
        pass
    if progress:
        print(f"exporting ONNX graphs to {folder} (once)")
    export_model(model, folder, source=files[0], generator=generator)
    return folder
