"""Models: StyleGAN2 (generator, discriminator), the Style Transformer encoder, the image attribute
classifier, the editing models (W+ attribute classifier, reference editor)."""

from .classifier import AttributeClassifier
from .editing import LatentClassifier, ReferenceEditor
from .encoder import StyleEncoder, StyleTransformer
from .psp import GradualStyleEncoder, PSPModel
from .stylegan2 import Discriminator, Generator, set_ops_impl

__all__ = ["AttributeClassifier", "Discriminator", "Generator", "GradualStyleEncoder", "LatentClassifier", "PSPModel",
           "ReferenceEditor", "StyleEncoder", "StyleTransformer", "set_ops_impl"]
