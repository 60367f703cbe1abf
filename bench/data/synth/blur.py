"""Blur formation for the synthetic scenes.

Defocus: thin lens, circle-of-confusion radius ``r = kappa * |1/z - 1/z_focus|`` pixels (kappa is
aperture x focal / pixel pitch, folded into one constant), a disc PSF per depth layer, layers
composited back to front ("over") and normalised by the accumulated coverage so that no dark halo
appears where a layer has holes.
Motion: the blurry frame is the mean of S exposure sub-frame renders (done by the generator); the
per-pixel description stored with the scene is the displacement of each pixel's surface point at
each sub-frame.
"""

from __future__ import annotations

import numpy as np

LAYER_STEP = 1.0  # CoC bin width in pixels of the (full-resolution) image being blurred


def disc_kernel(radius: float) -> np.ndarray:
    """Anti-aliased normalised disc of ``radius`` pixels: weight = clip(r + 0.5 - distance, 0, 1)."""
    half = int(np.ceil(radius + 0.5))
    y, x = np.mgrid[-half:half + 1, -half:half + 1]
    w = np.clip(radius + 0.5 - np.hypot(x, y), 0.0, 1.0)
    return (w / w.sum()).astype(np.float32)


def _filter(img: np.ndarray, radius: float) -> np.ndarray:
    import cv2

    if radius < 0.25:
        return img
    return cv2.filter2D(img, -1, disc_kernel(radius), borderType=cv2.BORDER_REFLECT)


def defocus_layers(rgb: np.ndarray, signed_coc: np.ndarray) -> np.ndarray:
    """Layered defocus of an (H,W,3) image with per-pixel signed CoC (H,W) in pixels.

    Sign: negative in front of the focus plane, positive behind; layers are drawn far to near.
    """
    bins = np.round(signed_coc / LAYER_STEP).astype(np.int64)
    rgb = rgb.astype(np.float32)
    out = np.zeros_like(rgb)
    acc = np.zeros(rgb.shape[:2], dtype=np.float32)
    layer = np.empty(rgb.shape[:2] + (4,), dtype=np.float32)
    for b in sorted(np.unique(bins), reverse=True):  # far (large positive) first
        mask = bins == b
        layer.fill(0.0)
        layer[mask, :3] = rgb[mask]
        layer[mask, 3] = 1.0
        blurred = _filter(layer, abs(b) * LAYER_STEP)
        alpha = np.clip(blurred[..., 3], 0.0, 1.0)
        out = blurred[..., :3] + (1.0 - alpha)[..., None] * out
        acc = alpha + (1.0 - alpha) * acc
    return out / np.maximum(acc, 1e-6)[..., None]
