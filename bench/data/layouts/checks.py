"""Problem lines shared by the layout checks: counts, names, poses files, and the checks that read
a file (images with OpenCV, arrays with numpy). Each helper appends ``"<path>: expected ..."`` lines
to ``problems`` instead of raising, so that one check reports every problem of a scene."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from bench.data.io import list_images, read_npy
from bench.data.llff import read_poses_bounds
from bench.errors import BenchError

POSES_BOUNDS = "poses_bounds.npy"


def check_count(folder: Path, found: int, expected: int, what: str, problems: list[str], source: str) -> bool:
    """Append a problem if ``found != expected``; True when they agree."""
    if found != expected:
        problems.append(f"{folder}: expected {expected} {what} ({source}), found {found}")
        return False
    return True


def poses_rows(path: Path, problems: list[str]) -> int | None:
    """Rows of an LLFF ``poses_bounds.npy`` (2N, left/right alternating), or None with a problem."""
    if not path.is_file():
        problems.append(f"{path}: expected the LLFF poses file (2N rows, left/right alternating)")
        return None
    try:
        return int(read_poses_bounds(path).shape[0])
    except BenchError as err:
        problems.append(str(err))
        return None


def by_stem(folder: Path, suffix: str | None = None) -> dict[str, Path]:
    """{stem: path} of ``folder``'s images, or of its ``*<suffix>`` files (empty if no folder)."""
    if suffix is None:
        return {p.stem: p for p in list_images(folder)}
    return {p.stem: p for p in sorted(folder.glob(f"*{suffix}"))} if folder.is_dir() else {}


def missing_names(folder: Path, names: list[str], have: dict[str, Path], what: str, ext: str,
                  problems: list[str]) -> bool:
    """One problem naming the first of ``names`` not in ``have`` and how many more; True if none."""
    missing = [n for n in names if n not in have]
    if missing:
        problems.append(f"{folder}: expected {what}, missing {missing[0]}{ext} (+{len(missing) - 1} more)")
    return not missing


def check_npy_2d(path: Path, problems: list[str], *, what: str = "array",
                 size: tuple[int, int] | None = None) -> np.ndarray | None:
    """Load an (H,W) or (H,W,1) finite .npy or append a problem line; returns the (H,W) array or None.

    With ``size`` = (W,H) of the images, the array must have the same aspect ratio (it is
    nearest-resized to the images, so only its proportions matter).
    """
    try:
        arr = read_npy(path)
    except BenchError as err:
        problems.append(str(err))
        return None
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        problems.append(f"{path}: expected a 2-D {what} (H,W), got shape {tuple(arr.shape)}")
        return None
    if not np.isfinite(arr).all():
        problems.append(f"{path}: expected finite {what} values, found NaN or inf")
        return None
    if size is not None and abs(arr.shape[1] / arr.shape[0] - size[0] / size[1]) > 0.02 * size[0] / size[1]:
        problems.append(f"{path}: expected a {what} map with the images' aspect ratio ({size[0]}x{size[1]}), "
                        f"got {arr.shape[1]}x{arr.shape[0]}")
        return None
    return arr


def check_readable_images(paths: Sequence[Path], problems: list[str], size: tuple[int, int] | None = None,
                          what: str = "image") -> None:
    """Every image readable; with ``size`` = (W,H) also of that size."""
    import cv2  # only the full check decodes images

    for p in paths:
        raw = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        if raw is None:
            problems.append(f"{p}: expected a readable {what}")
        elif size is not None and (raw.shape[1], raw.shape[0]) != tuple(size):
            problems.append(f"{p}: expected a {size[0]}x{size[1]} {what}, got {raw.shape[1]}x{raw.shape[0]}")
