"""The D2RF release (defocus blur), as it lies on disk.

``<root>/<scene>/``: ``images/`` sharp full resolution ``NNNNNN_left|right.jpg`` (test ground truth
= the right ones), ``images_bokeh/`` defocused full resolution, ``images_{factor}/`` defocused at
1/factor with left and right interleaved by sorted name (training = the left ones, even positions),
``dpt/*.npy`` a disparity per image (2N), ``motion_masks/*.png`` one per image, ``background_mask/``
one per image, ``flow_i1/%06d_left_{fwd,bwd}.npz`` (left only, optional), ``poses_bounds.npy``
(2N rows, left/right alternating; row count = files in ``images_{factor}``). Ground truth may be
.jpg (release) or .png (synthetic).
"""

from __future__ import annotations

from pathlib import Path

from bench.data.io import image_size, list_images
from bench.data.layouts.checks import (POSES_BOUNDS, by_stem, check_count, check_npy_2d, check_readable_images,
                                       missing_names, poses_rows)

DEFAULT_FACTOR = 2
SHARP_IMAGES = "images"
BOKEH_IMAGES = "images_bokeh"
DPT = "dpt"
MASKS = "motion_masks"
BACKGROUND_MASKS = "background_mask"
FLOW = "flow_i1"
FLOW_PATTERN = "{:06d}_left_{}.npz"  # .format(frame, "fwd" | "bwd")


def scene_dir(root: Path, scene: str) -> Path:
    return Path(root) / scene


def frame_name(k: int, side: str) -> str:
    """File stem of frame ``k`` seen from ``side`` ("left" or "right") in every per-image folder."""
    return f"{k:06d}_{side}"


def train_folder_name(factor: int) -> str:
    return f"images_{factor}"


def check(root: Path, scene: str, factor: int = DEFAULT_FACTOR, *, full: bool = True) -> list[str]:
    """Problems of one scene, one line each ([] = loadable). ``full=False``: folders, counts and
    names only, decoding no image and loading no array but ``poses_bounds.npy``."""
    base = scene_dir(root, scene)
    if not base.is_dir():
        return [f"{base}: expected the scene folder (D2RF layout <root>/<scene>/)"]
    problems: list[str] = []
    rows = poses_rows(base / POSES_BOUNDS, problems)
    folder = base / train_folder_name(factor)
    imgs = list_images(folder)
    if not imgs:
        return problems + [f"{folder}: expected the defocused training images (left and right interleaved)"]
    if rows is not None:
        check_count(folder, len(imgs), rows, "images", problems, f"{rows} rows in poses_bounds.npy")
    if len(imgs) % 2:
        return problems + [f"{folder}: expected left/right pairs (an even number of images), found {len(imgs)}"]
    size = image_size(imgs[0]) if full else None
    if full:
        check_readable_images(imgs, problems, size)
    names = [p.stem for p in imgs]
    left, right = names[0::2], names[1::2]
    if not all("left" in a for a in left) or not all("right" in b for b in right):
        problems.append(f"{folder}: expected names sorting as *_left, *_right pairs")
    _check_sharp(base, right, problems, full)
    dpt = by_stem(base / DPT, ".npy")
    if missing_names(base / DPT, names, dpt, "one disparity .npy per image", ".npy", problems) and full:
        for n in left:
            check_npy_2d(dpt[n], problems, what="disparity", size=size)
    masks = by_stem(base / MASKS)
    if missing_names(base / MASKS, names, masks, "one mask per image", ".png", problems) and full:
        check_readable_images([masks[n] for n in names], problems, what="mask image")
    return problems


def _check_sharp(base: Path, right: list[str], problems: list[str], full: bool) -> None:
    """The sharp test images: one per right view, under the same stem."""
    sharp = by_stem(base / SHARP_IMAGES)
    missing = [n for n in right if n not in sharp]
    if missing:
        problems.append(f"{base / SHARP_IMAGES}: expected the sharp test image {missing[0]}.jpg "
                        f"(+{len(missing) - 1} more missing)")
    elif full:
        check_readable_images([sharp[n] for n in right], problems)
