"""Models: StyleGAN2 (generator, discriminator) and the Style Transformer encoder."""

from .encoder import StyleEncoder, StyleTransformer
from .stylegan2 import Discriminator, Generator, set_ops_impl

__all__ = ["Discriminator", "Generator", "StyleEncoder", "StyleTransformer", "set_ops_impl"]
