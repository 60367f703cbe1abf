"""Panels of a video frame: images to 8-bit, colour maps, labels and the side-by-side layout.

Every function takes and returns (H,W,3) uint8 RGB arrays unless it says otherwise.
"""

from __future__ import annotations

import numpy as np


def to_uint8(image: np.ndarray) -> np.ndarray:
    """(H,W,3) float in [0,1] (clipped) -> (H,W,3) uint8."""
    return np.clip(np.round(np.asarray(image, dtype=np.float32) * 255), 0, 255).astype(np.uint8)


def colour_map(values: np.ndarray, lo: float, hi: float, valid: np.ndarray | None = None) -> np.ndarray:
    """(H,W) float -> (H,W,3) uint8 through OpenCV's turbo map, ``lo`` .. ``hi`` mapped to its two
    ends (values outside clipped; a fixed range keeps the colours of a video's frames comparable);
    pixels where ``valid`` (H,W) bool is False are black."""
    import cv2

    scaled = (np.asarray(values, dtype=np.float32) - lo) / max(hi - lo, 1e-12)
    grey = np.clip(np.round(scaled * 255), 0, 255).astype(np.uint8)
    rgb = cv2.applyColorMap(grey, cv2.COLORMAP_TURBO)[..., ::-1]
    if valid is not None:
        rgb = np.where(valid[..., None], rgb, 0).astype(np.uint8)
    return np.ascontiguousarray(rgb)


def shrink(image: np.ndarray, max_height: int, max_width: int) -> np.ndarray:
    """Resized (area averaging, keeping its aspect) to at most ``max_height`` rows and ``max_width``
    columns; never enlarged (that would add bytes, not detail)."""
    import cv2

    h, w = image.shape[:2]
    scale = min(1.0, max_height / h, max_width / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return image if size == (w, h) else cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def label(image: np.ndarray, text: str) -> np.ndarray:
    """A copy of ``image`` with ``text`` in white on a dark strip at its top left, sized to the image."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    h = out.shape[0]
    scale = max(0.3, h / 480)
    thick = max(1, round(scale * 1.5))
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, th // 3)
    out[: th + base + 2 * pad, : tw + 2 * pad] //= 3
    cv2.putText(out, text, (pad, pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return out


def side_by_side(panels: list[np.ndarray]) -> np.ndarray:
    """Panels of one height -> one (H, sum of widths, 3) frame, left to right."""
    return np.concatenate(panels, axis=1)
