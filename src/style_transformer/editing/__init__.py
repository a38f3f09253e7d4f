"""Editing W+ codes: linear directions (InterFaceGAN, GANSpace, SeFa, published boundaries)."""

from .directions import (Direction, DirectionError, fit_boundary, ganspace, judge_codes, labelled_samples,
                         load_boundary, load_directions, mixed_codes, save_directions, sefa,
                         w_covariance)

__all__ = ["Direction", "DirectionError", "fit_boundary", "ganspace", "judge_codes", "labelled_samples",
           "load_boundary", "load_directions", "mixed_codes", "save_directions", "sefa", "w_covariance"]
