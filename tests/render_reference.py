"""Brute-force Gaussian renderer used as ground truth by the renderer tests and benchmark.

Written straight from gsplat 1.5.3's rules without tiles or blocks: every Gaussian (depth order,
one at a time) is evaluated at every pixel of its box, and each pixel composites front to back with
an explicit per-pixel "done" flag, exactly like one CUDA thread per pixel. Differentiable by autograd
(slow), so the benchmark can time its backward pass too.
"""

from __future__ import annotations

import math

import torch


def reference_project(means, quats, log_scales, opacity_logits, viewmats, Ks, width, height,
                      near=0.01, far=1e10, eps2d=0.3):
    """Per-camera projection lists: dicts with mean2d (N,2), conic (N,3), depth (N,), radii (N,2),
    visible (N,), opacity (N,) for each of the C cameras."""
    q = quats / quats.norm(dim=1, keepdim=True)
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    rot = torch.stack([
        torch.stack([1 - 2 * (y**2 + z**2), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        torch.stack([2 * (x * y + w * z), 1 - 2 * (x**2 + z**2), 2 * (y * z - w * x)], -1),
        torch.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x**2 + y**2)], -1),
    ], dim=1)  # (N,3,3)
    s = torch.diag_embed(torch.exp(log_scales))
    cov_world = rot @ s @ s @ rot.transpose(1, 2)
    opacity = torch.sigmoid(opacity_logits)
    out = []
    for view, K in zip(viewmats, Ks):
        R, t = view[:3, :3], view[:3, 3]
        pc = means @ R.T + t
        cov = R @ cov_world @ R.T
        fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
        pz = torch.where((pc[:, 2] >= near) & (pc[:, 2] <= far), pc[:, 2], torch.ones_like(pc[:, 2]))
        lim_xp = (width - cx) / fx + 0.3 * (0.5 * width / fx)
        lim_xn = cx / fx + 0.3 * (0.5 * width / fx)
        lim_yp = (height - cy) / fy + 0.3 * (0.5 * height / fy)
        lim_yn = cy / fy + 0.3 * (0.5 * height / fy)
        tx = pz * torch.clamp(pc[:, 0] / pz, -lim_xn, lim_xp)
        ty = pz * torch.clamp(pc[:, 1] / pz, -lim_yn, lim_yp)
        J = torch.zeros(len(means), 2, 3, dtype=means.dtype)
        J[:, 0, 0] = fx / pz
        J[:, 0, 2] = -fx * tx / pz**2
        J[:, 1, 1] = fy / pz
        J[:, 1, 2] = -fy * ty / pz**2
        cov2 = J @ cov @ J.transpose(1, 2) + eps2d * torch.eye(2, dtype=means.dtype)
        det = cov2[:, 0, 0] * cov2[:, 1, 1] - cov2[:, 0, 1] * cov2[:, 1, 0]
        safe_det = torch.where(det > 0, det, torch.ones_like(det))
        conic = torch.stack([cov2[:, 1, 1], -cov2[:, 0, 1], cov2[:, 0, 0]], -1) / safe_det[:, None]
        mean2d = torch.stack([fx * pc[:, 0] / pz + cx, fy * pc[:, 1] / pz + cy], -1)
        radii, visible = [], []
        z_, det_, op_ = pc[:, 2].tolist(), det.tolist(), opacity.tolist()
        c00_, c11_, m_ = cov2[:, 0, 0].tolist(), cov2[:, 1, 1].tolist(), mean2d.tolist()
        for i in range(len(means)):
            r, v = _radius(z_[i], det_[i], op_[i], c00_[i], c11_[i], m_[i], width, height, near, far)
            radii.append(r)
            visible.append(v)
        out.append({
            "mean2d": mean2d, "conic": conic, "depth": pc[:, 2], "opacity": opacity,
            "radii": torch.tensor(radii, dtype=torch.int32).reshape(-1, 2),
            "visible": torch.tensor(visible, dtype=torch.bool),
        })
    return out


def _radius(z, det, opacity, c00, c11, m, width, height, near, far):
    """gsplat's culling and opacity-aware radius for one Gaussian: ((rx, ry), visible)."""
    if z < near or z > far or det <= 0 or opacity < 1.0 / 255.0:
        return (0, 0), False
    extent = min(3.33, math.sqrt(2.0 * math.log(opacity * 255.0)))
    rx, ry = math.ceil(extent * math.sqrt(c00)), math.ceil(extent * math.sqrt(c11))
    if rx <= 0 and ry <= 0:
        return (0, 0), False
    if m[0] + rx <= 0 or m[0] - rx >= width or m[1] + ry <= 0 or m[1] - ry >= height:
        return (0, 0), False
    return (rx, ry), True


