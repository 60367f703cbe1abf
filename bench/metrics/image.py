"""Full-image and masked PSNR / SSIM on float images in [0, 1].

SSIM calls scikit-image so that both variants match the field's reference implementation exactly:
``ssim`` is skimage's default (7x7 uniform window, sample covariance) and ``ssim_gauss`` the
11x11 Gaussian window with sigma 1.5 (population covariance), as in Wang et al. 2004.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

SSIM_VARIANTS = {
    "ssim": {},
    "ssim_gauss": {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False},
}


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ValueError(f"images must share one (H,W,C) shape, got {pred.shape} and {gt.shape}")


def psnr(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR in dB of (H,W,C) images; mean squared error over all pixels and channels (float64)."""
    _check_pair(pred, gt)
    mse = np.mean((pred.astype(np.float64) - gt.astype(np.float64)) ** 2)
    return float(10.0 * np.log10(data_range**2 / mse)) if mse > 0 else float("inf")


def ssim_map(pred: np.ndarray, gt: np.ndarray, variant: str = "ssim", data_range: float = 1.0):
    """(mean SSIM as skimage reports it, (H,W) SSIM map averaged over channels)."""
    _check_pair(pred, gt)
    mean, full = structural_similarity(
        pred.astype(np.float64), gt.astype(np.float64), channel_axis=-1, data_range=data_range,
        full=True, **SSIM_VARIANTS[variant],
    )
    return float(mean), full.mean(axis=-1)


def ssim(pred: np.ndarray, gt: np.ndarray, variant: str = "ssim", data_range: float = 1.0) -> float:
    """Mean SSIM of (H,W,C) images, identical to skimage's ``structural_similarity``."""
    return ssim_map(pred, gt, variant, data_range)[0]


def masked_psnr(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, data_range: float = 1.0) -> float | None:
    """PSNR over the mask (D2RF): MSE = sum((a-b)^2 m) / (C sum(m)); None for an empty mask.

    pred, gt: (H,W,C); mask: (H,W) in {0,1} (soft weights also work).
    """
    _check_pair(pred, gt)
    m = mask.astype(np.float64)[..., None]
    denom = m.sum() * pred.shape[-1]
    if denom <= 0:
        return None
    mse = float(((pred.astype(np.float64) - gt.astype(np.float64)) ** 2 * m).sum() / denom)
    return float(10.0 * np.log10(data_range**2 / mse)) if mse > 0 else float("inf")


def masked_mean(values: np.ndarray, mask: np.ndarray) -> float | None:
    """Mean of an (H,W) map over an (H,W) mask; None for an empty mask."""
    m = mask.astype(np.float64)
    total = m.sum()
    return None if total <= 0 else float((values * m).sum() / total)
