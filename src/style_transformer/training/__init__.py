"""Training loops."""

from .gan import GAN_PRESETS, GANTrainConfig, GANTrainer, TrainingError, gan_preset

__all__ = ["GAN_PRESETS", "GANTrainConfig", "GANTrainer", "TrainingError", "gan_preset"]