def reference_render(means, quats, log_scales, opacity_logits, colors, viewmats, Ks, width, height,
                     features=None, near=0.01, far=1e10, background=None):
    """Brute-force render (RGB colours only). Returns dict of rgb (C,H,W,3), depth (C,H,W,1),
    alpha (C,H,W,1), features (C,H,W,F) or None, radii (C,N,2), visible (C,N), means2d (C,N,2)."""
    projs = reference_project(means, quats, log_scales, opacity_logits, viewmats, Ks, width, height,
                              near, far)
    outs = []
    for p in projs:
        chans = [colors, p["depth"][:, None]] + ([features] if features is not None else [])
        outs.append(_composite_one(p, torch.cat(chans, -1), width, height))
    fg = torch.stack([o[0] for o in outs])
    trans = torch.stack([o[1] for o in outs])[..., None]
    alpha = 1.0 - trans
    rgb = fg[..., :3] + (trans * background if background is not None else 0.0)
    return {
        "rgb": rgb,
        "depth": fg[..., 3:4] / alpha.clamp(min=1e-10),
        "alpha": alpha,
        "features": fg[..., 4:] if features is not None else None,
        "radii": torch.stack([p["radii"] for p in projs]),
        "visible": torch.stack([p["visible"] for p in projs]),
        "means2d": torch.stack([p["mean2d"] for p in projs]),
    }


def _composite_one(p, feats, width, height):
    """One camera: Gaussians in depth order, each against every pixel centre in its box."""
    ch = feats.shape[-1]
    acc = torch.zeros(height, width, ch, dtype=feats.dtype)
    T = torch.ones(height, width, dtype=feats.dtype)
    done = torch.zeros(height, width, dtype=torch.bool)
    vis_ids = torch.nonzero(p["visible"]).squeeze(-1)
    order = vis_ids[torch.argsort(p["depth"][vis_ids].detach(), stable=True)]
    for i in order.tolist():
        mx, my = p["mean2d"][i].detach().tolist()
        rx, ry = p["radii"][i].tolist()
        x0, x1 = max(0, math.ceil(mx - rx - 0.5)), min(width - 1, math.floor(mx + rx - 0.5))
        y0, y1 = max(0, math.ceil(my - ry - 0.5)), min(height - 1, math.floor(my + ry - 0.5))
        if x1 < x0 or y1 < y0:
            continue
        py, px = torch.meshgrid(
            torch.arange(y0, y1 + 1, dtype=feats.dtype) + 0.5,
            torch.arange(x0, x1 + 1, dtype=feats.dtype) + 0.5, indexing="ij")
        dx, dy = p["mean2d"][i, 0] - px, p["mean2d"][i, 1] - py
        a, b, c = p["conic"][i]
        sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
        alpha = torch.clamp(p["opacity"][i] * torch.exp(-sigma), max=0.999)
        box = (slice(y0, y1 + 1), slice(x0, x1 + 1))
        t_box, done_box = T[box], done[box]
        live = (sigma >= 0) & (alpha >= 1.0 / 255.0) & ~done_box
        next_t = t_box * (1.0 - alpha)
        stop = live & (next_t <= 1e-4)
        use = live & ~stop
        weight = torch.where(use, alpha * t_box, torch.zeros_like(alpha))
        acc = acc.clone()
        acc[box] = acc[box] + weight[..., None] * feats[i]
        T = T.clone()
        T[box] = torch.where(use, next_t, t_box)
        done = done.clone()
        done[box] = done_box | stop
    return acc, T


def random_scene(n, num_cameras=1, width=64, height=48, seed=0, dtype=torch.float64, spread=1.0,
                 scale_range=(-3.0, -1.0)):
    """Random Gaussians in front of (and some behind) cameras looking down +z near the origin.

    Returns (means, quats, log_scales, opacity_logits, colors, viewmats, Ks)."""
    g = torch.Generator().manual_seed(seed)
    stretch = torch.tensor([spread, 0.7 * spread, 1.0], dtype=dtype)
    means = torch.randn(n, 3, generator=g, dtype=dtype) * stretch
    means[:, 2] += 3.0
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    lo, hi = scale_range
    log_scales = lo + (hi - lo) * torch.rand(n, 3, generator=g, dtype=dtype)
    opacity_logits = torch.randn(n, generator=g, dtype=dtype) * 2.0
    colors = torch.rand(n, 3, generator=g, dtype=dtype)
    viewmats = torch.eye(4, dtype=dtype).repeat(num_cameras, 1, 1)
    for c in range(num_cameras):
        angle = 0.15 * c
        viewmats[c, 0, 0], viewmats[c, 0, 2] = math.cos(angle), math.sin(angle)
        viewmats[c, 2, 0], viewmats[c, 2, 2] = -math.sin(angle), math.cos(angle)
        viewmats[c, :3, 3] = torch.tensor([0.1 * c, -0.05 * c, 0.2 * c], dtype=dtype)
    f = 0.9 * width
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=dtype)
    Ks = K.repeat(num_cameras, 1, 1)
    return means, quats, log_scales, opacity_logits, colors, viewmats, Ks
