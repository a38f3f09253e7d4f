"""Data: image discovery, decoding and preprocessing; training datasets; procedural faces."""

from .datasets import ImageFolderDataset, LabelError, load_labels
from .images import (IMAGE_EXTENSIONS, ImageLoadError, InputError, collect_images, load_image, preprocess,
                     save_image, to_uint8)

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderDataset", "ImageLoadError", "InputError", "LabelError",
           "collect_images", "load_image", "load_labels", "preprocess", "save_image", "to_uint8"]
