"""The DyBluRF release of Stereo Blur (motion blur), as it lies on disk.

``<root>/<scene>/dense/``: ``images/`` full-resolution blurry left (only the first file's size is
used), ``images_{W}x{H}/`` the training images (blurry left), ``inference_images/%05d.png`` sharp
right (test), ``sharp_images/`` sharp left (optional), ``disp/*.npy`` a disparity per left frame,
``motion_masks/*.png`` one per left frame, ``flow_i1/%05d_{fwd,bwd}.npz`` (optional; keys ``flow``
(H,W,2) and ``mask``), ``sparse/`` the COLMAP model the poses came from (optional; its points
seed the model), ``poses_bounds.npy`` with 2N rows alternating left, right.
"""

from __future__ import annotations

from pathlib import Path

from bench.data.io import image_size, list_images, read_npz
from bench.data.layouts.checks import (POSES_BOUNDS, by_stem, check_count, check_npy_2d, check_readable_images,
                                       poses_rows)
from bench.errors import BenchError

DEFAULT_HEIGHT = 288
SCENE_FOLDER = "dense"
FULL_IMAGES = "images"
TEST_IMAGES = "inference_images"
SHARP_IMAGES = "sharp_images"
DISP = "disp"
MASKS = "motion_masks"
FLOW = "flow_i1"
SPARSE = "sparse"
FLOW_PATTERN = "{:05d}_{}.npz"  # .format(frame, "fwd" | "bwd")


def scene_dir(root: Path, scene: str) -> Path:
    return Path(root) / scene / SCENE_FOLDER


def frame_name(k: int) -> str:
    """File stem of frame ``k`` in every per-frame folder."""
    return f"{k:05d}"


def train_folder_name(width: int, height: int) -> str:
    return f"images_{width}x{height}"


def train_folder(dense: Path, height: int) -> tuple[Path, float]:
    """The ``images_{W}x{H}`` folder and the factor full / training height, from the first
    full-resolution image (BenchError when there is none or it cannot be read)."""
    full = list_images(dense / FULL_IMAGES)
    if not full:
        raise BenchError(f"{dense / FULL_IMAGES}: expected the full-resolution blurry images (at least one)")
    w_full, h_full = image_size(full[0])
    factor = h_full / float(height)
    return dense / train_folder_name(int(w_full / factor), height), factor


def check(root: Path, scene: str, height: int = DEFAULT_HEIGHT, *, full: bool = True) -> list[str]:
    """Problems of one scene, one line each ([] = loadable). ``full=False``: folders, counts and
    names only, decoding no image but the first full-resolution one (its size names the training
    folder) and loading no array but ``poses_bounds.npy``."""
    dense = scene_dir(root, scene)
    if not dense.is_dir():
        return [f"{dense}: expected the scene folder (DyBluRF layout <root>/<scene>/dense/)"]
    problems: list[str] = []
    rows = poses_rows(dense / POSES_BOUNDS, problems)
    if rows is not None and rows % 2:
        problems.append(f"{dense / POSES_BOUNDS}: expected an even number of rows (left/right pairs), got {rows}")
        rows = None
    try:
        folder, _ = train_folder(dense, height)
    except BenchError as err:
        return problems + [str(err)]
    train = list_images(folder)
    if not train:
        return problems + [f"{folder}: expected the training images at height {height}"]
    n = len(train)
    src = f"{rows} rows in poses_bounds.npy / 2" if rows else "training images"
    if rows:
        check_count(folder, n, rows // 2, "training images", problems, src)
    size = image_size(train[0]) if full else None
    if full:
        check_readable_images(train, problems, size)
    _check_test(dense, n, problems, src, full)
    _check_disp(dense, n, problems, src, size, full)
    masks = list_images(dense / MASKS)
    if check_count(dense / MASKS, len(masks), n, "motion masks", problems, src) and full:
        check_readable_images(masks, problems, what="mask image")
    _check_flow(dense, n, problems, full)
    sharp = list_images(dense / SHARP_IMAGES)
    if sharp:
        check_count(dense / SHARP_IMAGES, len(sharp), n, "sharp left images", problems, src)
    return problems


def _check_test(dense: Path, n: int, problems: list[str], src: str, full: bool) -> None:
    folder = dense / TEST_IMAGES
    if not folder.is_dir():
        problems.append(f"{folder}: expected the sharp right (test) images %05d.png")
        return
    paths = list_images(folder)
    if check_count(folder, len(paths), n, "test images", problems, src) and full:
        check_readable_images(paths, problems)


def _check_disp(dense: Path, n: int, problems: list[str], src: str, size: tuple[int, int] | None,
                full: bool) -> None:
    files = by_stem(dense / DISP, ".npy")
    if check_count(dense / DISP, len(files), n, "disparity .npy files", problems, src) and full:
        for f in files.values():
            check_npy_2d(f, problems, what="disparity", size=size)


def _check_flow(dense: Path, n: int, problems: list[str], full: bool) -> None:
    """The flow is optional, but when its folder is there every frame pair must have both files."""
    folder = dense / FLOW
    if not folder.is_dir():
        return
    for i in range(n - 1):
        for kind, j in (("fwd", i), ("bwd", i + 1)):
            path = folder / FLOW_PATTERN.format(j, kind)
            if not path.is_file():
                problems.append(f"{path}: expected the {kind} flow of frame {j} (keys 'flow', 'mask')")
            elif full:
                _check_flow_file(path, problems)


def _check_flow_file(path: Path, problems: list[str]) -> None:
    try:
        data = read_npz(path, ("flow", "mask"))
    except BenchError as err:
        problems.append(str(err))
        return
    if data["flow"].ndim != 3 or data["flow"].shape[2] != 2:
        problems.append(f"{path}: expected 'flow' of shape (H,W,2), got {tuple(data['flow'].shape)}")
