"""The old name of ``checkpoints.official`` (reading the official implementations' checkpoint formats),
kept for one release."""

from .official import *  # noqa: F401,F403
from .official import CheckpointError, torch_load_safe  # noqa: F401
