"""LLFF ``poses_bounds.npy`` parsing exactly as the DyBluRF and D2RF loaders do it.

A row holds a 3x5 camera-to-world block [down, right, back | translation | (H, W, f)] followed by
the near and far depth bound. Parsing: LLFF axes -> NeRF axes (right, up, back); translations and
bounds scaled by ``sc = 1 / (percentile(near, 5) * 0.9)``; then ``recenter_poses`` over all rows
(average pose from the mean centre, the mean z axis and the summed y axis as "up"; its inverse
applied to every pose); finally NeRF -> OpenCV axes (flip the y and z columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.data.io import read_npy

BOUND_FACTOR = 0.9
NEAR_PERCENTILE = 5.0


@dataclass
class LLFFPoses:
    """Parsed poses. c2w: (M,4,4) OpenCV camera-to-world after scaling and recentring.

    hwf: (M,3) the raw (H, W, focal) column at full resolution. bounds: (M,2) scaled near/far.
    scale: the factor sc. recenter: (4,4) the inverse average pose applied after scaling
    (NeRF axes), so ``world = recenter @ (sc * raw_world)``.
    """

    c2w: np.ndarray
    hwf: np.ndarray
    bounds: np.ndarray
    scale: float
    recenter: np.ndarray


def _normalize(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def average_pose(c2w: np.ndarray) -> np.ndarray:
    """LLFF ``poses_avg``: (M,3,4) NeRF-axes poses -> (4,4) average camera-to-world."""
    center = c2w[:, :3, 3].mean(0)
    z = _normalize(c2w[:, :3, 2].sum(0))
    up = c2w[:, :3, 1].sum(0)
    x = _normalize(np.cross(up, z))
    y = _normalize(np.cross(z, x))
    avg = np.eye(4)
    avg[:3, :4] = np.stack([x, y, z, center], 1)
    return avg


def read_poses_bounds(path: Path) -> np.ndarray:
    """Load ``poses_bounds.npy`` and check it is (M,17) finite."""
    arr = read_npy(path)
    if arr.ndim != 2 or arr.shape[1] != 17:
        raise BenchError(f"{path}: expected an (M,17) array of poses and bounds, got shape {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise BenchError(f"{path}: expected finite values, found NaN or inf")
    return arr.astype(np.float64)


def parse_llff(arr: np.ndarray) -> LLFFPoses:
    """Parse an (M,17) poses_bounds array into scaled, recentred OpenCV poses."""
    poses = arr[:, :15].reshape(-1, 3, 5)
    bounds = arr[:, 15:17].copy()
    hwf = poses[:, :, 4].copy()
    # LLFF columns (down, right, back) -> NeRF columns (right, up, back).
    rot = np.concatenate([poses[:, :, 1:2], -poses[:, :, 0:1], poses[:, :, 2:3]], axis=2)
    c2w = np.tile(np.eye(4), (len(arr), 1, 1))
    c2w[:, :3, :3] = rot
    c2w[:, :3, 3] = poses[:, :, 3]
    sc = 1.0 / (np.percentile(bounds[:, 0], NEAR_PERCENTILE) * BOUND_FACTOR)
    c2w[:, :3, 3] *= sc
    bounds *= sc
    recenter = np.linalg.inv(average_pose(c2w[:, :3, :4]))
    c2w = recenter @ c2w
    c2w[:, :3, 1:3] *= -1.0  # NeRF (right, up, back) -> OpenCV (right, down, forward)
    return LLFFPoses(c2w=c2w, hwf=hwf, bounds=bounds, scale=float(sc), recenter=recenter)


def opencv_c2w_to_llff_row(c2w: np.ndarray, hwf: tuple[float, float, float], near: float, far: float) -> np.ndarray:
    """The inverse direction (for writers): an OpenCV (4,4) c2w -> one 17-value LLFF row."""
    x, y, z = c2w[:3, 0], c2w[:3, 1], c2w[:3, 2]
    block = np.stack([y, x, -z, c2w[:3, 3], np.asarray(hwf, dtype=np.float64)], axis=1)  # down, right, back
    return np.concatenate([block.reshape(-1), [near, far]])


def intrinsics(focal: float, width: int, height: int) -> np.ndarray:
    """(3,3) pinhole K with the principal point at the image centre."""
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
