"""Unseen (virtual) views: cameras near the training trajectory, images forward-warped with depth.

docs/method.md §7: for N training frames, 4(N-1) virtual views. For each pair (i, i+1): two views at
the midpoint pose (rotation slerp, camera centre mean), one warped from frame i and one from
frame i+1, and two side ("perpendicular") views at frame i's pose shifted by +-``offset`` scene
units, warped from frame i. [ours] The side views move along frame i's camera x axis, the stereo
baseline the test views lie on; upstream moves them orthogonally to the optical axis and to the
trajectory (c_{i+1} - c_i), which is vertical for a sideways-moving camera (``side_direction``).
Holes are filled with OpenCV's Telea inpainting ([ours], upstream uses LaMa).

[ours] The trainer sets ``offset`` relative to the scene (:func:`scene_offset`): a fraction of the
training frames' median depth, so that the side views' parallax (offset / depth, in radians) and
with it their disoccluded, inpainted share does not depend on how a loader scaled the scene.
Upstream's 0.5 is in its own normalised units; in ours it was 0.13-0.18 x the median depth and left
26-53% of the side views' pixels to inpainting (docs/method.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from bench.method.geometry import (PIXEL_CENTRE, backproject, matrix_to_quat, project, quat_to_matrix,
                                   rigid_inverse, slerp_quat)

KINDS = ("mid_from_prev", "mid_from_next", "perp_plus", "perp_minus")


@dataclass
class VirtualViews:
    """V virtual views.

    w2c (V,4,4), K (V,3,3); images (V,H,W,3) float32 in [0,1] (inpainted); motion_mask (V,H,W)
    float32 in {0,1} (warped, then inpainted); valid (V,H,W) bool: pixels that received warped
    colour (False = inpainted hole); source_frame (V,) long: the training view each was warped
    from (its time and camera embedding are reused); kind: one of KINDS per view; offset: the
    perpendicular views' shift in scene units.
    """

    w2c: torch.Tensor
    K: torch.Tensor
    images: torch.Tensor
    motion_mask: torch.Tensor
    valid: torch.Tensor
    source_frame: torch.Tensor
    kind: list[str]
    offset: float

    def __len__(self) -> int:
        return self.w2c.shape[0]


def forward_warp(image: torch.Tensor, depth: torch.Tensor, K_src: torch.Tensor, c2w_src: torch.Tensor,
                 K_dst: torch.Tensor, w2c_dst: torch.Tensor, *, z_tol: float = 0.02,
                 min_weight: float = 0.05, cover_weight: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward-warp a source image to another camera by bilinear splatting with a z-test.

    image (H,W,C), depth (H,W) source z-depth (0 = invalid). Every source pixel is lifted to 3D,
    projected into the destination camera and splatted onto its 4 neighbouring pixels with
    bilinear weights. Per destination pixel only contributions within ``z_tol`` (relative) of the
    nearest *covering* depth are kept, so the nearest surface wins. A covering contribution has a
    bilinear weight of at least ``cover_weight``; the nearest depth of any contribution is the
    fallback where none covers. Without that, a near surface's splat that only grazes a pixel
    (weight ~0.01, e.g. at a depth edge or on a slanted floor) would reject the far surface that
    covers it and leave a hole. Returns warped (H,W,C) (weight-normalised, 0 in holes) and valid
    (H,W) bool (accumulated weight > ``min_weight``). The destination has the source's image size.
    """
    H, W = depth.shape
    C = image.shape[-1]
    src_ok = depth > 0
    pts = backproject(depth, K_src, c2w_src, src_ok)
    cols = image[src_ok].to(pts.dtype)
    uv, z = project(pts, K_dst, w2c_dst)
    front = z > 1e-6
    uv, z, cols = uv[front], z[front], cols[front]
    # Bilinear weights between pixel centres: in index units (centre of pixel j at j) a source
    # pixel centre that lands on a destination centre gives that one pixel all its weight.
    pos = uv - PIXEL_CENTRE
    base = torch.floor(pos)
    frac = pos - base
    idx, wts = [], []
    for dx in (0, 1):
        for dy in (0, 1):
            x, y = base[:, 0].long() + dx, base[:, 1].long() + dy
            w = (frac[:, 0] if dx else 1 - frac[:, 0]) * (frac[:, 1] if dy else 1 - frac[:, 1])
            inside = (x >= 0) & (x < W) & (y >= 0) & (y < H) & (w > 0)
            idx.append(torch.where(inside, y * W + x, torch.full_like(x, -1)))
            wts.append(w)
    idx, wts = torch.cat(idx), torch.cat(wts)
    zs, cols = z.repeat(4), cols.repeat(4, 1)
    keep = idx >= 0
    idx, wts, zs, cols = idx[keep], wts[keep], zs[keep], cols[keep]
    covering = wts >= cover_weight
    zcover = _nearest_depth(idx[covering], zs[covering], H * W)
    zref = torch.where(torch.isfinite(zcover), zcover, _nearest_depth(idx, zs, H * W))
    front = zs <= zref[idx] * (1 + z_tol)
    idx, wts, cols = idx[front], wts[front], cols[front]
    acc = torch.zeros(H * W, C, dtype=cols.dtype, device=cols.device).index_add_(0, idx, cols * wts[:, None])
    wsum = torch.zeros(H * W, dtype=cols.dtype, device=cols.device).index_add_(0, idx, wts)
    valid = wsum > min_weight
    warped = torch.where(valid[:, None], acc / wsum.clamp_min(1e-12)[:, None], torch.zeros_like(acc))
    return warped.view(H, W, C).to(image.dtype), valid.view(H, W)


