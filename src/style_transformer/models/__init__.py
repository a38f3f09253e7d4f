"""Models: StyleGAN2 (generator, discriminator), StyleGAN3 (generator), the Style Transformer encoder, the image attribute
classifier, the editing models (W+ attribute classifier, reference editor)."""

from .classifier import AttributeClassifier
from .editing import LatentClassifier, ReferenceEditor
from .encoder import StyleEncoder, StyleTransformer
from .psp import GradualStyleEncoder, PSPModel
from .stylegan2 import Discriminator, Generator, StyleGenerator, set_ops_impl
from .stylegan3 import StyleGAN3Generator, build_generator

__all__ = ["AttributeClassifier", "Discriminator", "Generator", "GradualStyleEncoder", "LatentClassifier", "PSPModel",
           "ReferenceEditor", "StyleEncoder", "StyleGAN3Generator", "StyleGenerator", "StyleTransformer", "build_generator",
           "set_ops_impl"]
