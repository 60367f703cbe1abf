"""Camera paths through a trained scene: which camera renders each video frame, and at what time.

A path is F frames: intrinsics K (F,3,3) and world-to-camera w2c (F,4,4) in the OpenCV convention of
bench.data.scene, and ``frame`` (F,) float training-frame times (0 .. N-1 for N training frames,
fractions interpolate the motion), all at one image size. The paths:

- ``test``: the test cameras at their own times, in time order (the order of their frame indices).
- ``fixed``: one training camera while time runs from the first to the last training frame.
- ``spiral``: around the training cameras' mean position, looking at a focus point in front of it,
  while time runs through the sequence (one turn; radii and focus from the training cameras).
- ``bullet``: time frozen while the camera swings on an arc about the focus point, out and back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bench.data.scene import Scene
from bench.errors import BenchError
from bench.video import PATHS

# Smallest spiral radius and bullet swing as a fraction of the focus distance: a tripod-like
# training path would otherwise give a video that hardly moves.
MIN_RADIUS = 0.05
MIN_SWING_DEG = 10.0


@dataclass
class CameraPath:
    """F cameras: K (F,3,3), w2c (F,4,4), frame (F,) float64 training-frame times, one image size."""

    K: torch.Tensor
    w2c: torch.Tensor
    frame: torch.Tensor
    width: int
    height: int

    def __len__(self) -> int:
        return self.K.shape[0]

    def resized(self, width: int, height: int) -> "CameraPath":
        """The same cameras rendering ``width`` x ``height`` pixels (intrinsics scaled per axis)."""
        K = self.K.clone()
        K[:, 0] *= width / self.width
        K[:, 1] *= height / self.height
        return CameraPath(K, self.w2c, self.frame, width, height)


def camera_path(scene: Scene, kind: str, frames: int = 96, camera: int = 0, time: float = 0.5) -> CameraPath:
    """The ``kind`` path (module doc) of ``scene`` at the test image size; ``frames`` (F) for every path
    but ``test`` (one frame per test view), ``camera`` the training camera of ``fixed``, ``time`` in
    [0,1] the frozen time of ``bullet`` (0: first training frame, 1: last)."""
    if kind == "test":
        return test_path(scene)
    if kind == "fixed":
        return fixed_path(scene, frames, camera)
    if kind == "spiral":
        return spiral_path(scene, frames)
    if kind == "bullet":
        return bullet_path(scene, frames, time)
    raise BenchError(f"--path {kind!r}: unknown; allowed: {', '.join(PATHS)}")


def test_path(scene: Scene) -> CameraPath:
    test = scene.test
    order = torch.argsort(test.frame_index, stable=True)
    cams = test.cameras
    return CameraPath(cams.K[order].float(), cams.w2c[order].float(), test.frame_index[order].double(),
                      cams.width, cams.height)


def _times(scene: Scene, frames: int) -> torch.Tensor:
    """(F,) times from the first to the last training frame."""
    return torch.linspace(0, len(scene.train) - 1, frames, dtype=torch.float64)


def _test_K(scene: Scene, frames: int) -> torch.Tensor:
    """(F,3,3) the first test camera's intrinsics: every synthesised path renders at the test size."""
    return scene.test.cameras.K[0].float().expand(frames, 3, 3).clone()


def fixed_path(scene: Scene, frames: int, camera: int) -> CameraPath:
    n = len(scene.train)
    if not 0 <= camera < n:
        raise BenchError(f"--camera {camera}: expected a training camera 0 .. {n - 1}")
    train = scene.train.cameras
    resized = CameraPath(train.K[camera].float().expand(frames, 3, 3).clone(),
                         train.w2c[camera].float().expand(frames, 4, 4).clone(), _times(scene, frames),
                         train.width, train.height)
    return resized.resized(scene.test.cameras.width, scene.test.cameras.height)