def _nearest_depth(idx: torch.Tensor, zs: torch.Tensor, n: int) -> torch.Tensor:
    """(n,) smallest depth of the contributions ``zs`` (M,) to each destination pixel ``idx`` (M,); inf where none."""
    return torch.full((n,), float("inf"), dtype=zs.dtype, device=zs.device).scatter_reduce(0, idx, zs, "amin")


def inpaint_holes(image: torch.Tensor, valid: torch.Tensor, radius: int = 3) -> torch.Tensor:
    """Fill pixels where ``valid`` is False with OpenCV Telea inpainting.

    image (H,W,C) float in [0,1] (C = 1 or 3); valid pixels are returned unchanged (inpainting
    works on an 8-bit copy for colour images, float32 for single-channel ones).
    """
    holes = (~valid).cpu().numpy().astype(np.uint8)
    if not holes.any() or valid.sum() == 0:
        return image
    arr = image.detach().cpu().numpy()
    if arr.shape[-1] == 1:
        filled = cv2.inpaint(arr[..., 0].astype(np.float32), holes, radius, cv2.INPAINT_TELEA)[..., None]
        filled = filled.astype(np.float32)
    else:
        as8 = np.clip(arr * 255.0 + 0.5, 0, 255).astype(np.uint8)
        filled = cv2.inpaint(as8, holes, radius, cv2.INPAINT_TELEA).astype(np.float32) / 255.0
    filled = torch.from_numpy(filled).to(image)
    return torch.where(valid[..., None].to(image.device), image, filled)


def midpoint_pose(c2w_a: torch.Tensor, c2w_b: torch.Tensor) -> torch.Tensor:
    """(4,4) camera-to-world halfway between two poses: rotation slerp, centre mean."""
    q = slerp_quat(matrix_to_quat(c2w_a[:3, :3]), matrix_to_quat(c2w_b[:3, :3]), 0.5)
    out = torch.eye(4, dtype=c2w_a.dtype, device=c2w_a.device)
    out[:3, :3] = quat_to_matrix(q)
    out[:3, 3] = 0.5 * (c2w_a[:3, 3] + c2w_b[:3, 3])
    return out


def perpendicular_direction(c2w: torch.Tensor, c2w_next: torch.Tensor) -> torch.Tensor:
    """Unit (3,) direction orthogonal to the optical axis of ``c2w`` and to the trajectory.

    Falls back to the camera's right axis when the trajectory is (nearly) still or along the
    optical axis, where the cross product is undefined.
    """
    axis = c2w[:3, 2]
    traj = c2w_next[:3, 3] - c2w[:3, 3]
    d = torch.cross(axis, traj, dim=0)
    if d.norm() < 1e-6 * max(1.0, float(traj.norm())):
        return c2w[:3, 0] / c2w[:3, 0].norm()
    return d / d.norm()


