"""Frozen dataclass configs: one per model, JSON round-trippable, plus named presets.

A config owns the architecture. Models are built as ``Generator(cfg)``, ``StyleTransformer(cfg)``;
checkpoints store ``cfg.to_dict()`` and models are rebuilt from it before a strict state-dict load.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple, Type, TypeVar

from .errors import UsageError

T = TypeVar("T")

# rosinality/stylegan2-pytorch channel table; entries >= 64 are multiplied by channel_multiplier.
_ROSINALITY_CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}


class ConfigError(UsageError, ValueError):
    """A config value is out of range or inconsistent."""


def _to_jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_to_jsonable(v) for v in value]
    return value


class _ConfigMixin:
    def to_dict(self) -> Dict[str, Any]:
        """Returns the config as a dict of JSON types (nested configs as dicts)."""
        return _to_jsonable(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls: Type[T], data: Dict[str, Any]) -> T:
        """Builds the config from ``to_dict`` output; unknown keys are an error."""
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = set(data) - set(names)
        if unknown:
            raise ConfigError(f"{cls.__name__}: unknown config keys {sorted(unknown)}")
        kwargs = {}
        for name, value in data.items():
            default = names[name].default
            if default is dataclasses.MISSING and names[name].default_factory is not dataclasses.MISSING:
                default = names[name].default_factory()
            if isinstance(default, GeneratorConfig) and isinstance(value, dict):
                value = generator_config_from_dict(value)
            elif dataclasses.is_dataclass(default) and isinstance(value, dict):
                value = type(default).from_dict(value)
            elif isinstance(value, list):
                value = tuple(value)
            kwargs[name] = value
        return cls(**kwargs)

    @classmethod
    def from_json(cls: Type[T], text: str) -> T:
        return cls.from_dict(json.loads(text))


@dataclass(frozen=True)
class GeneratorConfig(_ConfigMixin):
    """StyleGAN2 generator/discriminator architecture (rosinality layout).

    Attributes:
        size: output resolution, a power of two in [32, 1024].
        style_dim: width of z and w.
        n_mlp: number of mapping layers.
        channel_multiplier: rosinality's multiplier for resolutions >= 64.
        channels: explicit widths for resolutions 4, 8, ..., size (overrides the table); empty = table.
        lr_mlp: learning-rate multiplier of the mapping network (equalized lr).
        blur_kernel: 1-D FIR taps of the up/down-sampling filter.
        c_dim: label width of a conditional generator and discriminator (0: unconditional). As in
            NVIDIA's conditional StyleGAN2, the generator's mapping embeds the label and joins it to z,
            and the discriminator projects the embedded label onto its last features.
        label_names: names of the ``c_dim`` label columns (e.g. attribute names), or empty.
        label_combos: rows of the stored joint label distribution (``Generator.label_dist``) from
            which labels are drawn when sampling without a label; 0 with ``c_dim > 0`` draws one-hot
            classes uniformly.
        z_dim: width of z when it differs from w (NVIDIA's ``z_dim``); 0 = ``style_dim``.
        conv_clamp: NVIDIA's activation clamp: every synthesis layer's activated output and every
            ToRGB output (before the skip sum) is clamped to [-conv_clamp, conv_clamp]; None = none
            (rosinality).
    """

    size: int = 1024
    style_dim: int = 512
    n_mlp: int = 8
    channel_multiplier: int = 2
    channels: Tuple[int, ...] = ()
    lr_mlp: float = 0.01
    blur_kernel: Tuple[int, ...] = (1, 3, 3, 1)
    c_dim: int = 0
    label_names: Tuple[str, ...] = ()
    label_combos: int = 0
    z_dim: int = 0
    conv_clamp: Optional[float] = None

    def __post_init__(self) -> None:
        if self.z_dim < 0:
            raise ConfigError(f"z_dim must be >= 0, got {self.z_dim}")
        if self.conv_clamp is not None and not self.conv_clamp > 0:
            raise ConfigError(f"conv_clamp must be positive or None, got {self.conv_clamp}")
        if self.c_dim < 0 or self.label_combos < 0:
            raise ConfigError("c_dim and label_combos must be >= 0")
        if self.label_names and len(self.label_names) != self.c_dim:
            raise ConfigError(f"label_names has {len(self.label_names)} names for c_dim {self.c_dim}")
        if self.label_combos and not self.c_dim:
            raise ConfigError("label_combos needs c_dim > 0")
        if self.size < 4 or self.size & (self.size - 1):
            raise ConfigError(f"generator size must be a power of two, got {self.size}")
        if not 32 <= self.size <= 1024:
            raise ConfigError(f"generator size must be in [32, 1024], got {self.size}")
        if self.channels and len(self.channels) != self.log_size - 1:
            raise ConfigError(
                f"channels needs {self.log_size - 1} widths (4..{self.size}), got {len(self.channels)}")
        if self.style_dim < 1 or self.n_mlp < 1:
            raise ConfigError("style_dim and n_mlp must be positive")

    @property
    def log_size(self) -> int:
        return int(math.log2(self.size))

    @property
    def conditional(self) -> bool:
        return self.c_dim > 0

    @property
    def num_ws(self) -> int:
        """Number of W+ rows the generator consumes (rosinality ``n_latent``)."""
        return self.log_size * 2 - 2

    @property
    def num_noises(self) -> int:
        return (self.log_size - 2) * 2 + 1

    def channel(self, res: int) -> int:
        """Feature width at resolution ``res``."""
        if self.channels:
            return int(self.channels[int(math.log2(res)) - 2])
        base = _ROSINALITY_CHANNELS[res]
        return base * self.channel_multiplier if res >= 64 else base


# one StyleGAN3 synthesis layer, as NVIDIA builds it: (name, in_channels, out_channels, conv_kernel,
# up_factor, down_factor, up_taps, down_taps, down_radial, (pad_x0, pad_x1, pad_y0, pad_y1), is_torgb)
SG3Layer = Tuple[str, int, int, int, int, int, int, int, bool, Tuple[int, int, int, int], bool]


@dataclass(frozen=True)
class StyleGAN3Config(_ConfigMixin):
    """StyleGAN3 generator (configs T and R, Karras et al. 2021): mapping as StyleGAN2's; synthesis
    from Fourier features through modulated layers with filtered leaky ReLUs.

    The layer geometry (sizes, sampling rates, filter lengths, padding) is designed when NVIDIA's
    code builds a network and is stored here as built; the filters themselves are buffers.

    Attributes:
        architecture: ``"stylegan3-t"`` or ``"stylegan3-r"`` (1x1 convolutions, radial filters).
        size: output resolution.
        style_dim, z_dim, n_mlp, lr_mlp, c_dim, label_names, label_combos: the mapping network, as
            in ``GeneratorConfig`` (``z_dim`` 0 = ``style_dim``).
        input_channels: width of the Fourier-feature input.
        input_size: (width, height) of the input's sampling grid, margin included.
        sampling_rate, bandwidth: of the input's Fourier features.
        layers: the synthesis layers (``SG3Layer`` tuples), the last one the ToRGB.
        conv_clamp: activation clamp of every layer (None: none).
        output_scale: the image is the last layer's output times this.
    """

    architecture: str = "stylegan3-t"
    size: int = 256
    style_dim: int = 512
    z_dim: int = 0
    n_mlp: int = 2
    lr_mlp: float = 0.01
    c_dim: int = 0
    label_names: Tuple[str, ...] = ()
    label_combos: int = 0
    input_channels: int = 512
    input_size: Tuple[int, int] = (36, 36)
    sampling_rate: float = 16.0
    bandwidth: float = 2.0
    layers: Tuple[SG3Layer, ...] = ()
    conv_clamp: Optional[float] = 256.0
    output_scale: float = 0.25

    def __post_init__(self) -> None:
        if self.architecture not in ("stylegan3-t", "stylegan3-r"):
            raise ConfigError(f"architecture must be stylegan3-t or stylegan3-r, got {self.architecture!r}")
        layers = tuple((str(l[0]), *map(int, l[1:8]), bool(l[8]), tuple(int(p) for p in l[9]), bool(l[10]))
                       for l in self.layers)
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        if not layers or not layers[-1][10]:
            raise ConfigError("a StyleGAN3 synthesis network needs its layers, the last one a ToRGB")
        if self.c_dim < 0 or self.label_combos < 0 or self.z_dim < 0 or self.style_dim < 1 or self.n_mlp < 1:
            raise ConfigError("invalid StyleGAN3 mapping sizes")

    @property
    def conditional(self) -> bool:
        return self.c_dim > 0

    @property
    def num_ws(self) -> int:
        """W+ rows: the input's, then one per layer."""
        return len(self.layers) + 1


def generator_config_from_dict(data: Dict[str, Any]):
    """``GeneratorConfig`` or ``StyleGAN3Config`` from ``to_dict`` output (by its ``architecture``)."""
    if str(data.get("architecture", "")).startswith("stylegan3"):
        return StyleGAN3Config.from_dict(data)
    return GeneratorConfig.from_dict(data)


@dataclass(frozen=True)
class EncoderConfig(_ConfigMixin):
    """Style Transformer encoder: IR(-SE) backbone, lateral FPN, query transformer.

    Attributes:
        input_size: side of the square input image.
        input_nc: input channels.
        stem_channels: width of the input convolution.
        stage_channels: width of the 4 backbone stages (each stage halves the resolution).
        stage_units: residual units per stage (IR-SE50: 3, 4, 14, 3).
        se: squeeze-excitation in each unit (``ir_se`` mode) or not (``ir``).
        se_reduction: SE bottleneck ratio.
        n_styles: query tokens, one per W+ row the encoder outputs.
        d_model: token width; equals the generator's style_dim and the last stage's width.
        n_heads: attention heads.
        ffn_dim: hidden width of the feed-forward sublayer.
        z_dim: width of the learned z tokens (the generator's z width when it differs from its w);
            0 = ``d_model``.
        input_height: height of a non-square input (the official cars model reads 192 x 256, resized
            without keeping the aspect); 0 = square ``input_size``.
    """

    input_size: int = 256
    input_nc: int = 3
    stem_channels: int = 64
    stage_channels: Tuple[int, ...] = (64, 128, 256, 512)
    stage_units: Tuple[int, ...] = (3, 4, 14, 3)
    se: bool = True
    se_reduction: int = 16
    n_styles: int = 18
    d_model: int = 512
    n_heads: int = 4
    ffn_dim: int = 1024
    z_dim: int = 0
    input_height: int = 0

    def __post_init__(self) -> None:
        if self.input_height % 16:
            raise ConfigError("input_height must be a multiple of 16")
        if len(self.stage_channels) != 4 or len(self.stage_units) != 4:
            raise ConfigError("stage_channels and stage_units need 4 entries")
        if self.stage_channels[3] != self.d_model:
            raise ConfigError("the last backbone stage must have d_model channels (F1 is used as is)")
        if self.d_model % self.n_heads:
            raise ConfigError("d_model must be divisible by n_heads")
        if self.input_size % 16:
            raise ConfigError("input_size must be a multiple of 16")

    @property
    def input_shape(self) -> Tuple[int, int]:
        """(height, width) of the encoder's input."""
        return (self.input_height or self.input_size, self.input_size)

    @property
    def feature_indices(self) -> Tuple[int, int, int]:
        """Body indices whose outputs are c1 (1/4), c2 (1/8), c3 (1/16 of the input)."""
        ends = [sum(self.stage_units[: i + 1]) - 1 for i in range(4)]
        return ends[1], ends[2], ends[3]


@dataclass(frozen=True)
class StyleTransformerConfig(_ConfigMixin):
    """The inversion model: encoder + frozen StyleGAN2 decoder (+ its ``latent_avg``)."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)

    def __post_init__(self) -> None:
        if self.encoder.d_model != self.generator.style_dim:
            raise ConfigError("encoder.d_model must equal generator.style_dim")

@dataclass(frozen=True)
class PSPConfig(_ConfigMixin):
    """The peer encoders: pSp (``arch="psp"``, one GradualStyleBlock head per W+ row) and e4e
    (``arch="e4e"``, one w plus per-row offsets), on the same IR-SE backbone as the Style Transformer.

    Attributes:
        arch: ``psp`` or ``e4e``.
        encoder: backbone (``stage_*``, ``se``), ``input_size``, ``n_styles`` (heads) and ``d_model`` (w_dim);
            its transformer fields are unused here.
        generator: the StyleGAN2 decoder.
        coarse_ind, middle_ind: heads ``< coarse_ind`` read c3 (1/16), ``< middle_ind`` p2 (1/8), the rest p1.
    """

    arch: str = "psp"
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    coarse_ind: int = 3
    middle_ind: int = 7

    def __post_init__(self) -> None:
        if self.arch not in ("psp", "e4e"):
            raise ConfigError(f"arch must be 'psp' or 'e4e', got {self.arch!r}")
        if self.encoder.d_model != self.generator.style_dim:
            raise ConfigError("encoder.d_model must equal generator.style_dim")
        if not 0 < self.coarse_ind <= self.middle_ind <= self.encoder.n_styles:
            raise ConfigError("need 0 < coarse_ind <= middle_ind <= n_styles")


@dataclass(frozen=True)
class AttributeClassifierConfig(_ConfigMixin):
    """Image attribute classifier: a small CNN with one logit per binary attribute.

    It judges images, never latents, so it can score any generator or encoder (attribute
    frequencies of samples, attribute agreement of reconstructions and edits).

    Attributes:
        attributes: attribute names, in logit order (e.g. CelebA names).
        size: input side; other sizes are resized (bilinear, antialiased) first.
        channels: widths of the stages; each stage is a 3x3 conv and a stride-2 3x3 conv (BN, ReLU).
    """

    attributes: Tuple[str, ...] = ()
    size: int = 64
    channels: Tuple[int, ...] = (16, 32, 64, 128)

    def __post_init__(self):
        if not self.attributes:
            raise ConfigError("AttributeClassifierConfig needs at least one attribute name")
        if len(set(self.attributes)) != len(self.attributes):
            raise ConfigError(f"duplicate attribute names in {self.attributes}")
        if self.size < 8 or not self.channels or any(c < 1 for c in self.channels):
            raise ConfigError(f"invalid classifier size {self.size} or channels {self.channels}")



# CelebA's 40 attributes in list_attr_celeba.txt order: the official LCNet_40's logit order.
CELEBA_ATTRIBUTES: Tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young")


@dataclass(frozen=True)
class LatentClassifierConfig(_ConfigMixin):
    """W+ attribute classifier of the paper (the official LCNet_40): W+ flattened, an MLP with leaky
    ReLUs, then per attribute a linear embedding and a logit from it.

    Attributes:
        attributes: names, in logit order (official: ``CELEBA_ATTRIBUTES``).
        num_ws, w_dim: the W+ shape it reads (official: 18 x 512).
        hidden: widths of the shared MLP (official: 2048, 512).
        embed_dim: width of each attribute's embedding (official: 32).
        negative_slope: of the leaky ReLUs (official: 0.2).
    """

    attributes: Tuple[str, ...] = CELEBA_ATTRIBUTES
    num_ws: int = 18
    w_dim: int = 512
    hidden: Tuple[int, ...] = (2048, 512)
    embed_dim: int = 32
    negative_slope: float = 0.2

    def __post_init__(self):
        if not self.attributes or len(set(self.attributes)) != len(self.attributes):
            raise ConfigError(f"LatentClassifierConfig needs distinct attribute names, got {self.attributes}")
        if self.num_ws < 1 or self.w_dim < 1 or not self.hidden or self.embed_dim < 1:
            raise ConfigError("invalid latent classifier sizes")


@dataclass(frozen=True)
class ReferenceEditorConfig(_ConfigMixin):
    """Reference-based editing block of the paper: one post-norm transformer layer whose queries are
    the target's W+ and whose keys/values are the reference's W+ (official: d 512, 4 heads, FFN 1024).

    Attributes:
        attribute: the attribute it transfers from the reference (one editor per attribute).
        residual: output ``ws_target + block(...)`` instead of ``block(...)`` (the official block outputs
            the codes directly; a residual editor starts as the identity when its last norm's affine is
            zero, which is how this project's trainer starts it).
    """

    d_model: int = 512
    n_heads: int = 4
    ffn_dim: int = 1024
    attribute: str = ""
    residual: bool = False

    def __post_init__(self):
        if self.d_model % self.n_heads:
            raise ConfigError("d_model must be divisible by n_heads")


# The one registry of architectures: every model the project ships, trains or loads, by name.
# Training presets (GAN_PRESETS, ENCODER_PRESETS) name these instead of repeating their numbers.
_TINY_GENERATOR = GeneratorConfig(size=32, style_dim=32, n_mlp=2, channels=(32, 32, 16, 16))
_TINY_ENCODER = EncoderConfig(input_size=32, stem_channels=8, stage_channels=(8, 16, 24, 32), stage_units=(1, 1, 1, 1),
                              se_reduction=4, n_styles=8, d_model=32, n_heads=4, ffn_dim=64)
# the shipped 64x64 face models: a StyleGAN2 sized for ~30 img/s of training on a 2-core CPU, and a
# ~6 M-parameter encoder (10 queries, one per W+ row)
_SMALL64_GENERATOR = GeneratorConfig(size=64, style_dim=256, n_mlp=4, channels=(256, 256, 256, 128, 64))
_FACES64_GENERATOR = GeneratorConfig(size=64, style_dim=256, n_mlp=4, channels=(192, 192, 128, 64, 32))
_FACES64_ENCODER = EncoderConfig(input_size=64, stem_channels=32, stage_channels=(32, 64, 128, 256),
                                 stage_units=(2, 2, 4, 2), se_reduction=8, n_styles=10, d_model=256, n_heads=4,
                                 ffn_dim=512)

MODEL_PRESETS: Dict[str, Any] = {
    # The paper's FFHQ model: IR-SE50, 18 queries, 1024x1024 StyleGAN2.
    "official-ffhq": StyleTransformerConfig(),
    # The official 256-output layout (e.g. cars/churches-size generators; the parity checkpoint).
    "official-256": StyleTransformerConfig(generator=GeneratorConfig(size=256)),
    # The shipped default models (src/style_transformer/weights/).
    "faces-64": StyleTransformerConfig(encoder=_FACES64_ENCODER, generator=_FACES64_GENERATOR),
    "faces-64-generator": _FACES64_GENERATOR,
    "faces-64-classifier": AttributeClassifierConfig(
        attributes=("Smiling", "Mouth_Slightly_Open", "Eyeglasses", "Bangs", "No_Beard", "Blond_Hair",
                    "Black_Hair", "Wearing_Hat", "Pale_Skin"), size=64, channels=(16, 32, 64, 128)),
    # Small models for tests and quick experiments.
    "tiny": StyleTransformerConfig(encoder=_TINY_ENCODER, generator=_TINY_GENERATOR),
    "tiny-32-generator": _TINY_GENERATOR,
    "small-64": StyleTransformerConfig(encoder=_FACES64_ENCODER, generator=_SMALL64_GENERATOR),
    "small-64-generator": _SMALL64_GENERATOR,
    # StyleGAN2 at the official sizes (rosinality channel table, multiplier 2)
    "ffhq-256-generator": GeneratorConfig(size=256),
    "ffhq-1024-generator": GeneratorConfig(),
}
# the Style Transformer presets (the encoder + generator pairs), as before
PRESETS: Dict[str, StyleTransformerConfig] = {k: v for k, v in MODEL_PRESETS.items()
                                              if isinstance(v, StyleTransformerConfig)}


def model_preset(name: str):
    """The config of a named architecture (``MODEL_PRESETS``); an unknown name is a ``ConfigError``
    that lists the names."""
    try:
        return MODEL_PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown model preset {name!r}; choose from {', '.join(sorted(MODEL_PRESETS))}") from None


def list_models() -> List[str]:
    """The names ``model_preset`` and ``create_model`` take (``MODEL_PRESETS``), sorted."""
    return sorted(MODEL_PRESETS)


def get_preset(name: str) -> StyleTransformerConfig:
    """Deprecated alias of ``model_preset`` restricted to the inversion models (``PRESETS``); kept for
    one release."""
    import warnings

    warnings.warn("get_preset is deprecated: use model_preset (and list_models for the names)", DeprecationWarning,
                  stacklevel=2)
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}") from None
