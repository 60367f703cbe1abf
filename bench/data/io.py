"""Small file readers shared by the layout loaders (OpenCV for images, numpy for arrays).

Every reader raises ``BenchError("<file>: <what was expected>")`` instead of an OpenCV/numpy
exception, so a broken file becomes one clear line for the user.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.errors import BenchError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".JPG", ".PNG")


def list_images(folder: Path) -> list[Path]:
    """Image files of ``folder`` sorted by name (hidden files ignored)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in IMAGE_SUFFIXES and not p.name.startswith("."))


def read_image(path: Path, size: tuple[int, int] | None = None, *, area: bool = True) -> np.ndarray:
    """Read an RGB image as float32 (H,W,3) in [0,1]; resize to ``size`` = (W,H) if given.

    ``area`` selects INTER_AREA (the protocols' choice for ground truth), else nearest.
    """
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise BenchError(f"{path}: expected a readable image file")
    img = raw.astype(np.float32) / (65535.0 if raw.dtype == np.uint16 else 255.0)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    img = img[..., 2::-1] if img.shape[2] >= 3 else np.repeat(img[..., :1], 3, axis=2)
    if size is not None and (img.shape[1], img.shape[0]) != tuple(size):
        img = cv2.resize(img, tuple(size), interpolation=cv2.INTER_AREA if area else cv2.INTER_NEAREST)
    return np.ascontiguousarray(img)


def read_mask(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read a 0/255 mask as float32 (H,W) in {0,1}: first channel /255 > 1e-3, nearest resize."""
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise BenchError(f"{path}: expected a readable mask image")
    if raw.ndim == 3:
        raw = raw[..., 2] if raw.shape[2] >= 3 else raw[..., 0]  # first (R) channel of BGR(A)
    scale = 65535.0 if raw.dtype == np.uint16 else 255.0
    mask = (raw.astype(np.float32) / scale > 1e-3).astype(np.float32)
    return resize_nearest(mask, size)


def resize_nearest(arr: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """Nearest-neighbour resize of an (H,W) or (H,W,C) array to ``size`` = (W,H)."""
    import cv2

    if size is None or (arr.shape[1], arr.shape[0]) == tuple(size):
        return arr
    return cv2.resize(arr, tuple(size), interpolation=cv2.INTER_NEAREST)


def image_size(path: Path) -> tuple[int, int]:
    """(W,H) of an image file."""
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise BenchError(f"{path}: expected a readable image file")
    return raw.shape[1], raw.shape[0]


def read_npy(path: Path) -> np.ndarray:
    """Load a .npy array (no pickles)."""
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise BenchError(f"{path}: expected a readable .npy array ({err})") from None


def read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Load the named arrays of an .npz file."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise BenchError(f"{path}: expected keys {list(keys)}, missing {missing}")
            return {k: data[k] for k in keys}
    except (OSError, ValueError) as err:
        raise BenchError(f"{path}: expected a readable .npz archive ({err})") from None


def write_image(path: Path, img: np.ndarray) -> None:
    """Write float (H,W,3) RGB in [0,1] or (H,W) mask in [0,1] as 8-bit PNG/JPG."""
    import cv2

    arr = np.clip(np.round(np.asarray(img, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    if arr.ndim == 3:
        arr = arr[..., ::-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), arr):
        raise BenchError(f"{path}: could not write image")