def side_direction(c2w: torch.Tensor, c2w_next: torch.Tensor, rule: str = "camera_x") -> torch.Tensor:
    """Unit (3,) direction of the side views of a pair of training poses (4,4) (docs/method.md §7).

    ``camera_x`` [ours]: the source camera's own x axis, the direction of a stereo baseline, along
    which the benchmark's test views lie (the right camera of a stereo rig) whatever the camera's
    path. ``trajectory`` (upstream): :func:`perpendicular_direction`; for a camera that moves
    sideways that is its y axis, so the side views add parallax the test views do not have.
    """
    if rule == "camera_x":
        return c2w[:3, 0] / c2w[:3, 0].norm()
    if rule == "trajectory":
        return perpendicular_direction(c2w, c2w_next)
    raise ValueError(f"side direction rule {rule!r}: expected camera_x or trajectory")


def scene_offset(depths: torch.Tensor, fraction: float) -> tuple[float, float]:
    """(offset in scene units, median depth): ``fraction`` x the median of the valid (> 0) depths.

    depths (N,H,W) z-depth of the training frames (0 = invalid).
    """
    valid = depths[depths > 0]
    if valid.numel() == 0:
        raise ValueError("virtual views need valid training depth")
    median = float(valid.float().median())
    return fraction * median, median


def inpainted_share(views: "VirtualViews") -> dict[str, float]:
    """The fraction of pixels filled by inpainting (not warped), per view kind present."""
    holes = ~views.valid
    return {k: float(holes[[i for i, kind in enumerate(views.kind) if kind == k]].float().mean())
            for k in KINDS if k in views.kind}


def build_virtual_views(c2w: torch.Tensor, K: torch.Tensor, images: torch.Tensor, depths: torch.Tensor,
                        masks: torch.Tensor, *, offset: float = 0.5, inpaint_radius: int = 3,
                        side: str = "camera_x", progress=None) -> VirtualViews:
    """The 4(N-1) virtual views of N training frames.

    c2w (N,4,4); K (N,3,3) or (3,3); images (N,H,W,3) in [0,1] (the blurry frames); depths (N,H,W)
    z-depth (0 = invalid); masks (N,H,W) motion masks in {0,1}. ``offset`` in scene units for the
    side ("perp") views, ``side`` their direction rule (:func:`side_direction`). ``progress``:
    optional callable(done, total) for long scenes.
    """
    N = c2w.shape[0]
    if N < 2:
        raise ValueError("virtual views need at least two training frames")
    Ks = K.expand(N, 3, 3) if K.dim() == 2 else K
    plans = []  # (kind, source index, dst c2w, dst K)
    for i in range(N - 1):
        mid = midpoint_pose(c2w[i], c2w[i + 1])
        plans.append(("mid_from_prev", i, mid, Ks[i]))
        plans.append(("mid_from_next", i + 1, mid, Ks[i + 1]))
        d = side_direction(c2w[i], c2w[i + 1], side)
        for kind, sign in (("perp_plus", 1.0), ("perp_minus", -1.0)):
            shifted = c2w[i].clone()
            shifted[:3, 3] = shifted[:3, 3] + sign * offset * d
            plans.append((kind, i, shifted, Ks[i]))
    out_img, out_mask, out_valid, out_w2c = [], [], [], []
    for n, (_, src, dst_c2w, dst_K) in enumerate(plans):
        w2c_dst = rigid_inverse(dst_c2w)
        stacked = torch.cat([images[src].float(), masks[src].float()[..., None]], dim=-1)
        warped, valid = forward_warp(stacked, depths[src].float(), Ks[src].float(), c2w[src].float(),
                                     dst_K.float(), w2c_dst.float())
        filled = torch.cat([inpaint_holes(warped[..., :3], valid, inpaint_radius),
                            inpaint_holes(warped[..., 3:], valid, inpaint_radius)], dim=-1)
        out_img.append(filled[..., :3].clamp(0, 1))
        out_mask.append((filled[..., 3] > 0.5).float())
        out_valid.append(valid)
        out_w2c.append(w2c_dst)
        if progress is not None:
            progress(n + 1, len(plans))
    return VirtualViews(
        w2c=torch.stack(out_w2c), K=torch.stack([p[3] for p in plans]), images=torch.stack(out_img),
        motion_mask=torch.stack(out_mask), valid=torch.stack(out_valid),
        source_frame=torch.tensor([p[1] for p in plans], dtype=torch.long), kind=[p[0] for p in plans],
        offset=float(offset),
    )
