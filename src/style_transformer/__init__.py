"""style-transformer: StyleGAN inversion and editing with the Style Transformer (Hu et al., CVPR 2022).

Public API::

    from style_transformer import load_pipeline
    pipe = load_pipeline()                 # the shipped 64x64 face models (or checkpoint=..., generator=...)
    res = pipe.invert(["face.png"])        # res.ws [N, 10, 256], res.images [N, 3, 64, 64]
    img = pipe.generate(res.ws)
    smiling = pipe.edit(res, "Smiling", strength=3.0)
"""

from .checkpoints import CheckpointError, load_model, save_model
from .config import (PRESETS, EncoderConfig, GeneratorConfig, StyleTransformerConfig, get_preset)
from .inference import InversionPipeline, InversionResult, load_pipeline
from .models import Discriminator, Generator, StyleEncoder, StyleTransformer, set_ops_impl

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "Discriminator", "EncoderConfig", "Generator", "GeneratorConfig", "InversionPipeline",
    "InversionResult", "PRESETS", "StyleEncoder", "StyleTransformer", "StyleTransformerConfig", "create_model",
    "get_preset", "load_model", "load_pipeline", "save_model", "set_ops_impl",
]


def create_model(preset: str = "official-ffhq") -> StyleTransformer:
    """Builds a randomly initialised ``StyleTransformer`` from a named preset (see ``PRESETS``)."""
    return StyleTransformer(get_preset(preset))
