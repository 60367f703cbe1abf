"""Loader and validator for the D2RF release (defocus blur).

Layout (``<root>/<scene>/``): ``images/`` sharp full resolution ``NNNNNN_left|right.jpg`` (test
ground truth = the right ones), ``images_bokeh/`` defocused full resolution, ``images_{factor}/``
defocused at 1/factor with left and right interleaved by sorted name (training = the left ones,
even positions), ``dpt/*.npy`` disparity per image (2N), ``motion_masks/*.png`` per image (> 1e-3
= dynamic), ``background_mask/`` per image, ``flow_i1/%06d_left_{fwd,bwd}.npz`` (left only),
``poses_bounds.npy`` (2N rows, left/right alternating; row count = files in ``images_{factor}``).
Parsing as the DyBluRF layout with focal / factor; depth from ``dpt`` per the dataset's
``disparity`` mode (``common.depth_from_disparity``). Ground truth may be .jpg (release) or .png (synthetic).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.data.common import (check_count, check_npy_2d, check_readable_images, depth_from_disparity, lazy_images,
                               make_cameras, make_views, set_times)
from bench.data.dyblurf import load_flow
from bench.data.io import image_size, list_images, read_mask, read_npy, resize_nearest
from bench.data.llff import intrinsics, parse_llff, read_poses_bounds
from bench.data.scene import Extras, Scene
from bench.errors import BenchError


def _by_stem(folder: Path) -> dict[str, Path]:
    return {p.stem: p for p in list_images(folder)}


def check(root: Path, scene: str, factor: int = 2, disparity: str = "inverse_depth") -> list[str]:
    """Problems of one scene, one line each ([] = loadable)."""
    base = Path(root) / scene
    if not base.is_dir():
        return [f"{base}: expected the scene folder (D2RF layout <root>/<scene>/)"]
    problems: list[str] = []
    pb = base / "poses_bounds.npy"
    rows = None
    if not pb.is_file():
        problems.append(f"{pb}: expected the LLFF poses file (2N rows, left/right alternating)")
    else:
        try:
            rows = read_poses_bounds(pb).shape[0]
        except BenchError as err:
            problems.append(str(err))
    folder = base / f"images_{factor}"
    imgs = list_images(folder)
    if not imgs:
        problems.append(f"{folder}: expected the defocused training images (left and right interleaved)")
        return problems
    if rows is not None:
        check_count(folder, len(imgs), rows, "images", problems, f"{rows} rows in poses_bounds.npy")
    if len(imgs) % 2:
        problems.append(f"{folder}: expected left/right pairs (an even number of images), found {len(imgs)}")
        return problems
    size = image_size(imgs[0])
    check_readable_images(imgs, problems, size)
    names = [p.stem for p in imgs]
    left, right = names[0::2], names[1::2]
    if not all("left" in a for a in left) or not all("right" in b for b in right):
        problems.append(f"{folder}: expected names sorting as *_left, *_right pairs")
    sharp = _by_stem(base / "images")
    missing = [n for n in right if n not in sharp]
    if missing:
        problems.append(f"{base / 'images'}: expected the sharp test image {missing[0]}.jpg "
                        f"(+{len(missing) - 1} more missing)")
    else:
        check_readable_images([sharp[n] for n in right], problems)
    dpt = {p.stem: p for p in (base / "dpt").glob("*.npy")}
    missing = [n for n in names if n not in dpt]
    if missing:
        problems.append(f"{base / 'dpt'}: expected one disparity .npy per image, missing {missing[0]}.npy "
                        f"(+{len(missing) - 1} more)")
    else:
        for n in left:
            check_npy_2d(dpt[n], problems, what="disparity", size=size)
    masks = _by_stem(base / "motion_masks")
    missing = [n for n in names if n not in masks]
    if missing:
        problems.append(f"{base / 'motion_masks'}: expected one mask per image, missing {missing[0]}.png "
                        f"(+{len(missing) - 1} more)")
    else:
        check_readable_images([masks[n] for n in names], problems, what="mask image")
    return problems


def load(root: Path, scene: str, *, dataset: str, blur_type: str, factor: int = 2,
         disparity: str = "inverse_depth") -> Scene:
    """Load a validated D2RF scene: train = left (even), test = right (odd) positions."""
    base = Path(root) / scene
    llff = parse_llff(read_poses_bounds(base / "poses_bounds.npy"))
    imgs = list_images(base / f"images_{factor}")
    size = image_size(imgs[0])
    w, h = size
    K = np.stack([intrinsics(f / factor, w, h) for f in llff.hwf[:, 2]])
    left, right = imgs[0::2], imgs[1::2]
    n = len(left)
    dpt = {p.stem: p for p in (base / "dpt").glob("*.npy")}
    masks = _by_stem(base / "motion_masks")
    sharp = _by_stem(base / "images")

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
    load_flow(base / "flow_i1", n, size, extras, "{:06d}_left_{}.npz")
    sharp_left = [sharp.get(p.stem) for p in left]
    if all(sharp_left):
        extras.sharp_train = lazy_images(sharp_left, size)
    return Scene(dataset=dataset, name=scene, blur_type=blur_type, train=train, test=test,
                 near=float(llff.bounds[:, 0].min()), far=float(llff.bounds[:, 1].max()), scale=llff.scale,
                 extras=extras)
