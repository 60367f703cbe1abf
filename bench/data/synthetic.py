"""The synthetic dataset: each scene is stored in a real layout (DyBluRF, D2RF or Deblur4DGS) plus
``<scene>/synthetic_gt/``; loading = the real layout's loader + GroundTruth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from bench.data.scene import GroundTruth, LazyImages, Scene
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
    return problems


def world_from_generator(root: Path, sc) -> torch.Tensor:
    """(4,4) map from generator world points to the loaded scene's world.

    LLFF layouts scale and recentre (``llff.py``); the COLMAP-based layout keeps the raw world.
    """
    from bench.data.llff import parse_llff, read_poses_bounds

    if sc.layout == "d4dgs":
        return torch.eye(4)
    folder = root / sc.name / "dense" if sc.layout == "dyblurf" else root / sc.name
    llff = parse_llff(read_poses_bounds(folder / "poses_bounds.npy"))
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
    )
    if scene.test.motion_mask is None:
        scene.test.motion_mask = test_mask
    return scene
