"""Generate synthetic scenes into a data root, atomically (temp folder, then rename)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from bench.data.synth.regions import compute_regions
from bench.data.synth.render import render_scene
from bench.data.synth.catalog import make_scene
from bench.data.synth.write import (GENERATOR_VERSION, GT_DIR, write_d2rf, write_d4dgs, write_dyblurf, write_gt,
                                    write_regions)
from bench.locks import FileLock


def scene_complete(root: Path, name: str) -> bool:
    """True when ``root/name`` holds a scene of the current generator version.

    A scene folder exists only once fully written (it is renamed into place last); a scene from an
    older generator version counts as missing, so it is regenerated (and replaced atomically).
    """
    meta = Path(root) / name / GT_DIR / "meta.json"
    try:
        return json.loads(meta.read_text()).get("generator_version") == GENERATOR_VERSION
    except (OSError, ValueError):
        return False


def generate_scene(root: Path, name: str, *, seed: int, layout: str, blur_type: str, progress=None) -> Path:
    """Render scene ``name`` and write it to ``root/name`` atomically; returns the scene folder."""
    sd = make_scene(name, seed)
    if sd.blur_type != blur_type:
        raise ValueError(f"scene {name}: family renders {sd.blur_type} blur, registry says {blur_type}")
    sd.layout = layout
    rendered = render_scene(sd, progress=progress)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{name}-{os.getpid()}-{time.time_ns()}"
    try:
        {"dyblurf": write_dyblurf, "d2rf": write_d2rf, "d4dgs": write_d4dgs}[layout](rendered, tmp)
        regions, shares = compute_regions(sd, rendered)
        write_gt(sd, rendered, tmp, shares)
        write_regions(regions, tmp)
        _install(tmp, root / name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root / name


def _install(tmp: Path, final: Path) -> None:
    """Rename the finished ``tmp`` folder onto ``final``, replacing an older scene there.

    A concurrent generator may install the same (deterministic) scene first; that one is kept.
    """
    old = None
    if final.exists():
        old = final.parent / f".old-{final.name}-{os.getpid()}-{time.time_ns()}"
        try:
            os.rename(final, old)
        except FileNotFoundError:
            old = None
    try:
        os.rename(tmp, final)
    except OSError:
        if old is not None and not final.exists():
            os.rename(old, final)  # put the previous scene back
            old = None
        if not scene_complete(final.parent, final.name):
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def generate(root: Path, scenes: list[dict], *, force: bool = False, show_progress: bool = True) -> list[Path]:
    """Generate every scene in ``scenes`` (dicts with name, seed, layout, blur_type) missing under ``root``.

    Existing complete scenes are reused unless ``force``. Progress: one bar over all frames.
    """
    from rich.progress import Progress

    root = Path(root)
    todo = [s for s in scenes if force or not scene_complete(root, s["name"])]
    if not todo:
        return []
    frames = sum(make_scene(s["name"], s["seed"]).frames for s in todo)
    written = []
    with Progress(disable=not show_progress, transient=False) as bar:
        task = bar.add_task(f"synthetic scenes -> {root}", total=frames)
        for s in todo:
            bar.update(task, description=f"rendering {s['name']}")
            with _scene_lock(root, s["name"]):
                # another process (a parallel run's first use) may have written it while we waited
                if force or not scene_complete(root, s["name"]):
                    written.append(generate_scene(root, s["name"], seed=s["seed"], layout=s["layout"],
                                                  blur_type=s["blur_type"], progress=lambda: bar.advance(task)))
    return written


def _scene_lock(root: Path, name: str) -> FileLock:
    """Exclusive advisory lock per scene, so parallel first uses generate it once."""
    return FileLock(root / f".{name}.lock")
