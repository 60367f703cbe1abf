"""The quick part of ``bench data check``: is a scene there, with every folder and file count its
layout needs? For planning sweeps over many scenes before anything is submitted.

Quick = folders and files present, counts consistent with ``poses_bounds.npy`` and with each other,
and names paired as the layout requires; no image is decoded except the first full-resolution one
of a DyBluRF scene (its size names the training folder), no array is loaded except
``poses_bounds.npy``. It imports neither torch nor the layout loaders, so ``bench sweep`` plans a
sweep of thousands of runs in seconds. Whatever the quick check reports, the full check
(:func:`bench.data.registry.check_scene`) reports too; the full one also reads every file.

Synthetic scenes missing under their data root are generated on first use (:func:`bench.data.
registry.load_scene`): they count as present ("generated on first use") when their data root can be
written.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from bench.data.io import image_size, list_images
from bench.data.llff import read_poses_bounds
from bench.errors import BenchError

PRESENT, MISSING, BROKEN, GENERATED = "present", "missing", "broken", "generated on first use"


@dataclass
class SceneCheck:
    """The quick check of one scene: ``state`` is present, missing, broken or generated on first
    use; ``problems`` one line each naming the file and what was expected."""

    dataset: str
    scene: str
    root: Path
    state: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state in (PRESENT, GENERATED)


def _rows(path: Path, problems: list[str]) -> int | None:
    if not path.is_file():
        problems.append(f"{path}: expected the LLFF poses file (2N rows, left/right alternating)")
        return None
    try:
        return int(read_poses_bounds(path).shape[0])
    except BenchError as err:
        problems.append(str(err))
        return None


def _count(folder: Path, found: int, expected: int, what: str, problems: list[str], source: str) -> bool:
    # Same wording as bench.data.common.check_count (which imports torch).
    if found != expected:
        problems.append(f"{folder}: expected {expected} {what} ({source}), found {found}")
        return False
    return True


def _stems(folder: Path, suffix: str | None = None) -> set[str]:
    if suffix is None:
        return {p.stem for p in list_images(folder)}
    return {p.stem for p in folder.glob(f"*{suffix}")} if folder.is_dir() else set()


def _missing(folder: Path, names: list[str], have: set[str], what: str, ext: str, problems: list[str]) -> None:
    missing = [n for n in names if n not in have]
    if missing:
        problems.append(f"{folder}: expected {what}, missing {missing[0]}{ext} (+{len(missing) - 1} more)")


def quick_dyblurf(root: Path, scene: str, height: int = 288) -> list[str]:
    """DyBluRF layout (``bench.data.dyblurf``): <root>/<scene>/dense/."""
    dense = Path(root) / scene / "dense"
    if not dense.is_dir():
        return [f"{dense}: expected the scene folder (DyBluRF layout <root>/<scene>/dense/)"]
    problems: list[str] = []
    rows = _rows(dense / "poses_bounds.npy", problems)
    if rows is not None and rows % 2:
        problems.append(f"{dense / 'poses_bounds.npy'}: expected an even number of rows (left/right pairs), "
                        f"got {rows}")
        rows = None
    full = list_images(dense / "images")
    if not full:
        return problems + [f"{dense / 'images'}: expected the full-resolution blurry images (at least one)"]
    try:
        w_full, h_full = image_size(full[0])
    except BenchError as err:
        return problems + [str(err)]
    folder = dense / f"images_{int(w_full / (h_full / float(height)))}x{height}"
    n = len(list_images(folder))
    if not n:
        return problems + [f"{folder}: expected the training images at height {height}"]
    src = f"{rows} rows in poses_bounds.npy / 2" if rows else "training images"
    if rows:
        _count(folder, n, rows // 2, "training images", problems, src)
    test = dense / "inference_images"
    if not test.is_dir():
        problems.append(f"{test}: expected the sharp right (test) images %05d.png")
    else:
        _count(test, len(list_images(test)), n, "test images", problems, src)
    _count(dense / "disp", len(_stems(dense / "disp", ".npy")), n, "disparity .npy files", problems, src)
    _count(dense / "motion_masks", len(list_images(dense / "motion_masks")), n, "motion masks", problems, src)
    flow = dense / "flow_i1"
    if flow.is_dir():
        for i in range(n - 1):
            for kind, j in (("fwd", i), ("bwd", i + 1)):
                if not (flow / f"{j:05d}_{kind}.npz").is_file():
                    problems.append(f"{flow / f'{j:05d}_{kind}.npz'}: expected the {kind} flow of frame {j} "
                                    "(keys 'flow', 'mask')")
    sharp = list_images(dense / "sharp_images")
    if sharp:
        _count(dense / "sharp_images", len(sharp), n, "sharp left images", problems, src)
    return problems


def quick_d2rf(root: Path, scene: str, factor: int = 2) -> list[str]:
    """D2RF layout (``bench.data.d2rf``): <root>/<scene>/."""
    base = Path(root) / scene
    if not base.is_dir():
        return [f"{base}: expected the scene folder (D2RF layout <root>/<scene>/)"]
    problems: list[str] = []
    rows = _rows(base / "poses_bounds.npy", problems)
    folder = base / f"images_{factor}"
    imgs = list_images(folder)
    if not imgs:
        return problems + [f"{folder}: expected the defocused training images (left and right interleaved)"]
    if rows is not None:
        _count(folder, len(imgs), rows, "images", problems, f"{rows} rows in poses_bounds.npy")
    if len(imgs) % 2:
        return problems + [f"{folder}: expected left/right pairs (an even number of images), found {len(imgs)}"]
    names = [p.stem for p in imgs]
    left, right = names[0::2], names[1::2]
    if not all("left" in a for a in left) or not all("right" in b for b in right):
        problems.append(f"{folder}: expected names sorting as *_left, *_right pairs")
    _missing(base / "images", right, _stems(base / "images"), "the sharp test images", ".jpg", problems)
    _missing(base / "dpt", names, _stems(base / "dpt", ".npy"), "one disparity .npy per image", ".npy", problems)
    _missing(base / "motion_masks", names, _stems(base / "motion_masks"), "one mask per image", ".png", problems)
    return problems


def quick_d4dgs(root: Path, scene: str) -> list[str]:
    """Deblur4DGS layout (``bench.data.d4dgs``): <root>/<scene>/x1/."""
    base = Path(root) / scene / "x1"
    if not base.is_dir():
        return [f"{base}: expected the scene folder (Deblur4DGS layout <root>/<scene>/x1/)"]
    imgs = list_images(base / "images")
    if not imgs or len(imgs) % 2:
        return [f"{base / 'images'}: expected 2N interleaved left/right frames %05d.png, found {len(imgs)}"]
    problems: list[str] = []
    m = len(imgs)
    _count(base / "images_test", len(list_images(base / "images_test")), m, "sharp interleaved images", problems,
           "files in images/")
    sparse = base / "flow3d_preprocessed" / "colmap" / "sparse"
    for fname in ("cameras.bin", "images.bin"):
        if not (sparse / fname).is_file():
            problems.append(f"{sparse / fname}: expected the COLMAP model over all {m} images")
    train = [p.stem for p in imgs[0::2]]
    depth = base / "flow3d_preprocessed" / "aligned_depth_anything_colmap"
    _missing(depth, train, _stems(depth, ".npy"), "the aligned disparity of every training frame", ".npy", problems)
    pre = base / "flow3d_preprocessed" / "masks"
    masks = pre if list_images(pre) else base / "masks"
    _missing(masks, train, _stems(masks), "a dynamic mask per training frame", ".png", problems)
    return problems


def _synthetic_complete(root: Path, name: str) -> bool:
    """``bench.data.synth.generate.scene_complete`` without importing the renderer."""
    from bench.data.synth.write import GENERATOR_VERSION, GT_DIR

    try:
        meta = json.loads((Path(root) / name / GT_DIR / "meta.json").read_text())
        return meta.get("generator_version") == GENERATOR_VERSION
    except (OSError, ValueError):
        return False


def _writable(path: Path) -> Path | None:
    """The nearest existing folder at or above ``path`` when it is writable, else None."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path if os.access(path, os.W_OK | os.X_OK) else None


