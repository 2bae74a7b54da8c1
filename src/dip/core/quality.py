"""Image quality metrics on (C, H, W) float images in [0, 1], via scikit-image."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


def psnr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """PSNR in dB over the whole image (data range 1)."""
    return float(peak_signal_noise_ratio(reference, np.clip(estimate, 0, 1), data_range=1.0))


def psnr_known(observed: np.ndarray, estimate: np.ndarray, known: np.ndarray) -> float:
    """PSNR in dB over the known pixels only (``known`` is an (H, W) bool mask)."""
    return float(peak_signal_noise_ratio(observed[:, known], np.clip(estimate[:, known], 0, 1), data_range=1.0))


def psnr_missing(reference: np.ndarray, estimate: np.ndarray, known: np.ndarray) -> float | None:
    """PSNR in dB over the missing pixels only (``known`` False), against the ground truth: how well they were
    filled in, without the known half that the whole-image PSNR also counts. None when no pixel is missing."""
    missing = ~np.asarray(known, dtype=bool)
    if not missing.any():
        return None
    return float(peak_signal_noise_ratio(reference[:, missing], np.clip(estimate[:, missing], 0, 1), data_range=1.0))


def ssim(reference: np.ndarray, estimate: np.ndarray) -> float:
    """SSIM (scikit-image defaults: 7x7 window), channels averaged for colour images."""
    est = np.clip(estimate, 0, 1)
    if reference.shape[0] == 1:
        return float(structural_similarity(reference[0], est[0], data_range=1.0))
    return float(structural_similarity(reference, est, data_range=1.0, channel_axis=0))
