"""Loader and validator for the DyBluRF release of Stereo Blur (motion blur).

Layout (``<root>/<scene>/dense/``): ``images/`` full-res blurry left (only the first file's
height is used), ``images_{W}x{H}/`` training images, ``inference_images/%05d.png`` sharp right
(test), ``sharp_images/`` sharp left (optional), ``disp/*.npy`` disparity per left frame,
``motion_masks/*.png``, ``flow_i1/%05d_{fwd,bwd}.npz`` (optional), ``poses_bounds.npy`` with
rows alternating left, right. Parsing: ``factor = H_full / height``, focal / factor, principal
point at the image centre, LLFF scaling and recentring over all 2N poses (see ``llff.py``).
Depth from ``disp`` per the dataset's ``disparity`` mode (``common.depth_from_disparity``): exact
``sc / disp`` for inverse raw depth (synthetic), or affine-aligned to the camera's bounds (release).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.data.common import (check_count, check_npy_2d, check_readable_images, depth_from_disparity, lazy_images,
                               make_cameras, make_views, set_times)
from bench.data.io import image_size, list_images, read_mask, read_npy, read_npz, resize_nearest
from bench.data.llff import intrinsics, parse_llff, read_poses_bounds
from bench.data.scene import Extras, Scene
from bench.errors import BenchError

DEFAULT_HEIGHT = 288


def scene_dir(root: Path, scene: str) -> Path:
    return Path(root) / scene / "dense"


def train_folder(dense: Path, height: int) -> tuple[Path, float]:
    """The ``images_{W}x{H}`` folder and the factor, from the first full-resolution image."""
    full = list_images(dense / "images")
    if not full:
        raise BenchError(f"{dense / 'images'}: expected the full-resolution blurry images (at least one)")
    w_full, h_full = image_size(full[0])
    factor = h_full / float(height)
    width = int(w_full / factor)
    return dense / f"images_{width}x{height}", factor


def check(root: Path, scene: str, height: int = DEFAULT_HEIGHT, disparity: str = "inverse_depth") -> list[str]:
    """Problems of one scene, one line each ([] = loadable)."""
    dense = scene_dir(root, scene)
    if not dense.is_dir():
        return [f"{dense}: expected the scene folder (DyBluRF layout <root>/<scene>/dense/)"]
    problems: list[str] = []
    pb = dense / "poses_bounds.npy"
    rows = None
    if not pb.is_file():
        problems.append(f"{pb}: expected the LLFF poses file (2N rows, left/right alternating)")
    else:
        try:
            arr = read_poses_bounds(pb)
            rows = arr.shape[0]
            if rows % 2:
                problems.append(f"{pb}: expected an even number of rows (left/right pairs), got {rows}")
                rows = None
        except BenchError as err:
            problems.append(str(err))
    try:
        folder, _ = train_folder(dense, height)
    except BenchError as err:
        problems.append(str(err))
        return problems
    train = list_images(folder)
    if not train:
        problems.append(f"{folder}: expected the training images at height {height}")
        return problems
    n = len(train)
    src = f"{rows} rows in poses_bounds.npy / 2" if rows else "training images"
    if rows:
        check_count(folder, n, rows // 2, "training images", problems, src)
    size = image_size(train[0]) if train else None
    check_readable_images(train, problems, size)
    _check_test(dense, n, problems, src)
    _check_disp(dense, n, problems, src, size)
    masks = list_images(dense / "motion_masks")
    if check_count(dense / "motion_masks", len(masks), n, "motion masks", problems, src):
        check_readable_images(masks, problems, what="mask image")
    _check_flow(dense, n, problems)
    sharp = list_images(dense / "sharp_images")
    if sharp:
        check_count(dense / "sharp_images", len(sharp), n, "sharp left images", problems, src)
    return problems


def _check_test(dense: Path, n: int, problems: list[str], src: str) -> None:
    folder = dense / "inference_images"
    paths = list_images(folder)
    if not folder.is_dir():
        problems.append(f"{folder}: expected the sharp right (test) images %05d.png")
        return
    if check_count(folder, len(paths), n, "test images", problems, src):
        check_readable_images(paths, problems)


def _check_disp(dense: Path, n: int, problems: list[str], src: str, size: tuple[int, int]) -> None:
    files = sorted((dense / "disp").glob("*.npy"))
    if not check_count(dense / "disp", len(files), n, "disparity .npy files", problems, src):
        return
    for f in files:
        check_npy_2d(f, problems, what="disparity", size=size)


def _check_flow(dense: Path, n: int, problems: list[str]) -> None:
    folder = dense / "flow_i1"
    if not folder.is_dir():
        return
    for i in range(n - 1):
        for kind, j in (("fwd", i), ("bwd", i + 1)):
            path = folder / f"{j:05d}_{kind}.npz"
            if not path.is_file():
                problems.append(f"{path}: expected the {kind} flow of frame {j} (keys 'flow', 'mask')")
                continue
            try:
                data = read_npz(path, ("flow", "mask"))
            except BenchError as err:
                problems.append(str(err))
                continue
            if data["flow"].ndim != 3 or data["flow"].shape[2] != 2:
                problems.append(f"{path}: expected 'flow' of shape (H,W,2), got {tuple(data['flow'].shape)}")


def load(root: Path, scene: str, *, dataset: str, blur_type: str, height: int = DEFAULT_HEIGHT,
         disparity: str = "inverse_depth") -> Scene:
    """Load a validated DyBluRF scene (see module docstring for the parsing)."""
    dense = scene_dir(root, scene)
    llff = parse_llff(read_poses_bounds(dense / "poses_bounds.npy"))
    folder, factor = train_folder(dense, height)
    train_paths = list_images(folder)
    n = len(train_paths)
    width, h = image_size(train_paths[0])
    size = (width, h)
    K = np.stack([intrinsics(f / factor, width, h) for f in llff.hwf[:, 2]])
    cams_left = make_cameras(K[0::2], llff.c2w[0::2], width, h)
    cams_right = make_cameras(K[1::2], llff.c2w[1::2], width, h)
    disp = [resize_nearest(read_npy(f).astype(np.float32).squeeze(), size) for f in sorted((dense / "disp").glob("*.npy"))]
    depth = torch.from_numpy(np.stack([depth_from_disparity(d, llff.scale, disparity, tuple(llff.bounds[2 * k]))
                                       for k, d in enumerate(disp)]))
    masks = torch.from_numpy(np.stack([read_mask(p, size) for p in list_images(dense / "motion_masks")]))
    names = [p.stem for p in train_paths]
    train = make_views(names, cams_left, lazy_images(train_paths, size), range(n), depth=depth, motion_mask=masks)
    test_paths = list_images(dense / "inference_images")
    test = make_views([p.stem for p in test_paths], cams_right, lazy_images(test_paths, size), range(n))
    set_times(train, test)
    extras = Extras()
    load_flow(dense / "flow_i1", n, size, extras, "{:05d}_{}.npz")
    sharp = list_images(dense / "sharp_images")
    if len(sharp) == n:
        extras.sharp_train = lazy_images(sharp, size)
    load_sparse_points(dense / "sparse", llff.scale, llff.recenter, extras)
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
