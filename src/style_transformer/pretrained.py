"""The default models that ship inside the package (``style_transformer/weights/``).

They were trained here, by this project's own trainers, on the procedural face domain
(``data/synthetic.py``); ``weights/README.md`` records the exact commands and the training logs'
summaries. Everything runs offline: nothing is ever downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from .checkpoints.official import CheckpointError
from .utils import PathLike


WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"

DEFAULT_FILES: Dict[str, str] = {
    "style_transformer": "faces64_style_transformer.safetensors",
    # the shipped generator: what generate, eval-generator and train-encoder use by default
    "generator": "faces64_generator.safetensors",
    # the generator the shipped encoder and editing models were trained for: the default pipeline
    # renders with it, and the commands that work on the shipped encoder's codes default to it. It is
    # the encoder file's own decoder (the synthesis network it was trained against, frozen, and its
    # fine-tuned mapping), so the shipped generator can move on without the encoder's codes changing
    "encoder_generator": "faces64_style_transformer.safetensors",
    "attribute_classifier": "faces64_attribute_classifier.safetensors",
}
# the editing models of the default generator: a folder (directions, W+ classifier, reference editors)
EDITING_DIR = "faces64_editing"

# Seeds of the rendered-face datasets (``dataset synth --seed``): the default models were trained on
# TRAIN_SEED only; TEST_SEED faces are held out (the demo and the reported encoder figures use them).
TRAIN_SEED = 1000
TEST_SEED = 4000


def default_path(kind: str) -> Path:
    """Path of the shipped default model of ``kind`` (``"style_transformer"``, ``"generator"``,
    ``"encoder_generator"``, ``"attribute_classifier"``).

    Raises:
        CheckpointError: no default of that kind, or its file is missing from the install.
    """
    if kind not in DEFAULT_FILES:
        raise CheckpointError(f"no shipped default {kind.replace('_', ' ')}; pass a checkpoint path")
    path = WEIGHTS_DIR / DEFAULT_FILES[kind]
    if not path.is_file():
        raise CheckpointError(f"the shipped default {kind.replace('_', ' ')} is missing ({path}); "
                              "reinstall the package or pass a checkpoint path")
    return path


@dataclass(frozen=True)
class ModelFiles:
    """Which files a pipeline loads (``resolve_models``)."""

    checkpoint: Optional[Path]
    generator: Optional[Path]
    editing: Optional[Path]


def resolve_models(checkpoint: Optional[PathLike] = None, generator: Optional[PathLike] = None,
                   editing: Optional[PathLike] = None, encoder: bool = True) -> ModelFiles:
    """The one rule for the default models and the checkpoint/generator pairing.

    With an encoder (``encoder=True``): no ``checkpoint`` means the shipped encoder, the generator it was
    trained for and (when ``editing`` is None) the shipped editing folder; a ``generator`` without a
    ``checkpoint`` is a ``UsageError`` (the shipped encoder's codes belong to its own generator).
    Without one (``encoder=False``, e.g. ``generate``): no ``generator`` means the shipped generator.
    """
    from .errors import UsageError

    path = (lambda x: None if x is None else Path(x))
    if not encoder:
        return ModelFiles(None, path(generator) or default_path("generator"), path(editing))
    if checkpoint is None:
        if generator is not None:
            raise UsageError("--generator needs --checkpoint (the shipped encoder is trained for the shipped generator)")
        if editing is None and (WEIGHTS_DIR / EDITING_DIR / "editing.json").is_file():
            editing = WEIGHTS_DIR / EDITING_DIR
        return ModelFiles(default_path("style_transformer"), default_path("encoder_generator"), path(editing))
    return ModelFiles(path(checkpoint), path(generator), path(editing))


def load_default(kind: str):
    """Loads the shipped default model of ``kind`` (float32, eval mode, CPU)."""
    from .checkpoints import load_model

    return load_model(default_path(kind), kind="generator" if kind == "encoder_generator" else kind)


def default_editing_dir() -> Path:
    """The shipped editing folder of the default generator.

    Raises:
        CheckpointError: the package has none.
    """
    path = WEIGHTS_DIR / EDITING_DIR
    if not (path / "editing.json").is_file():
        raise CheckpointError(f"the shipped default editing models are missing ({path}); pass an editing folder "
                              "(what `style-transformer train-editor` writes)")
    return path
