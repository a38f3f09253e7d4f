"""Editing W+ codes: linear directions (InterFaceGAN, GANSpace, SeFa, published boundaries)."""

from .directions import (Direction, DirectionError, classify_renders, fit_boundary, ganspace, judge_codes,
                         labelled_samples, load_boundary, load_directions, mixed_codes, save_directions, sefa,
                         w_covariance)

__all__ = ["Direction", "DirectionError", "classify_renders", "fit_boundary", "ganspace", "labelled_samples",
           "load_boundary", "load_directions", "mixed_codes", "save_directions", "sefa", "w_covariance",
           "judge_codes"]  # judge_codes: the old name of classify_renders (one release)
