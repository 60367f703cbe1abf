"""bench/viewer/cameras.py: viser's camera pose and field of view to the renderer's OpenCV w2c and K,
and back."""

from __future__ import annotations

import math

import numpy as np
import pytest
import viser.transforms as vtf

from bench.viewer.cameras import fov_y, intrinsics, render_size, viser_pose, w2c_from_viser


def _random_w2c(rng: np.random.Generator) -> np.ndarray:
    c2w = np.eye(4)
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    c2w[:3, :3] = rotation * np.sign(np.linalg.det(rotation))  # a proper rotation (det +1)
    c2w[:3, 3] = rng.normal(size=3)
    return np.linalg.inv(c2w)


def test_an_opencv_camera_round_trips_through_viser_pose():
    rng = np.random.default_rng(0)
    for _ in range(20):
        w2c = _random_w2c(rng)
        wxyz, position = viser_pose(w2c)
        assert wxyz.shape == (4,) and position.shape == (3,)
        np.testing.assert_allclose(w2c_from_viser(wxyz, position), w2c, atol=1e-9)


def test_viser_position_is_the_camera_centre_and_its_z_axis_looks_forward():
    """viser's pose is camera-to-world in OpenCV axes: the centre maps to the camera origin and a
    point in front of the camera along the pose's third axis has positive camera z."""
    w2c = _random_w2c(np.random.default_rng(1))
    wxyz, position = viser_pose(w2c)
    np.testing.assert_allclose((w2c @ np.append(position, 1))[:3], 0, atol=1e-9)
    ahead = position + 2.0 * vtf.SO3(wxyz).as_matrix()[:, 2]
    np.testing.assert_allclose((w2c @ np.append(ahead, 1))[:3], [0, 0, 2.0], atol=1e-9)


def test_intrinsics_from_the_vertical_fov_and_back():
    K = intrinsics(math.radians(60), 320, 240)
    assert K[1, 1] == pytest.approx(120 / math.tan(math.radians(30)))
    assert K[0, 0] == K[1, 1] and (K[0, 2], K[1, 2]) == (160, 120)
    assert fov_y(K, 240) == pytest.approx(math.radians(60))
    # The top edge of the image lies at half the vertical fov above the axis.
    top = np.array([0.0, -math.tan(math.radians(30)), 1.0])
    assert (K @ top)[1] == pytest.approx(0.0)


def test_render_size_follows_the_browser_aspect():
    assert render_size(400, 2.0) == (400, 200)
    assert render_size(48, 48 / 32) == (48, 32)
    assert render_size(10, 100.0) == (10, 1)
