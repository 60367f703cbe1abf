"""A tiny analytic scene for training tests: a checkered wall and a square moving along x.

``tiny_scene()`` builds it; the ``tiny`` fixture (conftest.py) makes the data registry return it;
``train_tiny`` trains a variant on it with the small settings ``SMALL`` on the CPU; ``trained_once``
trains one run for a module-scoped fixture.
"""

from __future__ import annotations

import csv

import pytest
import torch

import bench.method.train as T
from bench import rundir
from bench.data.scene import Cameras, LazyImages, Scene, Views
from bench.method.geometry import pixel_grid

W, H, N = 48, 32, 5
FOCAL = 40.0


def _checker(u: torch.Tensor, v: torch.Tensor, cell: float, a, b) -> torch.Tensor:
    """(…,3) two-colour checkerboard of surface coordinates u, v."""
    on = ((torch.floor(u / cell) + torch.floor(v / cell)) % 2 == 0)[..., None]
    return torch.where(on, torch.tensor(a), torch.tensor(b))


def _render(c2w: torch.Tensor, t: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Ray-cast a checkered wall at z=3 and a square at z=2 moving along x. -> rgb, depth, mask."""
    grid = pixel_grid(H, W)  # rays through pixel centres, as the renderer samples them
    u, v = grid[..., 0], grid[..., 1]
    dirs = torch.stack([(u - W / 2) / FOCAL, (v - H / 2) / FOCAL, torch.ones_like(u)], -1) @ c2w[:3, :3].T
    o = c2w[:3, 3]
    s_wall = (3.0 - o[2]) / dirs[..., 2]
    p_wall = o + s_wall[..., None] * dirs
    rgb = _checker(p_wall[..., 0], p_wall[..., 1], 0.3, [0.9, 0.8, 0.2], [0.1, 0.3, 0.6])
    s_box = (2.0 - o[2]) / dirs[..., 2]
    p_box = o + s_box[..., None] * dirs
    cx = -0.3 + 0.6 * t
    inside = ((p_box[..., 0] - cx).abs() < 0.25) & (p_box[..., 1].abs() < 0.25)
    box_rgb = _checker(p_box[..., 0] - cx, p_box[..., 1], 0.12, [0.9, 0.1, 0.1], [0.95, 0.95, 0.95])
    rgb = torch.where(inside[..., None], box_rgb, rgb)
    depth = torch.where(inside, s_box * dirs[..., 2], s_wall * dirs[..., 2])  # z-depth (c2w rotation ~ identity)
    return rgb, depth, inside.float()


def _box_blur(img: torch.Tensor) -> torch.Tensor:
    x = img.permute(2, 0, 1)[None]
    x = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return x[0].permute(1, 2, 0)


def tiny_scene() -> Scene:
    """5 blurry training frames and 5 sharp test frames (camera shifted by a stereo baseline)."""
    K = torch.tensor([[FOCAL, 0, W / 2], [0, FOCAL, H / 2], [0, 0, 1.0]])
    train_c2w, test_c2w, imgs, tests, depths, masks = [], [], [], [], [], []
    for k in range(N):
        t = k / (N - 1)
        c2w = torch.eye(4)
        c2w[0, 3] = 0.1 * t
        right = c2w.clone()
        right[0, 3] += 0.08
        rgb, depth, mask = _render(c2w, t)
        imgs.append(_box_blur(rgb))
        depths.append(depth)
        masks.append(mask)
        tests.append(_render(right, t)[0])
        train_c2w.append(c2w)
        test_c2w.append(right)

    def views(c2ws, images, depth=None, mask=None):
        w2c = torch.linalg.inv(torch.stack(c2ws))
        cams = Cameras(K=K.repeat(N, 1, 1), w2c=w2c, width=W, height=H)
        idx = torch.arange(N)
        return Views(names=[f"{k:05d}" for k in range(N)], cameras=cams,
                     images=LazyImages.from_tensor(torch.stack(images)), frame_index=idx,
                     time=idx.float() / (N - 1), depth=depth, motion_mask=mask)

    train = views(train_c2w, imgs, torch.stack(depths), torch.stack(masks))
    test = views(test_c2w, tests)
    return Scene(dataset="tiny", name="square", blur_type="defocus", train=train, test=test, near=1.5, far=3.5)


SMALL = {
    "train.steps": 40, "train.checkpoint_every": 10, "train.log_every": 5, "train.num_train_renders": 2,
    "blur.kernel_size": 5, "blur.cnn_width": 8, "blur.start_frac": 0.25,
    "model.init_static_points": 600, "model.init_dynamic_points": 150, "model.num_motion_bases": 4,
    "densify.dgd_points_per_view": 20, "densify.max_gaussians": 900,
    "densify.opacity_reset_every_frac": 1.0, "unseen.perpendicular_offset_depth": 0.03,
}


def train_tiny(run_dir, method="full", **extra):
    return T.train(run_dir, method=method, dataset="tiny", scene="square", seed=3, profile="cpu",
                   overrides={**SMALL, **extra}, device="cpu", progress=False)


def curves(run_dir):
    with open(run_dir / rundir.CURVES) as f:
        return list(csv.DictReader(f))


def final_state(run_dir):
    return torch.load(rundir.checkpoint_path(run_dir, SMALL["train.steps"]), weights_only=False)


def interrupt_tiny(run_dir, at_step: int, monkeypatch, method="full", **extra) -> None:
    """Train like ``train_tiny`` but stop with KeyboardInterrupt before step ``at_step`` (a killed job)."""
    import pytest

    original = T._train_step

    def crash(run, s):
        if s == at_step:
            raise KeyboardInterrupt
        return original(run, s)

    monkeypatch.setattr(T, "_train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        train_tiny(run_dir, method, **extra)
    monkeypatch.setattr(T, "_train_step", original)


def trained_once(tmp_path_factory, name: str, **extra):
    """A module-scoped fixture's body: ``yield from trained_once(tmp_path_factory, "speed")`` trains one
    tiny run (``train_tiny`` with ``extra`` settings) and yields its directory; the data registry
    serves the tiny scene until the module's tests are done."""
    scene = tiny_scene()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("bench.data.registry.load_scene", lambda dataset, name, data_root=None: scene)
        mp.setattr("bench.data.registry.blur_type_of", lambda dataset, name: scene.blur_type)
        run = tmp_path_factory.mktemp(name) / "run"
        train_tiny(run, **extra)
        yield run
