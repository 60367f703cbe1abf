"""Camera paths of bench.video.paths on the tiny analytic scene (no training)."""

from __future__ import annotations

import pytest
import torch

from bench.errors import BenchError
from bench.video.paths import average_frame, camera_path, look_at
from method_tiny import tiny_scene


@pytest.fixture(scope="module")
def scene():
    return tiny_scene()


def test_the_test_path_follows_the_test_cameras_in_time_order():
    scene = tiny_scene()  # shuffled here, so not the module's
    order = [3, 0, 4, 1, 2]
    scene.test.frame_index = scene.test.frame_index[order]
    scene.test.cameras.w2c = scene.test.cameras.w2c[order]
    path = camera_path(scene, "test")
    assert path.frame.tolist() == [0, 1, 2, 3, 4]
    assert torch.equal(path.w2c, scene.test.cameras.w2c[torch.argsort(scene.test.frame_index)])


def test_fixed_holds_one_training_camera_while_time_runs(scene):
    path = camera_path(scene, "fixed", frames=9, camera=2)
    assert len(path) == 9 and path.frame[0] == 0 and path.frame[-1] == len(scene.train) - 1
    assert torch.equal(path.w2c, scene.train.cameras.w2c[2].expand(9, 4, 4))
    assert (path.width, path.height) == (scene.test.cameras.width, scene.test.cameras.height)


def test_spiral_circles_the_training_cameras_looking_at_the_focus_point(scene):
    path = camera_path(scene, "spiral", frames=12)
    f = average_frame(scene)
    target = f.centre + f.focus * f.forward
    c2w = torch.linalg.inv(path.w2c.double())
    to_target = torch.nn.functional.normalize(target - c2w[:, :3, 3], dim=-1)
    assert torch.allclose((c2w[:, :3, 2] * to_target).sum(-1), torch.ones(12, dtype=torch.float64), atol=1e-5)
    radii = (c2w[:, :3, 3] - f.centre).norm(dim=-1)
    assert radii.min() > 0.04 * f.focus  # it moves even though the tiny scene's cameras barely do
    assert path.frame[0] == 0 and path.frame[-1] == len(scene.train) - 1 and path.frame.diff().min() > 0


def test_bullet_freezes_time_while_the_camera_swings(scene):
    path = camera_path(scene, "bullet", frames=8, time=0.25)
    assert path.frame.tolist() == [0.25 * (len(scene.train) - 1)] * 8
    positions = torch.linalg.inv(path.w2c.double())[:, :3, 3]
    assert (positions - positions[0]).norm(dim=-1).max() > 0.1


def test_look_at_is_an_opencv_camera_with_y_down(scene):
    w2c = look_at(torch.zeros(3, dtype=torch.float64), torch.tensor([0, 0, 5.0], dtype=torch.float64),
                  torch.tensor([0, 1.0, 0], dtype=torch.float64))
    assert torch.allclose(w2c, torch.eye(4))


@pytest.mark.parametrize("kind, kwargs, message", [("fixed", {"camera": 9}, "--camera 9: expected a training camera 0 .. 4"),
                                                    ("bullet", {"time": 1.5}, r"--time 1.5: expected a value in \[0, 1\]")])
def test_bad_path_settings_are_one_clear_error(scene, kind, kwargs, message):
    with pytest.raises(BenchError, match=message):
        camera_path(scene, kind, **kwargs)
