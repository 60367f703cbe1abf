"""What the viewer shows of a render: the sharp image, BP-Net's blurred reconstruction, the blur
size, the depth; each as an (H,W,3) uint8 image."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps

from bench.method.saved_run import SavedRun

SHARP, BLURRED, BLUR_SIZE, DEPTH = "sharp", "blurred", "blur size", "depth"


def available(has_bpnet: bool) -> tuple[str, ...]:
    """The panels a run can show, the default first: blurred and blur size need its BP-Net."""
    return (SHARP, BLURRED, BLUR_SIZE, DEPTH) if has_bpnet else (SHARP, DEPTH)


def blur_size_map(kernels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Blur size in pixels (H,W): each pixel's kernel's RMS radius about its centroid, weighted by
    the blur mask (the formation mixes in the blurred colour by that weight, so a masked-out
    kernel blurs nothing). kernels (H,W,K*K), row-major K x K weights summing to one; mask (H,W).
    The radius is the spread about the centroid, so a kernel that only shifts has size 0."""
    kk = kernels.shape[-1]
    K = int(round(kk ** 0.5))
    r = (K - 1) / 2
    dy, dx = torch.meshgrid(torch.arange(K, device=kernels.device) - r,
                            torch.arange(K, device=kernels.device) - r, indexing="ij")
    dy, dx = dy.reshape(kk).to(kernels.dtype), dx.reshape(kk).to(kernels.dtype)
    w = kernels / kernels.sum(-1, keepdim=True).clamp_min(1e-12)
    cy, cx = (w * dy).sum(-1, keepdim=True), (w * dx).sum(-1, keepdim=True)
    second = (w * ((dy - cy) ** 2 + (dx - cx) ** 2)).sum(-1)
    return second.clamp_min(0).sqrt() * mask


def colorize(values: np.ndarray, vmin: float, vmax: float, cmap: str = "turbo") -> np.ndarray:
    """(H,W,3) uint8 colours of ``values`` (H,W) through colour map ``cmap``, vmin..vmax mapped to
    its ends (values outside clipped)."""
    span = max(vmax - vmin, 1e-12)
    t = np.clip((np.asarray(values, dtype=np.float64) - vmin) / span, 0.0, 1.0)
    return (colormaps[cmap](t)[..., :3] * 255 + 0.5).astype(np.uint8)


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    """(H,W,3) uint8 of an (H,W,3) float image in [0, 1]."""
    return (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()


def panel_image(saved: SavedRun, K: torch.Tensor, w2c: torch.Tensor, width: int, height: int, frame: float,
                panel: str) -> np.ndarray:
    """(H,W,3) uint8 ``panel`` of ``saved``'s render of camera (K (3,3), w2c (4,4), OpenCV) at
    training-frame time ``frame``. Depth is coloured over the scene's near..far bounds and blur size
    over 0..the kernel's half size, fixed ranges so colours keep their meaning as the camera moves."""
    render = saved.render(K, w2c, width, height, frame)
    if panel == SHARP:
        return to_uint8(render.rgb)
    if panel == DEPTH:
        return colorize(render.depth[..., 0].cpu().numpy(), saved.scene.near, saved.scene.far)
    blurred = saved.blurred(render, frame)
    if blurred is None or panel not in (BLURRED, BLUR_SIZE):
        raise ValueError(f"panel {panel!r}: expected one of {', '.join(available(blurred is not None))}")
    image, kernels, mask = blurred
    if panel == BLURRED:
        return to_uint8(image)
    half = (saved.cfg.blur.kernel_size - 1) / 2
    return colorize(blur_size_map(kernels, mask).cpu().numpy(), 0.0, half)
