"""Cameras between viser and the renderer.

Both speak OpenCV's camera axes (x right, y down, z forward): viser's Python API gives a client's
camera as the camera-to-world rotation ``wxyz`` (a quaternion, scalar first) and the camera centre
``position`` in world coordinates (``P_world = R p_camera + position``), and its field of view
``fov`` as the vertical angle in radians. The renderer takes world-to-camera matrices ``w2c`` (4,4)
and pixel intrinsics ``K`` (3,3).
"""

from __future__ import annotations

import math

import numpy as np
import viser.transforms as vtf


def viser_pose(w2c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(wxyz (4,), position (3,)) of viser's camera for an OpenCV world-to-camera matrix (4,4)."""
    c2w = np.linalg.inv(np.asarray(w2c, dtype=np.float64))
    return vtf.SO3.from_matrix(c2w[:3, :3]).wxyz, c2w[:3, 3].copy()


def w2c_from_viser(wxyz: np.ndarray, position: np.ndarray) -> np.ndarray:
    """OpenCV world-to-camera matrix (4,4) of viser's camera pose (wxyz (4,), position (3,))."""
    c2w = np.eye(4)
    c2w[:3, :3] = vtf.SO3(np.asarray(wxyz, dtype=np.float64)).as_matrix()
    c2w[:3, 3] = position
    return np.linalg.inv(c2w)


def intrinsics(fov_y: float, width: int, height: int) -> np.ndarray:
    """K (3,3) of a pinhole camera of vertical field of view ``fov_y`` (radians) rendering
    ``width`` x ``height`` pixels: square pixels, principal point at the image centre (as viser's
    browser camera, whose view the render replaces)."""
    f = 0.5 * height / math.tan(0.5 * fov_y)
    return np.array([[f, 0.0, 0.5 * width], [0.0, f, 0.5 * height], [0.0, 0.0, 1.0]])


def fov_y(K: np.ndarray, height: int) -> float:
    """Vertical field of view (radians) of intrinsics K (3,3) for images ``height`` pixels high."""
    return 2.0 * math.atan(0.5 * height / float(K[1, 1]))


def render_size(width: int, aspect: float) -> tuple[int, int]:
    """(width, height) of a render ``width`` pixels wide at the browser view's ``aspect`` (width /
    height), so the background image fills the view undistorted."""
    return width, max(1, round(width / aspect))