@dataclass
class _Frame:
    """The training cameras' average frame: centre (3,), right / down / forward axes (3,) each
    (orthonormal, OpenCV), the focus distance along forward, and the 90th-percentile spread (3,) of
    the camera positions along those axes."""

    centre: torch.Tensor
    right: torch.Tensor
    down: torch.Tensor
    forward: torch.Tensor
    focus: float
    spread: torch.Tensor


def average_frame(scene: Scene) -> _Frame:
    """The training cameras' average frame (_Frame); the focus distance weighs the scene's near and
    far planes in disparity (3/4 towards far: what LLFF's spiral path looks at)."""
    c2w = scene.train.cameras.c2w.double()
    centre = c2w[:, :3, 3].mean(0)
    forward = _unit(c2w[:, :3, 2].mean(0))
    right = _unit(torch.linalg.cross(c2w[:, :3, 1].mean(0), forward))
    down = torch.linalg.cross(forward, right)
    focus = 1.0 / (0.25 / scene.near + 0.75 / scene.far)
    offsets = (c2w[:, :3, 3] - centre) @ torch.stack([right, down, forward], 1)
    spread = torch.quantile(offsets.abs(), 0.9, dim=0)
    return _Frame(centre, right, down, forward, focus, spread)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm().clamp_min(1e-12)


def look_at(position: torch.Tensor, target: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
    """(4,4) float32 w2c of a camera at ``position`` (3,) looking at ``target`` (3,), its image's y axis
    as close to ``down`` (3,) as the view direction allows (OpenCV: x right, y down, z forward)."""
    z = _unit(target - position)
    x = _unit(torch.linalg.cross(down, z))
    y = torch.linalg.cross(z, x)
    c2w = torch.eye(4, dtype=torch.float64)
    c2w[:3, :3] = torch.stack([x, y, z], 1)
    c2w[:3, 3] = position
    return torch.linalg.inv(c2w).float()


def spiral_path(scene: Scene, frames: int) -> CameraPath:
    """One turn around the training cameras' centre (radii: their 90th-percentile spread along the
    average right and down axes, at least MIN_RADIUS of the focus distance), bobbing along the view
    axis by half the depth radius, looking at the focus point while time runs through the sequence."""
    f = average_frame(scene)
    radius = f.spread.clamp_min(MIN_RADIUS * f.focus)
    target = f.centre + f.focus * f.forward
    w2c = []
    for theta in torch.linspace(0, 2 * math.pi, frames + 1, dtype=torch.float64)[:-1]:
        offset = (radius[0] * torch.cos(theta) * f.right + radius[1] * torch.sin(theta) * f.down
                  + 0.5 * radius[2] * torch.sin(theta / 2) * f.forward)
        w2c.append(look_at(f.centre + offset, target, f.down))
    cams = scene.test.cameras
    return CameraPath(_test_K(scene, frames), torch.stack(w2c), _times(scene, frames), cams.width, cams.height)


def bullet_path(scene: Scene, frames: int, time: float) -> CameraPath:
    """Time frozen at ``time`` (in [0,1]) while the camera swings on a horizontal arc about the focus
    point through the training cameras' centre, out to either side and back (the half-angle covers the
    training cameras' sideways spread, at least MIN_SWING_DEG), so the video loops."""
    if not 0.0 <= time <= 1.0:
        raise BenchError(f"--time {time}: expected a value in [0, 1] (0: first training frame, 1: last)")
    f = average_frame(scene)
    swing = max(math.atan2(float(f.spread[0]), f.focus), math.radians(MIN_SWING_DEG))
    target = f.centre + f.focus * f.forward
    w2c = []
    for phase in torch.linspace(0, 2 * math.pi, frames + 1, dtype=torch.float64)[:-1]:
        angle = swing * torch.sin(phase)
        back = -f.focus * (torch.cos(angle) * f.forward + torch.sin(angle) * f.right)
        w2c.append(look_at(target + back, target, f.down))
    frame = torch.full((frames,), time * (len(scene.train) - 1), dtype=torch.float64)
    cams = scene.test.cameras
    return CameraPath(_test_K(scene, frames), torch.stack(w2c), frame, cams.width, cams.height)
