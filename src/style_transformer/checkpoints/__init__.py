"""Checkpoint I/O: native safetensors and official ``.pt`` import, behind one loader."""

from .io import load_model, save_model
from .official import CheckpointError, torch_load_safe

__all__ = ["CheckpointError", "load_model", "save_model", "torch_load_safe"]
