"""Full-image and masked PSNR / SSIM on float images in [0, 1].

SSIM calls scikit-image with every argument explicit, so that each named variant reproduces one
evaluation script exactly whatever scikit-image's defaults are (they changed in 0.20):

- ``ssim``: 7x7 uniform window, sample covariance, data range 1 (this project's convention; D2RF's
  call with ``data_range=1.0``).
- ``ssim_gauss``: 11x11 Gaussian window, sigma 1.5, population covariance, data range 1
  (Wang et al. 2004; dydeblur's metric script).
- ``ssim_r2``: 7x7 uniform window, sample covariance, data range 2: what scikit-image < 0.20
  computes for float images when no ``data_range`` is passed (it takes the float dtype's range
  -1..1), i.e. DyBluRF's and Deblur4DGS's ``structural_similarity(gt, x, multichannel=True)``.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

SSIM_VARIANTS = {
    "ssim": {"win_size": 7, "gaussian_weights": False, "use_sample_covariance": True, "data_range": 1.0},
    "ssim_gauss": {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 1.0},
    "ssim_r2": {"win_size": 7, "gaussian_weights": False, "use_sample_covariance": True, "data_range": 2.0},
}


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ValueError(f"images must share one (H,W,C) shape, got {pred.shape} and {gt.shape}")


def psnr(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR in dB of (H,W,C) images; mean squared error over all pixels and channels (float64)."""
    _check_pair(pred, gt)
    mse = np.mean((pred.astype(np.float64) - gt.astype(np.float64)) ** 2)
    return float(10.0 * np.log10(data_range**2 / mse)) if mse > 0 else float("inf")


def ssim_map(pred: np.ndarray, gt: np.ndarray, variant: str = "ssim"):
    """(mean SSIM as skimage reports it, (H,W) SSIM map averaged over channels) of SSIM_VARIANTS[variant]."""
    _check_pair(pred, gt)
    mean, full = structural_similarity(pred.astype(np.float64), gt.astype(np.float64), channel_axis=-1,
                                       full=True, **SSIM_VARIANTS[variant])
    return float(mean), full.mean(axis=-1)


def ssim(pred: np.ndarray, gt: np.ndarray, variant: str = "ssim") -> float:
    """Mean SSIM of (H,W,C) images, identical to skimage's ``structural_similarity`` with the variant's arguments."""
    return ssim_map(pred, gt, variant)[0]


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


def quantise_8bit(img: np.ndarray) -> np.ndarray:
    """A float image in [0,1] as an 8-bit PNG would hold it: round(clip(x) * 255) as uint8."""
    return np.clip(np.round(np.asarray(img, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def saved_image(img: np.ndarray) -> np.ndarray:
    """The float32 image scored by a script that saves the render as 8-bit PNG and reads it back /255."""
    return quantise_8bit(img).astype(np.float32) / 255.0
