"""The Deblur4DGS release of Stereo Blur (Shape-of-Motion layout), as it lies on disk.

``<root>/<scene>/x1/``: ``images/%05d.png`` 2N frames interleaved (even = blurry left = training,
odd = right), ``images_test/`` the sharp frames interleaved (test = odd, sharp left = even),
``masks/`` dynamic masks, and ``flow3d_preprocessed/`` with ``colmap/sparse/*.bin`` (COLMAP over all
2N images named ``%05d.png``), ``aligned_depth_anything_colmap/<frame>.npy`` (disparity of each
training frame), ``masks/<frame>.png`` (preferred to ``x1/masks/`` when it holds any) and
``2d_tracks/<q>_<t>.npy`` (P,4) between even frames (optional).
"""

from __future__ import annotations

from pathlib import Path

from bench.data.colmap import read_cameras, read_images
from bench.data.io import image_size, list_images
from bench.data.layouts.checks import by_stem, check_count, check_npy_2d, check_readable_images, missing_names
from bench.errors import BenchError

SCENE_FOLDER = "x1"
IMAGES = "images"
TEST_IMAGES = "images_test"
MASKS = "masks"
PREPROCESSED = "flow3d_preprocessed"
SPARSE = ("colmap", "sparse")  # under PREPROCESSED
DEPTH = "aligned_depth_anything_colmap"  # under PREPROCESSED
TRACKS = "2d_tracks"  # under PREPROCESSED
COLMAP_FILES = ("cameras.bin", "images.bin")


def scene_dir(root: Path, scene: str) -> Path:
    return Path(root) / scene / SCENE_FOLDER


def frame_name(i: int) -> str:
    """File stem of interleaved image ``i`` (2k = left of frame k, 2k + 1 = its right)."""
    return f"{i:05d}"


def track_name(query: str, target: str) -> str:
    """Tracks from frame stem ``query`` to frame stem ``target``."""
    return f"{query}_{target}.npy"


def sparse_dir(base: Path) -> Path:
    return base.joinpath(PREPROCESSED, *SPARSE)


def depth_dir(base: Path) -> Path:
    return base / PREPROCESSED / DEPTH


def tracks_dir(base: Path) -> Path:
    return base / PREPROCESSED / TRACKS


def mask_folder(base: Path) -> Path:
    """The preprocessed masks when that folder holds any, else ``x1/masks/``."""
    pre = base / PREPROCESSED / MASKS
    return pre if list_images(pre) else base / MASKS


def check(root: Path, scene: str, *, full: bool = True) -> list[str]:
    """Problems of one scene, one line each ([] = loadable). ``full=False``: folders, counts and
    names only, decoding no image and reading no array or COLMAP file."""
    base = scene_dir(root, scene)
    if not base.is_dir():
        return [f"{base}: expected the scene folder (Deblur4DGS layout <root>/<scene>/x1/)"]
    imgs = list_images(base / IMAGES)
    if not imgs or len(imgs) % 2:
        return [f"{base / IMAGES}: expected 2N interleaved left/right frames %05d.png, found {len(imgs)}"]
    problems: list[str] = []
    m = len(imgs)
    size = image_size(imgs[0]) if full else None
    if full:
        check_readable_images(imgs, problems, size)
    test = list_images(base / TEST_IMAGES)
    counted = check_count(base / TEST_IMAGES, len(test), m, "sharp interleaved images", problems, "files in images/")
    if counted and full:
        check_readable_images(test, problems)
    sparse = sparse_dir(base)
    absent = [f for f in COLMAP_FILES if not (sparse / f).is_file()]
    for fname in absent:
        problems.append(f"{sparse / fname}: expected the COLMAP model over all {m} images")
    if full and not absent:
        _check_colmap(sparse, imgs, problems)
    train = [p.stem for p in imgs[0::2]]
    depth = depth_dir(base)
    for stem in train:
        f = depth / f"{stem}.npy"
        if not f.is_file():
            problems.append(f"{f}: expected the aligned disparity of training frame {stem}")
        elif full:
            check_npy_2d(f, problems, what="disparity", size=size)
    masks = mask_folder(base)
    missing_names(masks, train, by_stem(masks), "a dynamic mask per training frame", ".png", problems)
    return problems


def _check_colmap(sparse: Path, imgs: list[Path], problems: list[str]) -> None:
    """Every frame registered in ``images.bin``, every image's camera in ``cameras.bin``."""
    try:
        cams, reg = read_cameras(sparse / "cameras.bin"), read_images(sparse / "images.bin")
    except BenchError as err:
        problems.append(str(err))
        return
    names = {im.name for im in reg.values()}
    missing = [p.name for p in imgs if p.name not in names]
    if missing:
        problems.append(f"{sparse / 'images.bin'}: expected a registered image for every frame, "
                        f"missing {missing[0]} (+{len(missing) - 1} more)")
    bad = [im.name for im in reg.values() if im.camera_id not in cams]
    if bad:
        problems.append(f"{sparse / 'images.bin'}: image {bad[0]} refers to a camera not in cameras.bin")
