"""The report's comparison videos: per scene, the blurry input (the training frame at the test view's
time), the ground truth (the test image) and every variant's test render (its lowest seed) side by
side, one video frame per test view in time order, each panel labelled.

Composed from files already on disk (the runs' renders/test/*.png and the scene's images through the
data registry): the report never loads a model. Encoded small (panel width capped, a high CRF, a
slow frame rate) since report.html embeds them (bench.report.html).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import rundir
from bench.report.scene_figures import scene_runs
from bench.video import panels as P
from bench.video.encode import write_mp4

# Largest panel, in pixels (renders are shrunk to fit, never enlarged): small enough to embed,
# large enough to see the blur.
PANEL_MAX_HEIGHT = 180
PANEL_MAX_WIDTH = 320
REPORT_CRF = 32
REPORT_FPS = 4  # test views are few; a slow rate lets the eye compare the panels


@dataclass
class Videos:
    """What the video stage wrote: paths (one MP4 per scene) and notes (scenes it skipped, and why)."""

    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def comparison_videos(sweep_dir: Path, df: pd.DataFrame, out_dir: Path) -> Videos:
    """One comparison video per (dataset, scene) of ``df`` (the collected runs) into ``out_dir``
    (<sweep>/videos/<dataset>_<scene>.mp4); a scene without renders or data is a note."""
    made = Videos()
    for d, sc, scene, run_dirs in scene_runs(sweep_dir, df, "video", made.notes):
        renders = {v: run_dir / rundir.TEST_RENDERS for v, run_dir in run_dirs.items()}
        try:
            made.paths.append(write_mp4(Path(out_dir) / f"{d}_{sc}.mp4", _frames(scene, renders), REPORT_FPS,
                                        crf=REPORT_CRF))
        except Exception as err:  # one unreadable render must not cost the other scenes their videos
            made.notes.append(f"video {d}/{sc}: not written ({type(err).__name__}: {err})")
    return made


def _frames(scene, renders: dict[str, Path]):
    """(H, W, 3) uint8 frames, one per test view in time order: input, GT, then each variant's render
    (a view a variant has no render of is shown black), every panel at the size of the first
    render of the first view, shrunk to the largest panel (PANEL_MAX_HEIGHT x PANEL_MAX_WIDTH)."""
    from bench.metrics.evaluate import read_image

    size = None
    train_at = {int(f): k for k, f in reversed(list(enumerate(scene.train.frame_index.tolist())))}
    order = np.argsort(scene.test.frame_index.numpy(), kind="stable")
    for i in order.tolist():
        name = scene.test.names[i]
        shown = {}
        partner = train_at.get(int(scene.test.frame_index[i]))
        if partner is not None:
            shown["blurry input"] = P.to_uint8(scene.train.images[partner].numpy())
        shown["ground truth"] = P.to_uint8(scene.test.images[i].numpy())
        for v, folder in renders.items():
            png = folder / f"{name}.png"
            shown[v] = P.to_uint8(read_image(png)) if png.is_file() else None
        if size is None:
            first = next((shown[v] for v in renders if shown[v] is not None), shown["ground truth"])
            size = P.shrink(first, PANEL_MAX_HEIGHT, PANEL_MAX_WIDTH).shape[:2]
        blank = np.zeros((*size, 3), np.uint8)
        yield P.side_by_side([P.label(blank if img is None else _same_size(img, size), title)
                              for title, img in shown.items()])


def _same_size(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized (area averaging) to ``size`` (H, W): every panel of a frame shares one size."""
    import cv2

    return image if image.shape[:2] == size else cv2.resize(image, size[::-1], interpolation=cv2.INTER_AREA)
