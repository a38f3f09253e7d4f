"""Metrics: FID with an offline pretrained InceptionV3."""

from .fid import FIDError, InceptionFeatures, fid_folders, folder_statistics, frechet_distance, statistics

__all__ = ["FIDError", "InceptionFeatures", "fid_folders", "folder_statistics", "frechet_distance", "statistics"]
