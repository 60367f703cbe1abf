"""The synthetic dataset: each scene is stored in a real layout (DyBluRF, D2RF or Deblur4DGS) plus
``<scene>/synthetic_gt/``; loading = the real layout's loader + GroundTruth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.data.scene import GroundTruth, LazyImages, Scene
from bench.data.synth.regions import REGION_DTYPES
from bench.data.synth.write import GT_DIR
from bench.errors import BenchError

GT_KEYS = {"sharp": 4, "depth": 3, "motion_mask": 3, "test_motion_mask": 3}


def ensure(root: Path, scenes, *, force: bool = False, show_progress: bool = True) -> list[Path]:
    """Generate the given SceneSpecs under ``root`` unless already there; returns written folders."""
    from bench.data.synth.generate import generate

    return generate(Path(root), [s.model_dump() for s in scenes], force=force, show_progress=show_progress)


def check(root: Path, sc, opts: dict) -> list[str]:
    """Problems of a synthetic scene: the real layout's checks plus the ground-truth files."""
    import importlib

    folder = Path(root) / sc.name
    if not folder.is_dir():
        return [f"{folder}: synthetic scene not generated yet (run `bench data synth`, or load it once)"]
    problems = importlib.import_module(f"bench.data.{sc.layout}").check(root, sc.name, **opts)
    gt = folder / GT_DIR / "gt.npz"
    if not gt.is_file():
        return problems + [f"{gt}: expected the ground-truth archive of the synthetic scene"]
    try:
        with np.load(gt, allow_pickle=False) as data:
            for key, ndim in GT_KEYS.items():
                if key not in data.files or data[key].ndim != ndim:
                    problems.append(f"{gt}: expected array {key!r} with {ndim} dimensions")
            if "depth" in data.files and not np.isfinite(data["depth"]).all():
                problems.append(f"{gt}: expected finite 'depth', found NaN or inf")
            if sc.blur_type in ("motion", "mixed") and "motion_disp" not in data.files:
                problems.append(f"{gt}: expected 'motion_disp' (N,S,H,W,2) for a {sc.blur_type} scene")
            if sc.blur_type in ("defocus", "mixed") and "coc" not in data.files:
                problems.append(f"{gt}: expected 'coc' (N,H,W) for a {sc.blur_type} scene")
    except (OSError, ValueError) as err:
        problems.append(f"{gt}: expected a readable .npz archive ({err})")
    return problems + _check_regions(folder / GT_DIR / "regions.npz")


def _check_regions(path: Path) -> list[str]:
    """Problems of ``regions.npz``: every key of REGION_DTYPES, (N,H,W), of that dtype."""
    if not path.is_file():
        return [f"{path}: expected the region ground truth (regenerate with `bench data synth --force`)"]
    problems = []
    try:
        with np.load(path, allow_pickle=False) as data:
            for key, dtype in REGION_DTYPES.items():
                if key not in data.files or data[key].ndim != 3 or data[key].dtype != dtype:
                    problems.append(f"{path}: expected array {key!r} (N,H,W) of {np.dtype(dtype).name}")
    except (OSError, ValueError) as err:
        problems.append(f"{path}: expected a readable .npz archive ({err})")
    return problems


def read_shares(root: Path, name: str) -> dict[str, float]:
    """The region shares that ``synthetic_gt/meta.json`` of scene ``name`` under ``root`` records
    (fractions, bench.data.synth.regions); {} when the file is absent, unreadable or has none."""
    import json

    try:
        return json.loads((Path(root) / name / GT_DIR / "meta.json").read_text()).get("shares", {})
    except (OSError, ValueError):
        return {}


def load_regions(path: Path, shape: tuple[int, int, int]) -> dict[str, torch.Tensor] | None:
    """The region ground truth (dict of (N,H,W) tensors, see GroundTruth.regions), None if ``path`` is absent.

    ``shape``: the (N,H,W) of the scene's training frames; a mismatch is a BenchError naming the file.
    """
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in REGION_DTYPES if k in data.files}
    for key in REGION_DTYPES:
        if key not in arrays or arrays[key].shape != shape:
            got = arrays[key].shape if key in arrays else "nothing"
            raise BenchError(f"{path}: expected array {key!r} of shape {shape}, got {got}")
    return {k: torch.from_numpy(v.astype(REGION_DTYPES[k])) for k, v in arrays.items()}


def world_from_generator(root: Path, sc) -> torch.Tensor:
    """(4,4) map from generator world points to the loaded scene's world.

    LLFF layouts scale and recentre (``llff.py``); the COLMAP-based layout keeps the raw world.
    """
    from bench.data.layouts import d2rf, dyblurf
    from bench.data.layouts.checks import POSES_BOUNDS
    from bench.data.llff import parse_llff, read_poses_bounds

    if sc.layout == "d4dgs":
        return torch.eye(4)
    folder = (dyblurf if sc.layout == "dyblurf" else d2rf).scene_dir(root, sc.name)
    llff = parse_llff(read_poses_bounds(folder / POSES_BOUNDS))
    return torch.from_numpy(llff.recenter @ np.diag([llff.scale] * 3 + [1.0])).float()


def load(root: Path, sc, opts: dict, *, dataset: str = "synthetic") -> Scene:
    """Load a generated scene with its layout's loader and attach the GroundTruth."""
    import importlib

    scene = importlib.import_module(f"bench.data.{sc.layout}").load(root, sc.name, dataset=dataset,
                                                                     blur_type=sc.blur_type, **opts)
    with np.load(Path(root) / sc.name / GT_DIR / "gt.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    n, h, w = arrays["depth"].shape
    if n != len(scene.train) or (w, h) != (scene.train.cameras.width, scene.train.cameras.height):
        raise BenchError(f"{Path(root) / sc.name / GT_DIR / 'gt.npz'}: expected {len(scene.train)} frames of "
                         f"{scene.train.cameras.width}x{scene.train.cameras.height}, got {n} of {w}x{h}")
    sharp = torch.from_numpy(arrays["sharp"].astype(np.float32))
    test_mask = torch.from_numpy(arrays["test_motion_mask"].astype(np.float32))
    scene.gt = GroundTruth(
        sharp_train=LazyImages.from_tensor(sharp),
        depth=torch.from_numpy(arrays["depth"] * scene.scale).float(),
        motion_mask=torch.from_numpy(arrays["motion_mask"].astype(np.float32)),
        blur_type=sc.blur_type,
        coc_radius=torch.from_numpy(arrays["coc"]).float() if "coc" in arrays else None,
        motion_disp=torch.from_numpy(arrays["motion_disp"].astype(np.float32)) if "motion_disp" in arrays else None,
        test_motion_mask=test_mask,
        world_from_generator=world_from_generator(Path(root), sc),
        regions=load_regions(Path(root) / sc.name / GT_DIR / "regions.npz", (n, h, w)),
    )
    if scene.test.motion_mask is None:
        scene.test.motion_mask = test_mask
    return scene
