"""What the viewer shows of a render: the sharp image, BP-Net's blurred reconstruction, the blur
size, the depth; each as an (H,W,3) uint8 image, drawn as the videos draw them
(bench.video.render.panel_image)."""

from __future__ import annotations

import numpy as np
import torch

from bench.method.saved_run import SavedRun
from bench.video.panels import to_uint8
from bench.video.render import panel_image as video_panel

SHARP, BLURRED, BLUR_SIZE, DEPTH = "sharp", "blurred", "blur size", "depth"
_VIDEO_PANEL = {BLURRED: "blurred", BLUR_SIZE: "kernels", DEPTH: "depth"}


def available(has_bpnet: bool) -> tuple[str, ...]:
    """The panels a run can show, the default first: blurred and blur size need its BP-Net."""
    return (SHARP, BLURRED, BLUR_SIZE, DEPTH) if has_bpnet else (SHARP, DEPTH)


def panel_image(saved: SavedRun, K: torch.Tensor, w2c: torch.Tensor, width: int, height: int, frame: float,
                panel: str) -> np.ndarray:
    """(H,W,3) uint8 ``panel`` of ``saved``'s render of camera (K (3,3), w2c (4,4), OpenCV) at
    training-frame time ``frame``; ValueError for a panel the run cannot show."""
    if panel not in available(saved.bpnet is not None):
        raise ValueError(f"panel {panel!r}: expected one of {', '.join(available(saved.bpnet is not None))}")
    render = saved.render(K, w2c, width, height, frame)
    if panel == SHARP:
        return to_uint8(render.rgb.cpu().numpy())
    blurred = saved.blurred(render, frame) if panel in (BLURRED, BLUR_SIZE) else None
    return video_panel(saved, _VIDEO_PANEL[panel], render, blurred)
