"""``bench render``: an MP4 of a trained run along a camera path (bench.video.paths), its sharp render
and, on demand, panels beside it:

- ``blurred``: the sharp render blurred through the run's BP-Net (SavedRun.blurred), as the model
  explains the blurry input at that time;
- ``kernels``: the predicted blur size per pixel: the RMS radius in pixels of each pixel's kernel
  about its centroid (bench.metrics.regions.kernel_rms_radius) times BP-Net's blur mask (the share
  of the blurred colour at that pixel), coloured 0 .. (K-1)/2 px (turbo, fixed for the whole video);
- ``depth``: the rendered depth as disparity, coloured from the scene's far plane (blue) to its near
  plane (red), black where nothing was rendered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench import rundir
from bench.errors import BenchError
from bench.video import PANELS
from bench.video import panels as P
from bench.video.encode import even_size, write_mp4
from bench.video.paths import CameraPath, camera_path


def parse_panels(text: str) -> tuple[str, ...]:
    """``--show`` (comma-separated names, '' for none) -> the panels in the order given; BenchError
    naming an unknown one and the allowed ones."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in PANELS]
    if unknown:
        raise BenchError(f"--show {','.join(unknown)}: unknown panel; allowed: {', '.join(PANELS)}")
    return names


@dataclass(frozen=True)
class VideoSpec:
    """What ``bench render`` writes: the ``path`` kind, the ``show``n panels, ``fps``, ``frames`` of a
    synthesised path, the resolution (``scale`` of the test size, or ``width`` in pixels), the ``camera``
    of ``fixed``, the ``time`` of ``bullet``, the saved ``state`` and the ``out`` file (None: the run's
    videos/<path>.mp4)."""

    path: str = "test"
    show: tuple[str, ...] = ()
    fps: int = 24
    frames: int = 96
    scale: float | None = None
    width: int | None = None
    camera: int = 0
    time: float = 0.5
    state: str = "last"
    out: Path | None = None


def render_video(run_dir, spec: VideoSpec, device: str = "auto", progress: bool = True) -> Path:
    """Render ``spec`` of the run in ``run_dir`` to its MP4 (atomically); returns the file's path.
    BenchError, before anything is written, when the run has no such saved state or cannot provide a
    panel asked for."""
    from bench.method.saved_run import SavedRun

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise BenchError(f"{run_dir}: no such run directory")
    saved = SavedRun.load(run_dir, spec.state, device)
    if saved.bpnet is None and {"blurred", "kernels"} & set(spec.show):
        asked = ",".join(p for p in spec.show if p in ("blurred", "kernels"))
        why = ("--state best_test has none (only the final checkpoint saves it): use --state last"
               if spec.state == "best_test" else "its variant trains no blur module, or uses the ground-truth blur")
        raise BenchError(f"--show {asked}: {run_dir} has no BP-Net to show ({why}); panels it can show: depth")
    path = camera_path(saved.scene, spec.path, spec.frames, spec.camera, spec.time)
    path = path.resized(*_size(path, spec))
    out = Path(spec.out) if spec.out else run_dir / rundir.VIDEOS / f"{spec.path}.mp4"
    frames = (_frame(saved, path, i, spec.show) for i in _progress(len(path), out.name, progress))
    return write_mp4(out, frames, spec.fps)


def _size(path: CameraPath, spec: VideoSpec) -> tuple[int, int]:
    """(width, height), both even, of the video's panels: the path's size scaled by ``spec``."""
    if spec.width is not None and spec.scale is not None:
        raise BenchError("--scale and --width: give one of them")
    scale = spec.width / path.width if spec.width is not None else (spec.scale or 1.0)
    if scale <= 0:
        raise BenchError(f"--scale {scale}: expected a positive factor of the test resolution")
    return even_size(round(path.width * scale)), even_size(round(path.height * scale))


def _frame(saved, path: CameraPath, i: int, show: tuple[str, ...]) -> np.ndarray:
    """(H, W * (1 + panels), 3) uint8: video frame ``i`` of ``path``, the sharp render then ``show``."""
    t = float(path.frame[i])
    r = saved.render(path.K[i], path.w2c[i], path.width, path.height, t)
    images = [P.label(P.to_uint8(r.rgb.cpu().numpy()), f"sharp  t={t:.2f}")]
    blurred = saved.blurred(r, t) if {"blurred", "kernels"} & set(show) else None
    for name in show:
        images.append(P.label(panel_image(saved, name, r, blurred), _TITLES[name]))
    return P.side_by_side(images)


_TITLES = {"blurred": "blurred (BP-Net)", "kernels": "blur RMS radius (px)", "depth": "depth"}


def panel_image(saved, name: str, r, blurred) -> np.ndarray:
    """(H,W,3) uint8 panel ``name`` (blurred, kernels, depth) of render ``r`` of ``saved``
    (bench.method.saved_run.SavedRun), ``blurred`` its ``SavedRun.blurred`` output (None unless a
    BP-Net panel is asked for); fixed colour ranges, so colours keep their meaning from frame to frame.
    The one definition of the panels, shared with the viewer (bench.viewer.panels)."""
    if name == "blurred":
        return P.to_uint8(blurred[0].cpu().numpy())
    if name == "kernels":
        from bench.metrics.regions import kernel_rms_radius

        k = saved.cfg.blur.kernel_size
        kernels, mask = blurred[1].cpu().numpy(), blurred[2].cpu().numpy()
        rms = kernel_rms_radius(kernels.reshape(*kernels.shape[:2], k, k)) * mask
        return P.colour_map(rms, 0.0, (k - 1) / 2)
    depth = r.depth[..., 0].cpu().numpy()
    near, far = saved.scene.near, saved.scene.far
    return P.colour_map(1.0 / np.maximum(depth, 1e-6), 1.0 / far, 1.0 / near, valid=depth > 0)


def _progress(total: int, name: str, shown: bool):
    """range(total), with a rich progress bar on a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console()
    columns = (TextColumn(f"render {name}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # Off where stdout is no terminal (a log, a pipe): rich would only leave a blank line there.
    with Progress(*columns, console=console, transient=True, disable=not (shown and console.is_terminal)) as bar:
        yield from bar.track(range(total))
