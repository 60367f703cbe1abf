"""Loader and validator for the Deblur4DGS release of Stereo Blur (Shape-of-Motion layout).

Layout: :mod:`bench.data.layouts.d4dgs` (``<root>/<scene>/x1/``: 2N frames interleaved, even =
blurry left = training, odd = right; sharp frames interleaved; COLMAP model, aligned disparity,
dynamic masks and tracks under ``flow3d_preprocessed/``). Cameras: K and w2c straight from
COLMAP (no rescaling of the world, scale 1), K[:2] divided by ``COLMAP width / image width``
(2.5 for the 512x288 release). Depth = 1/max(disp, 1e-3), clamped
at 2.5 x the median over the training frames of each frame's maximum depth. Time of training
frame k (file 2k) = k/(N-1); test file 2i+1 has the time of frame i.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.data.colmap import read_cameras, read_images, read_points3d
from bench.data.common import lazy_images, make_cameras, make_views, set_times
from bench.data.io import image_size, list_images, read_mask, read_npy, resize_nearest
from bench.data.layouts import d4dgs as layout
from bench.data.scene import Extras, Scene
from bench.errors import BenchError

DISP_FLOOR = 1e-3
DEPTH_CLAMP = 2.5


def check(root: Path, scene: str, factor: float | None = None) -> list[str]:
    """Problems of one scene, one line each ([] = loadable): :func:`bench.data.layouts.d4dgs.check`
    reading every file (``factor`` changes nothing the check sees)."""
    return layout.check(root, scene, full=True)


def _clamped_depth(disps: list[np.ndarray]) -> np.ndarray:
    depth = np.stack([1.0 / np.maximum(d, DISP_FLOOR) for d in disps]).astype(np.float32)
    limit = DEPTH_CLAMP * float(np.median(depth.reshape(len(depth), -1).max(1)))
    return np.minimum(depth, limit)


def _tracks(folder: Path, names: list[str]) -> torch.Tensor | None:
    """(Q,N,4) tracks from ``<q>_<t>.npy`` over the training frames (pixels of the images), or None."""
    if not folder.is_dir():
        return None
    per_query = []
    for q in names:
        files = [folder / layout.track_name(q, t) for t in names]
        if not files[0].is_file():
            continue
        if not all(f.is_file() for f in files):
            return None
        arrs = [read_npy(f).astype(np.float32) for f in files]
        if any(a.ndim != 2 or a.shape[1] != 4 or a.shape[0] != arrs[0].shape[0] for a in arrs):
            raise BenchError(f"{folder}: expected (P,4) tracks with the same P for query {q}")
        per_query.append(np.stack(arrs, 1))  # (P,N,4)
    if not per_query:
        return None
    return torch.from_numpy(np.concatenate(per_query, 0))


def load(root: Path, scene: str, *, dataset: str, blur_type: str, factor: float | None = None) -> Scene:
    """Load a validated Deblur4DGS scene (see module docstring)."""
    base = layout.scene_dir(root, scene)
    imgs = list_images(base / layout.IMAGES)
    size = image_size(imgs[0])
    w, h = size
    sparse = layout.sparse_dir(base)
    cams = read_cameras(sparse / "cameras.bin")
    by_name = {im.name: im for im in read_images(sparse / "images.bin").values()}
    Ks, c2ws = [], []
    for p in imgs:
        im = by_name[p.name]
        cam = cams[im.camera_id]
        div = factor or cam.width / w
        K = cam.K()
        K[:2] /= div
        Ks.append(K)
        c2ws.append(np.linalg.inv(im.w2c()))
    Ks, c2ws = np.stack(Ks), np.stack(c2ws)
    left, right = imgs[0::2], imgs[1::2]
    n = len(left)
    depth_dir = layout.depth_dir(base)
    disps = [resize_nearest(read_npy(depth_dir / f"{p.stem}.npy").astype(np.float32).squeeze(), size) for p in left]
    depth = _clamped_depth(disps)
    mdir = layout.mask_folder(base)
    masks = torch.from_numpy(np.stack([read_mask(mdir / f"{p.stem}.png", size) for p in left]))
    train = make_views([p.stem for p in left], make_cameras(Ks[0::2], c2ws[0::2], w, h), lazy_images(left, size),
                       range(n), depth=torch.from_numpy(depth), motion_mask=masks)
    test_files = list_images(base / layout.TEST_IMAGES)
    test = make_views([p.stem for p in right], make_cameras(Ks[1::2], c2ws[1::2], w, h),
                      lazy_images(test_files[1::2], size), range(n))
    set_times(train, test)
    extras = Extras(sharp_train=lazy_images(test_files[0::2], size))
    extras.tracks = _tracks(layout.tracks_dir(base), [p.stem for p in left])
    if (sparse / "points3D.bin").is_file():
        xyz, rgb = read_points3d(sparse / "points3D.bin")
        extras.points = torch.from_numpy(xyz).float()
        extras.point_colors = torch.from_numpy(rgb.astype(np.float32) / 255.0)
    valid = depth[depth > 0]
    return Scene(dataset=dataset, name=scene, blur_type=blur_type, train=train, test=test,
                 near=float(valid.min()) if valid.size else 0.01, far=float(valid.max()) if valid.size else 1.0,
                 scale=1.0, extras=extras)
