"""The scene's ground-truth blur as a differentiable operator (synthetic scenes only) [ours].

A diagnostic, not part of the method: training with ``blur.ground_truth=true`` passes every
training render through the blur that actually formed the frame instead of BP-Net's prediction.
Its test PSNR is the ceiling of *any* learned blur module at the same schedule, so the gap
between it and ``no_blur`` says how much a benchmark leaves a blur model to win.

The operators are gather-style re-blurs of the stored per-pixel blur, in torch:
motion = mean over the S exposure sub-frames of the render sampled at ``x - d_s(x)``; defocus =
per-pixel anti-aliased disc of the stored CoC radius. They reproduce the generator's blurry frames
from its sharp frames closely (measured in docs/datasets.md §Synthetic), not exactly: the generator
blurs layers at 2x resolution and composites occlusions, a per-pixel gather cannot.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf

from bench.errors import BenchError
from bench.method.kernels import apply_kernels, kernel_offsets


class TrueBlur:
    """``blur(sharp (1,3,H,W), frame int) -> (1,3,H,W)``: the true blur of training frame ``frame``.

    gt: the scene's :class:`~bench.data.scene.GroundTruth` with ``motion_disp`` (N,S,H,W,2) for
    motion scenes or ``coc_radius`` (N,H,W) for defocus scenes; ``frame`` indexes its N frames.
    """

    def __init__(self, gt, device=None):
        if gt is None:
            raise BenchError("blur.ground_truth=true: the scene has no ground truth (synthetic scenes only)")
        if gt.motion_disp is not None and gt.coc_radius is not None:
            raise BenchError("blur.ground_truth=true: mixed motion+defocus scenes are not supported; "
                             "use a motion or defocus scene")
        self.disp = None if gt.motion_disp is None else gt.motion_disp.float().to(device)
        self.coc = None if gt.coc_radius is None else gt.coc_radius.float().to(device)
        if self.disp is None and self.coc is None:
            raise BenchError("blur.ground_truth=true: the scene's ground truth holds neither motion_disp nor coc_radius")

    def __call__(self, sharp: torch.Tensor, frame: int) -> torch.Tensor:
        if self.disp is not None:
            return motion_reblur(sharp, self.disp[frame])
        return defocus_reblur(sharp, self.coc[frame])


def motion_reblur(sharp: torch.Tensor, disp: torch.Tensor) -> torch.Tensor:
    """Mean over sub-frames of (1,3,H,W) ``sharp`` bilinearly sampled at ``x - disp[s](x)``; disp (S,H,W,2) px."""
    _, _, H, W = sharp.shape
    ys, xs = torch.meshgrid(torch.arange(H, dtype=sharp.dtype, device=sharp.device),
                            torch.arange(W, dtype=sharp.dtype, device=sharp.device), indexing="ij")
    gx = (xs - disp[..., 0]) * (2.0 / (W - 1)) - 1.0  # (S,H,W) in grid_sample's [-1, 1]
    gy = (ys - disp[..., 1]) * (2.0 / (H - 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    samples = nnf.grid_sample(sharp.expand(len(disp), -1, -1, -1), grid, align_corners=True, padding_mode="border")
    return samples.mean(dim=0, keepdim=True)


def defocus_reblur(sharp: torch.Tensor, coc: torch.Tensor) -> torch.Tensor:
    """Per-pixel disc blur of (1,3,H,W) ``sharp``: pixel x averages the disc of radius ``coc`` (H,W) px.

    Disc weights as :func:`bench.data.synth.blur.disc_kernel`: clip(r + 0.5 - distance, 0, 1), normalised.
    """
    half = int(math.ceil(float(coc.max()) + 0.5))
    dist = kernel_offsets(2 * half + 1, sharp.device, sharp.dtype).norm(dim=-1).view(-1, 1, 1)  # (size²,1,1)
    w = (coc[None] + 0.5 - dist).clamp(0.0, 1.0)
    return apply_kernels(sharp, (w / w.sum(dim=0, keepdim=True))[None])
