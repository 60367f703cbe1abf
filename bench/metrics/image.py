"""Full-image and masked PSNR / SSIM on float images in [0, 1].

Three SSIM variants call scikit-image with every argument explicit, so that each reproduces one
evaluation script exactly whatever scikit-image's defaults are (they changed in 0.20):

- ``ssim``: 7x7 uniform window, sample covariance, data range 1 (this project's convention; D2RF's
  call with ``data_range=1.0``; dydeblur train.py's ``use_skimage_ssim=True`` call).
- ``ssim_gauss``: 11x11 Gaussian window, sigma 1.5, population covariance, data range 1
  (Wang et al. 2004). Not the 3DGS SSIM below: scikit-image filters with reflected borders and
  averages only the pixels at least 5 from the border.
- ``ssim_r2``: 7x7 uniform window, sample covariance, data range 2: what scikit-image < 0.20
  computes for float images when no ``data_range`` is passed (it takes the float dtype's range
  -1..1), i.e. DyBluRF's and Deblur4DGS's ``structural_similarity(gt, x, multichannel=True)``.

The fourth, ``ssim_3dgs``, is the training SSIM of 3D Gaussian Splatting (``utils/loss_utils.py``
``ssim``), which dydeblur's ``metrics.py`` ``evaluate`` reports: computed here with numpy/scipy
(ssim_3dgs_map).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

SSIM_VARIANTS = {
    "ssim": {"win_size": 7, "gaussian_weights": False, "use_sample_covariance": True, "data_range": 1.0},
    "ssim_gauss": {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False, "data_range": 1.0},
    "ssim_r2": {"win_size": 7, "gaussian_weights": False, "use_sample_covariance": True, "data_range": 2.0},
}
SSIM_3DGS = "ssim_3dgs"
# 3DGS utils/loss_utils.py ssim(): an 11-tap Gaussian of sigma 1.5 (taps normalised to sum 1) applied
# per channel as a "same"-size convolution with zero padding, K1 = 0.01 and K2 = 0.03 at data range 1
# (C1 = 0.01^2, C2 = 0.03^2), the SSIM map averaged over every pixel and channel, borders included.
SSIM_3DGS_ARGS = {"win_size": 11, "sigma": 1.5, "padding": "zeros", "borders": "included", "data_range": 1.0,
                  "K1": 0.01, "K2": 0.03}
SSIM_METRICS = (*SSIM_VARIANTS, SSIM_3DGS)


def _check_pair(pred: np.ndarray, gt: np.ndarray) -> None:
    if pred.shape != gt.shape or pred.ndim != 3:
        raise ValueError(f"images must share one (H,W,C) shape, got {pred.shape} and {gt.shape}")


def psnr(pred: np.ndarray, gt: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR in dB of (H,W,C) images; mean squared error over all pixels and channels (float64)."""
    _check_pair(pred, gt)
    mse = np.mean((pred.astype(np.float64) - gt.astype(np.float64)) ** 2)
    return float(10.0 * np.log10(data_range**2 / mse)) if mse > 0 else float("inf")


def gaussian_taps(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """(size,) Gaussian taps centred on index size // 2, normalised to sum 1 (3DGS ``gaussian``)."""
    x = np.arange(size, dtype=np.float64) - size // 2
    taps = np.exp(-(x**2) / (2.0 * sigma**2))
    return taps / taps.sum()


def ssim_3dgs_map(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(H,W,C) SSIM map of 3DGS's training SSIM (SSIM_3DGS_ARGS) of (H,W,C) images, in float64.

    The 2D window is the outer product of gaussian_taps, so filtering rows then columns, each with
    zeros outside the image, equals the 2D zero-padded convolution of the peer code.
    """
    from scipy.ndimage import correlate1d

    _check_pair(pred, gt)
    a = SSIM_3DGS_ARGS
    taps = gaussian_taps(a["win_size"], a["sigma"])

    def local_mean(img):  # channels independent: the filter runs along axes 0 and 1 only
        return correlate1d(correlate1d(img, taps, axis=0, mode="constant"), taps, axis=1, mode="constant")

    x, y = pred.astype(np.float64), gt.astype(np.float64)
    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    cov = local_mean(x * y) - mu_x * mu_y
    c1, c2 = (a["K1"] * a["data_range"]) ** 2, (a["K2"] * a["data_range"]) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim_map(pred: np.ndarray, gt: np.ndarray, variant: str = "ssim"):
    """(mean SSIM as its script reports it, (H,W) SSIM map averaged over channels) of ``variant``,
    one of SSIM_METRICS; pred, gt (H,W,C)."""
    if variant == SSIM_3DGS:
        full = ssim_3dgs_map(pred, gt)
        return float(full.mean()), full.mean(axis=-1)
    _check_pair(pred, gt)
    mean, full = structural_similarity(pred.astype(np.float64), gt.astype(np.float64), channel_axis=-1,
                                       full=True, **SSIM_VARIANTS[variant])
    return float(mean), full.mean(axis=-1)


def ssim(pred: np.ndarray, gt: np.ndarray, variant: str = "ssim") -> float:
    """Mean SSIM of (H,W,C) images: skimage's ``structural_similarity`` with the variant's arguments,
    or for ``ssim_3dgs`` the mean of ssim_3dgs_map."""
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


QUANTISE = ("round", "floor")


def quantise_8bit(img: np.ndarray, rounding: str = "round") -> np.ndarray:
    """A float image in [0,1] as an 8-bit PNG would hold it, uint8 of the same shape.

    ``round``: round(clip(x) * 255). ``floor``: NeRF code's ``to8b``,
    ``(255 * np.clip(x, 0, 1)).astype(np.uint8)``, which truncates; computed in float32 as those
    scripts' arrays are, so that a value a hair below k/255 falls to k-1 exactly as there.
    """
    if rounding == "floor":
        return (np.clip(np.asarray(img, dtype=np.float32), 0, 1) * np.float32(255)).astype(np.uint8)
    if rounding != "round":
        raise ValueError(f"rounding={rounding!r}: expected one of {', '.join(QUANTISE)}")
    return np.clip(np.round(np.asarray(img, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def saved_image(img: np.ndarray, rounding: str = "round") -> np.ndarray:
    """The float32 image scored by a script that saves the render as 8-bit PNG (quantise_8bit with
    ``rounding``) and reads it back /255."""
    return quantise_8bit(img, rounding).astype(np.float32) / 255.0


def match_size(gt: np.ndarray, height: int, width: int, interpolation: str, library: str = "cv2") -> np.ndarray:
    """Resize an (H,W[,C]) GT image or mask to the render size with the protocol's filter, in the
    array's own dtype (uint8 stays uint8, as in the peers' scripts). ``cv2``: cv2.resize with the
    ``cv2.<interpolation>`` constant; ``pil``: Image.resize with ``Image.Resampling.<interpolation>``
    passed explicitly (uint8 images only)."""
    if gt.shape[:2] == (height, width):
        return gt
    if library == "pil":
        from PIL import Image

        return np.asarray(Image.fromarray(gt).resize((width, height), resample=Image.Resampling[interpolation]))
    import cv2

    return cv2.resize(gt, (width, height), interpolation=getattr(cv2, interpolation))
