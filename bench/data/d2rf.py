"""Loader and validator for the D2RF release (defocus blur).

Layout: :mod:`bench.data.layouts.d2rf` (``<root>/<scene>/``: defocused training images left and
right interleaved in ``images_{factor}/``, sharp ground truth in ``images/``, disparity, motion
masks (> 1e-3 = dynamic), optional left flow). Train = left (even positions), test = right (odd).
Parsing as the DyBluRF layout with focal / factor; depth from ``dpt`` per the dataset's
``disparity`` mode (``common.depth_from_disparity``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.data.common import depth_from_disparity, lazy_images, make_cameras, make_views, set_times
from bench.data.dyblurf import load_flow
from bench.data.io import image_size, list_images, read_mask, read_npy, resize_nearest
from bench.data.layouts import d2rf as layout
from bench.data.layouts.checks import POSES_BOUNDS, by_stem
from bench.data.llff import intrinsics, parse_llff, read_poses_bounds
from bench.data.scene import Extras, Scene


def check(root: Path, scene: str, factor: int = layout.DEFAULT_FACTOR,
          disparity: str = "inverse_depth") -> list[str]:
    """Problems of one scene, one line each ([] = loadable): :func:`bench.data.layouts.d2rf.check`
    reading every file (``disparity`` changes nothing the check sees)."""
    return layout.check(root, scene, factor, full=True)


def load(root: Path, scene: str, *, dataset: str, blur_type: str, factor: int = layout.DEFAULT_FACTOR,
         disparity: str = "inverse_depth") -> Scene:
    """Load a validated D2RF scene: train = left (even), test = right (odd) positions."""
    base = layout.scene_dir(root, scene)
    llff = parse_llff(read_poses_bounds(base / POSES_BOUNDS))
    imgs = list_images(base / layout.train_folder_name(factor))
    size = image_size(imgs[0])
    w, h = size
    K = np.stack([intrinsics(f / factor, w, h) for f in llff.hwf[:, 2]])
    left, right = imgs[0::2], imgs[1::2]
    n = len(left)
    dpt = by_stem(base / layout.DPT, ".npy")
    masks = by_stem(base / layout.MASKS)
    sharp = by_stem(base / layout.SHARP_IMAGES)

    rows = {p.stem: i for i, p in enumerate(imgs)}

    def depth_of(paths):
        return torch.from_numpy(np.stack([
            depth_from_disparity(resize_nearest(read_npy(dpt[p.stem]).astype(np.float32).squeeze(), size),
                                 llff.scale, disparity, tuple(llff.bounds[rows[p.stem]]))
            for p in paths]))

    def masks_of(paths):
        return torch.from_numpy(np.stack([read_mask(masks[p.stem], size) for p in paths]))

    train = make_views([p.stem for p in left], make_cameras(K[0::2], llff.c2w[0::2], w, h), lazy_images(left, size),
                       range(n), depth=depth_of(left), motion_mask=masks_of(left))
    test = make_views([p.stem for p in right], make_cameras(K[1::2], llff.c2w[1::2], w, h),
                      lazy_images([sharp[p.stem] for p in right], size), range(n),
                      depth=depth_of(right), motion_mask=masks_of(right))
    set_times(train, test)
    extras = Extras()
    load_flow(base / layout.FLOW, n, size, extras, layout.FLOW_PATTERN)
    sharp_left = [sharp.get(p.stem) for p in left]
    if all(sharp_left):
        extras.sharp_train = lazy_images(sharp_left, size)
    return Scene(dataset=dataset, name=scene, blur_type=blur_type, train=train, test=test,
                 near=float(llff.bounds[:, 0].min()), far=float(llff.bounds[:, 1].max()), scale=llff.scale,
                 extras=extras)
