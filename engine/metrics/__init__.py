"""Metrics, registered by name: ``fid`` (with a labelled download-free fallback ``rfid``), ``psnr``,
``ssim``; see ``engine.metrics.evaluate`` for how a run scores images."""

from engine.metrics.features import FeatureExtractor, random_extractor, resolve_extractor
from engine.metrics.frechet import (RealStatistics, frechet_distance, frechet_to_real, gaussian_stats,
                                    load_real_statistics, load_stats, save_stats)
from engine.metrics.image_quality import psnr, ssim
from engine.metric_names import HIGHER_IS_BETTER

__all__ = ["HIGHER_IS_BETTER", "FeatureExtractor", "RealStatistics", "frechet_distance", "frechet_to_real",
           "gaussian_stats", "load_real_statistics", "load_stats", "psnr",
           "random_extractor", "resolve_extractor", "save_stats", "ssim"]