def quick_layout(layout: str, root: Path, scene: str, opts: dict) -> list[str]:
    """The quick check of one layout with the options of ``registry.layout_options``."""
    if layout == "dyblurf":
        return quick_dyblurf(root, scene, opts.get("height", 288))
    if layout == "d2rf":
        return quick_d2rf(root, scene, opts.get("factor", 2))
    return quick_d4dgs(root, scene)


def quick_check_scene(dataset: str, scene: str, data_root: str | os.PathLike | None = None) -> SceneCheck:
    """The quick check of one scene of a dataset under its data root (see the module docstring)."""
    from bench.data.registry import data_root as resolve
    from bench.data.registry import get_dataset, layout_options

    spec = get_dataset(dataset)
    sc = spec.scene(scene)
    root = resolve(dataset, data_root)
    opts = layout_options(spec, sc.layout)
    if spec.layout == "synthetic":
        if not _synthetic_complete(root, scene):
            if _writable(root) is None:
                return SceneCheck(dataset, scene, root, BROKEN, [
                    f"{root}: synthetic scene {scene} is not generated yet and the data root cannot be "
                    "written (generate it with `bench data synth` where it can, or pass another data root)"])
            return SceneCheck(dataset, scene, root, GENERATED)
        from bench.data.synth.write import GT_DIR

        problems = quick_layout(sc.layout, root, scene, opts)
        gt = root / scene / GT_DIR / "gt.npz"
        if not gt.is_file():
            problems.append(f"{gt}: expected the ground-truth archive of the synthetic scene")
        return SceneCheck(dataset, scene, root, BROKEN if problems else PRESENT, problems)
    if not (root / scene).exists():
        return SceneCheck(dataset, scene, root, MISSING, [
            f"{root / scene}: scene folder not found (dataset {dataset}, {sc.layout} layout); "
            "put the data there or pass --data-root / set $BENCH_DATA"])
    problems = quick_layout(sc.layout, root, scene, opts)
    return SceneCheck(dataset, scene, root, BROKEN if problems else PRESENT, problems)
