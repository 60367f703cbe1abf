"""Which motion-mask pixels show moving surface: the depth-consistency check (docs/method.md §2).

A motion mask extracted from a blurry frame covers everything the moving object swept over during the
exposure. At mid-exposure (the frame's depth and pose) part of that swept area shows the static
background, at background depth. Dynamic initialisation and DGD back-project mask pixels with that
depth, so without a check they put "dynamic" Gaussians on the wall and floor.

The check: a mask pixel of frame i is lifted to 3D with its depth and projected into every other
frame j. Where it lands on a pixel of j that is outside j's mask and has depth (a *testable* frame),
it is *consistent* with j's static surface when j's depth there is within ``tol`` (relative) of the
point's depth in j. A pixel consistent in more than half of its testable frames is static surface:
a point that moves is somewhere else in most other frames, so behind it frame j sees background at
a larger depth. A point in front of a static occluder in j counts as testable but not consistent;
frames where the point lands inside j's mask say nothing (the object itself, or its sweep).
"""

from __future__ import annotations

import torch

from bench.method.geometry import backproject, pixel_index, project


@torch.no_grad()
def static_votes(depths: torch.Tensor, masks: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor, i: int,
                 tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per mask pixel of frame ``i``: how many other frames test it and how many find static surface there.

    depths (N,H,W) z-depth (0 = invalid); masks (N,H,W) motion masks (> 0.5 = moving); K (N,3,3);
    w2c (N,4,4). Returns testable (H,W) long and consistent (H,W) long (0 outside frame i's mask).
    """
    N, H, W = depths.shape
    sel = (masks[i] > 0.5) & (depths[i] > 0)
    testable = torch.zeros(H, W, dtype=torch.long, device=depths.device)
    consistent = torch.zeros_like(testable)
    if not sel.any():
        return testable, consistent
    c2w = torch.linalg.inv(w2c[i].double()).to(depths.dtype)
    pts = backproject(depths[i], K[i], c2w, sel)
    t_sum = torch.zeros(pts.shape[0], dtype=torch.long, device=depths.device)
    c_sum = torch.zeros_like(t_sum)
    for j in range(N):
        if j != i:
            t, c = _vote(pts, depths[j], masks[j], K[j], w2c[j], tol)
            t_sum += t
            c_sum += c
    testable[sel], consistent[sel] = t_sum, c_sum
    return testable, consistent


def _vote(pts: torch.Tensor, depth: torch.Tensor, mask: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor,
          tol: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(M,) long: does frame (depth (H,W), mask (H,W)) test each point (M,3), and is it static surface there."""
    H, W = depth.shape
    uv, z = project(pts, K, w2c)
    col, row = pixel_index(uv).unbind(-1)
    inside = (z > 0) & (col >= 0) & (col < W) & (row >= 0) & (row < H)
    col, row = col.clamp(0, W - 1), row.clamp(0, H - 1)
    d = depth[row, col]
    testable = inside & (d > 0) & (mask[row, col] <= 0.5)
    consistent = testable & ((d - z).abs() <= tol * z)
    return testable.long(), consistent.long()


def moving_mask(depths: torch.Tensor, masks: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor, i: int,
                tol: float | None) -> torch.Tensor:
    """(H,W) bool: frame ``i``'s mask pixels with depth that are not static surface (module docstring).

    ``tol`` None: no check, every mask pixel with valid depth counts as moving.
    """
    base = (masks[i] > 0.5) & (depths[i] > 0)
    if tol is None:
        return base
    testable, consistent = static_votes(depths, masks, K, w2c, i, tol)
    static = (consistent > 0) & (2 * consistent > testable)
    return base & ~static


def moving_masks(views, tol: float | None, frames: list[int] | None = None) -> dict[int, torch.Tensor]:
    """{frame: (H,W) bool moving mask} for ``frames`` (default all) of ``views`` (bench.data.scene.Views
    with depth and motion masks), by :func:`moving_mask`."""
    depths, masks = views.depth.float(), views.motion_mask.float()
    K, w2c = views.cameras.K.float(), views.cameras.w2c.float()
    frames = range(len(views)) if frames is None else frames
    return {i: moving_mask(depths, masks, K, w2c, i, tol) for i in frames}


def mask_tolerance(cfg) -> float | None:
    """The depth tolerance of the moving-pixel check of a MethodConfig (``model.dynamic_mask_check``,
    ``model.dynamic_mask_depth_tol``); None when the check is off."""
    m = cfg.model
    return m.dynamic_mask_depth_tol if m.dynamic_mask_check == "depth" else None
