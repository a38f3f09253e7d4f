"""Training loops."""

from .common import TrainingError
from .encoder import ENCODER_PRESETS, EncoderTrainConfig, EncoderTrainer, encoder_preset, psnr
from .gan import GAN_PRESETS, GANTrainConfig, GANTrainer, gan_preset

__all__ = ["ENCODER_PRESETS", "EncoderTrainConfig", "EncoderTrainer", "GAN_PRESETS", "GANTrainConfig", "GANTrainer",
           "TrainingError", "encoder_preset", "gan_preset", "psnr"]
