"""The browser editor (``style-transformer serve``): standard-library HTTP server over ``inference.py``."""

from .app import EditorApp, make_server

__all__ = ["EditorApp", "make_server"]
