"""Helpers shared by the layout loaders (their checks are in bench.data.layouts)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from bench.data.io import read_image
from bench.data.scene import Cameras, LazyImages, Views


def frame_times(n: int) -> torch.Tensor:
    """(n,) float32 times ``k / (n - 1)`` (0 when n == 1): the project-wide convention."""
    if n <= 1:
        return torch.zeros(n, dtype=torch.float32)
    return torch.arange(n, dtype=torch.float32) / (n - 1)


def lazy_images(paths: Sequence[Path], size: tuple[int, int]) -> LazyImages:
    """Images read on access, INTER_AREA-resized to ``size`` = (W,H) when they differ."""
    paths = list(paths)
    return LazyImages(len(paths), lambda i: torch.from_numpy(read_image(paths[i], size)), sources=paths)


def make_cameras(K: np.ndarray, c2w: np.ndarray, width: int, height: int) -> Cameras:
    """Cameras from (N,3,3) K and (N,4,4) OpenCV camera-to-world (float64 inverted, then float32)."""
    w2c = np.linalg.inv(c2w)
    return Cameras(K=torch.from_numpy(K).float(), w2c=torch.from_numpy(w2c).float(), width=width, height=height)


def make_views(names, cameras, images, frame_index, depth=None, motion_mask=None) -> Views:
    """Assemble Views; frame_index (N,) ints of the left partner, times from ``n_train``."""
    idx = torch.as_tensor(np.asarray(frame_index), dtype=torch.long)
    return Views(names=list(names), cameras=cameras, images=images, frame_index=idx, time=torch.zeros(len(idx)),
                 depth=depth, motion_mask=motion_mask)


def set_times(train: Views, test: Views) -> None:
    """Fill ``time`` of both view sets from the frame indices and the number of training frames."""
    times = frame_times(len(train))
    train.time = times[train.frame_index]
    test.time = times[test.frame_index]


RELATIVE_PERCENTILES = (2.0, 98.0)


def depth_from_disparity(disp: np.ndarray, scale: float, mode: str = "inverse_depth",
                         bounds: tuple[float, float] | None = None) -> np.ndarray:
    """Depth in scene units (0 = invalid) from an (H,W) disparity map.

    ``inverse_depth``: the disparity is 1/depth in raw (pose) units, so a point at raw depth d
    has scene depth ``scale * d = scale / disp`` (exact; the synthetic scenes use it).
    ``relative``: the disparity of a monocular estimator, known only up to an affine map. Per
    frame, ``a * disp + b`` is fitted so that the 2nd / 98th percentiles of the disparity land on
    1/far / 1/near of that camera's scaled LLFF ``bounds``; depth = 1 / (a * disp + b), clipped to
    the bounds. [ours] The released DyBluRF and D2RF disparities are of this kind.
    """
    disp = np.asarray(disp, dtype=np.float32)
    out = np.zeros_like(disp)
    finite = np.isfinite(disp)
    if mode == "inverse_depth":
        ok = finite & (disp > 1e-6)
        out[ok] = scale / disp[ok]
        return out
    near, far = bounds
    if not finite.any():
        return out
    lo, hi = np.percentile(disp[finite], RELATIVE_PERCENTILES)
    if hi - lo < 1e-12:
        out[finite] = 2.0 / (1.0 / near + 1.0 / far)
        return out
    a = (1.0 / near - 1.0 / far) / (hi - lo)
    inv = np.clip(1.0 / far + a * (disp[finite] - lo), 1.0 / far, 1.0 / near)
    out[finite] = 1.0 / inv
    return out
