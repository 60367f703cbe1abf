"""The quick part of ``bench data check``: is a scene there, with every folder and file count its
layout needs? For planning sweeps over many scenes before anything is submitted.

Quick = folders and files present, counts consistent with ``poses_bounds.npy`` and with each other,
and names paired as the layout requires; no image is decoded except the first full-resolution one
of a DyBluRF scene (its size names the training folder), no array is loaded except
``poses_bounds.npy``. It runs the layouts' own checks (``bench.data.layouts``) with ``full=False``
and imports neither torch nor the layout loaders, so ``bench sweep`` plans a sweep of thousands of
runs in seconds. Whatever the quick check reports, the full check
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

from bench.data.layouts import d2rf, d4dgs, dyblurf

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


def quick_dyblurf(root: Path, scene: str, height: int = dyblurf.DEFAULT_HEIGHT) -> list[str]:
    """DyBluRF layout: :func:`bench.data.layouts.dyblurf.check` without reading the files."""
    return dyblurf.check(root, scene, height, full=False)


def quick_d2rf(root: Path, scene: str, factor: int = d2rf.DEFAULT_FACTOR) -> list[str]:
    """D2RF layout: :func:`bench.data.layouts.d2rf.check` without reading the files."""
    return d2rf.check(root, scene, factor, full=False)


def quick_d4dgs(root: Path, scene: str) -> list[str]:
    """Deblur4DGS layout: :func:`bench.data.layouts.d4dgs.check` without reading the files."""
    return d4dgs.check(root, scene, full=False)


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
        return quick_dyblurf(root, scene, opts.get("height", dyblurf.DEFAULT_HEIGHT))
    if layout == "d2rf":
        return quick_d2rf(root, scene, opts.get("factor", d2rf.DEFAULT_FACTOR))
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
