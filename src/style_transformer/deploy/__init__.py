"""Deployment: ONNX export of the encoder, synthesis and mapping networks, and the runtimes that run
the exported graphs behind the inference API (ONNX Runtime, OpenVINO)."""

from .onnx import ExportError, export_model, export_onnx, read_manifest
from .runtime import RUNTIMES, ExportedModel, check_runtime, exported_for

__all__ = ["ExportError", "ExportedModel", "RUNTIMES", "check_runtime", "export_model", "export_onnx",
           "exported_for", "read_manifest"]
