"""Models: StyleGAN2 (generator, discriminator), the Style Transformer encoder, the image attribute
classifier."""

from .classifier import AttributeClassifier
from .encoder import StyleEncoder, StyleTransformer
from .stylegan2 import Discriminator, Generator, set_ops_impl

__all__ = ["AttributeClassifier", "Discriminator", "Generator", "StyleEncoder", "StyleTransformer", "set_ops_impl"]
