"""Data: image discovery, decoding and preprocessing."""

from .images import (IMAGE_EXTENSIONS, ImageLoadError, InputError, collect_images, load_image, preprocess,
                     save_image, to_uint8)

__all__ = ["IMAGE_EXTENSIONS", "ImageLoadError", "InputError", "collect_images", "load_image", "preprocess",
           "save_image", "to_uint8"]
