"""style-transformer: StyleGAN inversion and editing with the Style Transformer (Hu et al., CVPR 2022).

Public API::

    from style_transformer import load_pipeline
    pipe = load_pipeline()                 # the shipped 64x64 face models (or checkpoint=..., generator=...)
    res = pipe.invert(["face.png"])        # res.ws [N, 10, 256], res.images [N, 3, 64, 64]
    img = pipe.generate(res.ws)
    smiling = pipe.edit(res, "Smiling", strength=3.0)

    from style_transformer import invert_files     # files and folders in, PNGs + latents.npz out
    run = invert_files(pipe, ["photos/"], "out/")  # run.latents, run.failed
"""

from .checkpoints import CheckpointError, load_model, save_model
from .config import (MODEL_PRESETS, EncoderConfig, GeneratorConfig, StyleGAN3Config, StyleTransformerConfig,
                     list_models, model_preset)
from .config import PRESETS, get_preset  # noqa: F401  (deprecated aliases, kept for one release)
from .editing.toolkit import EditingModels
from .inference import InversionPipeline, InversionResult, load_pipeline
from .errors import StyleTransformerError
from .models import Discriminator, Generator, StyleEncoder, StyleGAN3Generator, StyleTransformer, set_ops_impl
from .video import VideoRun, edit_video, invert_video
from .workflow import edit_files, invert_files

__version__ = "0.1.0"

__all__ = [
    "CheckpointError", "Discriminator", "EditingModels", "EncoderConfig", "Generator", "GeneratorConfig",
    "InversionPipeline", "InversionResult", "MODEL_PRESETS", "StyleEncoder", "StyleGAN3Config", "StyleGAN3Generator",
    "StyleTransformer", "StyleTransformerConfig", "StyleTransformerError", "VideoRun", "create_model", "edit_files",
    "edit_video", "invert_files", "invert_video", "list_models", "load_model", "load_pipeline", "model_preset",
    "save_model", "set_ops_impl",
]


def create_model(preset: str = "official-ffhq"):
    """Builds a randomly initialised model from a named architecture (``MODEL_PRESETS``): a
    ``StyleTransformer`` for the encoder presets (``official-ffhq``, ``faces-64``, ...), a generator for
    ``*-generator``, an ``AttributeClassifier`` for ``*-classifier``. An unknown name is a
    ``ConfigError`` listing the names."""
    from .config import AttributeClassifierConfig
    from .models import AttributeClassifier, build_generator

    cfg = model_preset(preset)
    if isinstance(cfg, StyleTransformerConfig):
        return StyleTransformer(cfg)
    if isinstance(cfg, AttributeClassifierConfig):
        return AttributeClassifier(cfg)
    return build_generator(cfg)
