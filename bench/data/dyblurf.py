"""Loader and validator for the DyBluRF release of Stereo Blur (motion blur).

Layout: :mod:`bench.data.layouts.dyblurf` (``<root>/<scene>/dense/``: training images in
``images_{W}x{H}/``, sharp right test views, disparity, motion masks, optional flow and COLMAP
points). Parsing: ``factor = H_full / height``, focal / factor, principal point at the image
centre, LLFF scaling and recentring over all 2N poses (see ``llff.py``).
Depth from ``disp`` per the dataset's ``disparity`` mode (``common.depth_from_disparity``): exact
``sc / disp`` for inverse raw depth (synthetic), or affine-aligned to the camera's bounds (release).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.data.common import depth_from_disparity, lazy_images, make_cameras, make_views, set_times
from bench.data.io import image_size, list_images, read_mask, read_npy, read_npz, resize_nearest
from bench.data.layouts import dyblurf as layout
from bench.data.layouts.checks import POSES_BOUNDS
from bench.data.layouts.dyblurf import DEFAULT_HEIGHT
from bench.data.llff import intrinsics, parse_llff, read_poses_bounds
from bench.data.scene import Extras, Scene


def check(root: Path, scene: str, height: int = DEFAULT_HEIGHT, disparity: str = "inverse_depth") -> list[str]:
    """Problems of one scene, one line each ([] = loadable): :func:`bench.data.layouts.dyblurf.check`
    reading every file (``disparity`` changes nothing the check sees)."""
    return layout.check(root, scene, height, full=True)


def load(root: Path, scene: str, *, dataset: str, blur_type: str, height: int = DEFAULT_HEIGHT,
         disparity: str = "inverse_depth") -> Scene:
    """Load a validated DyBluRF scene (see module docstring for the parsing)."""
    dense = layout.scene_dir(root, scene)
    llff = parse_llff(read_poses_bounds(dense / POSES_BOUNDS))
    folder, factor = layout.train_folder(dense, height)
    train_paths = list_images(folder)
    n = len(train_paths)
    width, h = image_size(train_paths[0])
    size = (width, h)
    K = np.stack([intrinsics(f / factor, width, h) for f in llff.hwf[:, 2]])
    cams_left = make_cameras(K[0::2], llff.c2w[0::2], width, h)
    cams_right = make_cameras(K[1::2], llff.c2w[1::2], width, h)
    disp = [resize_nearest(read_npy(f).astype(np.float32).squeeze(), size)
            for f in sorted((dense / layout.DISP).glob("*.npy"))]
    depth = torch.from_numpy(np.stack([depth_from_disparity(d, llff.scale, disparity, tuple(llff.bounds[2 * k]))
                                       for k, d in enumerate(disp)]))
    masks = torch.from_numpy(np.stack([read_mask(p, size) for p in list_images(dense / layout.MASKS)]))
    names = [p.stem for p in train_paths]
    train = make_views(names, cams_left, lazy_images(train_paths, size), range(n), depth=depth, motion_mask=masks)
    test_paths = list_images(dense / layout.TEST_IMAGES)
    test = make_views([p.stem for p in test_paths], cams_right, lazy_images(test_paths, size), range(n))
    set_times(train, test)
    extras = Extras()
    load_flow(dense / layout.FLOW, n, size, extras, layout.FLOW_PATTERN)
    sharp = list_images(dense / layout.SHARP_IMAGES)
    if len(sharp) == n:
        extras.sharp_train = lazy_images(sharp, size)
    load_sparse_points(dense / layout.SPARSE, llff.scale, llff.recenter, extras)
    return Scene(dataset=dataset, name=scene, blur_type=blur_type, train=train, test=test,
                 near=float(llff.bounds[:, 0].min()), far=float(llff.bounds[:, 1].max()), scale=llff.scale,
                 extras=extras)


def load_sparse_points(sparse: Path, scale: float, recenter: np.ndarray, extras: Extras) -> None:
    """Optional COLMAP points (``sparse/points3D.bin`` or ``sparse/0/``) mapped into the loaded world.

    [inferred] The LLFF poses were made from this COLMAP model, so its world frame is the raw
    pose frame: a point X goes to ``recenter @ (scale * X)`` like the camera centres.
    """
    from bench.data.colmap import read_points3d

    path = next((p for p in (sparse / "points3D.bin", sparse / "0" / "points3D.bin") if p.is_file()), None)
    if path is None:
        return
    xyz, rgb = read_points3d(path)
    world = xyz * scale @ recenter[:3, :3].T + recenter[:3, 3]
    extras.points = torch.from_numpy(world).float()
    extras.point_colors = torch.from_numpy(rgb.astype(np.float32) / 255.0)


def _resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-resize an (H,W,2) flow to ``size`` = (W,H) and rescale its vectors."""
    h, w = flow.shape[:2]
    if (w, h) == tuple(size):
        return flow
    out = resize_nearest(flow, size).astype(np.float32)
    out[..., 0] *= size[0] / w
    out[..., 1] *= size[1] / h
    return out


def load_flow(folder: Path, n: int, size: tuple[int, int], extras: Extras, pattern: str) -> None:
    """Fill the flow fields of ``extras`` from ``pattern.format(index, 'fwd'|'bwd')`` files if all exist."""
    if not folder.is_dir() or n < 2:
        return
    fwd, bwd, fv, bv = [], [], [], []
    for i in range(n - 1):
        a = folder / pattern.format(i, "fwd")
        b = folder / pattern.format(i + 1, "bwd")
        if not (a.is_file() and b.is_file()):
            return
        da, db = read_npz(a, ("flow", "mask")), read_npz(b, ("flow", "mask"))
        fwd.append(_resize_flow(da["flow"].astype(np.float32), size))
        bwd.append(_resize_flow(db["flow"].astype(np.float32), size))
        fv.append(resize_nearest(da["mask"].astype(np.uint8), size).astype(bool))
        bv.append(resize_nearest(db["mask"].astype(np.uint8), size).astype(bool))
    extras.flow_fwd = torch.from_numpy(np.stack(fwd))
    extras.flow_bwd = torch.from_numpy(np.stack(bwd))
    extras.flow_fwd_valid = torch.from_numpy(np.stack(fv))
    extras.flow_bwd_valid = torch.from_numpy(np.stack(bv))
