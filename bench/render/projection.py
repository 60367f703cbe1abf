"""EWA projection of 3D Gaussians and spherical-harmonics colour, with gsplat 1.5.3's rules.

Everything here is plain differentiable PyTorch on per-(camera, Gaussian) tensors; autograd
handles the backward pass, which is cheap next to compositing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# gsplat's ALPHA_THRESHOLD: contributions (and whole Gaussians) under 1/255 are dropped.
ALPHA_THRESHOLD = 1.0 / 255.0
# Upper bound of the per-axis extent in standard deviations.
MAX_EXTENT_SIGMAS = 3.33


@dataclass
class Projected:
    """Screen-space Gaussians for C cameras and N Gaussians.

    means2d (C,N,2) pixel coordinates (0 where not visible), conics (C,N,3) inverse 2D covariance
    (a, b, c) with sigma = 0.5 (a dx^2 + c dy^2) + b dx dy, depths (C,N) camera z, opacities (C,N),
    radii (C,N,2) int32 per-axis pixel extent (0 = culled), visible (C,N) bool.
    """

    means2d: Tensor
    conics: Tensor
    depths: Tensor
    opacities: Tensor
    radii: Tensor
    visible: Tensor


def quat_scale_to_factor(quats: Tensor, scales: Tensor) -> Tensor:
    """Covariance factor R S (N,3,3), covariance = (R S)(R S)^T, from quaternions (N,4) wxyz
    (any norm) and scales (N,3)."""
    q = quats / quats.norm(dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    rot = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))
    return rot * scales[..., None, :]


def project(
    means: Tensor,
    factors: Tensor,
    opacities: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    near: float,
    far: float,
    eps2d: float = 0.3,
) -> Projected:
    """Project N Gaussians (means (N,3), covariance factors R S (N,3,3), opacities (N,)) into C cameras.

    viewmats (C,4,4) world-to-camera (OpenCV), Ks (C,3,3). Mirrors gsplat's fused EWA projection:
    near/far culling on camera z, perspective Jacobian evaluated at the mean clamped to 1.3x the
    field of view, eps2d added to the 2D covariance diagonal, opacity < 1/255 culled, per-axis radius
    ceil(min(3.33, sqrt(2 ln(255 o))) * sigma_axis), Gaussians whose box misses the image culled.
    """
    rot = viewmats[:, :3, :3]
    # Rotations as explicit three-term sums, not einsum: a batched matmul's blocking, and so its
    # rounding, can depend on the thread count, and renders must not (tests/test_render.py).
    means_c = sum(rot[:, None, :, j] * means[None, :, None, j] for j in range(3)) + viewmats[:, None, :3, 3]  # (C,N,3)
    # J W R S with W the camera rotation: the 2D covariance is this times its transpose
    factors_c = sum(rot[:, None, :, j, None] * factors[None, :, None, j, :] for j in range(3))  # (C,N,3,3)
    x, y, z = means_c.unbind(-1)
    in_range = (z >= near) & (z <= far)
    # Culled Gaussians may sit at z <= 0; a safe z keeps their (discarded) gradients finite.
    zs = torch.where(in_range, z, torch.ones_like(z))

    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]  # (C,1)
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_x, tan_y = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_x, cx / fx + 0.3 * tan_x
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_y, cy / fy + 0.3 * tan_y
    rz = 1.0 / zs
    tx = zs * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x * rz))
    ty = zs * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y * rz))
    # Jacobian rows (fx/z, 0, -fx tx/z^2) and (0, fy/z, -fy ty/z^2)
    row0 = (fx * rz)[..., None] * factors_c[..., 0, :] - (fx * tx * rz * rz)[..., None] * factors_c[..., 2, :]
    row1 = (fy * rz)[..., None] * factors_c[..., 1, :] - (fy * ty * rz * rz)[..., None] * factors_c[..., 2, :]
    mean2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], dim=-1)

    c00 = (row0 * row0).sum(-1) + eps2d
    c11 = (row1 * row1).sum(-1) + eps2d
    c01 = (row0 * row1).sum(-1)
    det = c00 * c11 - c01 * c01
    ok = in_range & (det > 0)
    det_s = torch.where(ok, det, torch.ones_like(det))
    conics = torch.stack([c11, -c01, c00], dim=-1) / det_s[..., None]

    opac = opacities[None].expand_as(z)
    ok = ok & (opac >= ALPHA_THRESHOLD)
    radii = _radii(opac.detach(), c00.detach(), c11.detach(), ok)
    mx, my = mean2d.detach().unbind(-1)
    rx, ry = radii.unbind(-1)
    on_image = (mx + rx > 0) & (mx - rx < width) & (my + ry > 0) & (my - ry < height)
    visible = ok & (rx > 0) & (ry > 0) & on_image  # radius_clip = 0 culls empty boxes
    radii = torch.where(visible[..., None], radii, torch.zeros_like(radii)).to(torch.int32)
    vis_f = visible.to(mean2d.dtype)[..., None]
    return Projected(
        means2d=mean2d * vis_f,
        conics=conics * vis_f,
        depths=z,
        opacities=opac,
        radii=radii,
        visible=visible,
    )


def _radii(opac: Tensor, c00: Tensor, c11: Tensor, ok: Tensor) -> Tensor:
    """Opacity-aware per-axis box half-size in pixels (C,N,2), float, 0 where not ok."""
    ratio = torch.where(ok, opac / ALPHA_THRESHOLD, torch.ones_like(opac))
    extent = torch.sqrt(2.0 * torch.log(ratio)).clamp(max=MAX_EXTENT_SIGMAS)
    rx = torch.ceil(extent * torch.sqrt(c00.clamp(min=0)))
    ry = torch.ceil(extent * torch.sqrt(c11.clamp(min=0)))
    radii = torch.stack([rx, ry], dim=-1)
    return torch.where(ok[..., None], radii, torch.zeros_like(radii))


# Real spherical-harmonics basis constants (Sloan 2013), in gsplat's coefficient order.
_SH_C0 = 0.2820947917738781
_SH_C1 = 0.48860251190292


def sh_basis(degree: int, dirs: Tensor) -> Tensor:
    """Real SH basis up to `degree` (0..4) at unit directions (...,3) -> (...,(degree+1)^2)."""
    out = [torch.full_like(dirs[..., 0], _SH_C0)]
    if degree >= 1:
        x, y, z = dirs.unbind(-1)
        out += [-_SH_C1 * y, _SH_C1 * z, -_SH_C1 * x]
    if degree >= 2:
        z2 = z * z
        fc1, fs1 = x * x - y * y, 2 * x * y
        tb = -1.092548430592079 * z
        out += [
            0.5462742152960395 * fs1, tb * y, 0.9461746957575601 * z2 - 0.3153915652525201,
            tb * x, 0.5462742152960395 * fc1,
        ]
    if degree >= 3:
        tc = -2.285228997322329 * z2 + 0.4570457994644658
        tb = 1.445305721320277 * z
        fc2, fs2 = x * fc1 - y * fs1, x * fs1 + y * fc1
        out += [
            -0.5900435899266435 * fs2, tb * fs1, tc * y,
            z * (1.865881662950577 * z2 - 1.119528997770346), tc * x, tb * fc1,
            -0.5900435899266435 * fc2,
        ]
    if degree >= 4:
        td = z * (-4.683325804901025 * z2 + 2.007139630671868)
        tc = 3.31161143515146 * z2 - 0.47308734787878
        tb = -1.770130769779931 * z
        fc3, fs3 = x * fc2 - y * fs2, x * fs2 + y * fc2
        out += [
            0.6258357354491763 * fs3, tb * fs2, tc * fs1, td * y,
            1.984313483298443 * z2 * (1.865881662950577 * z2 - 1.119528997770346)
            - 1.006230589874905 * (0.9461746957575601 * z2 - 0.3153915652525201),
            td * x, tc * fc1, tb * fc2, 0.6258357354491763 * fc3,
        ]
    return torch.stack(out, dim=-1)


def sh_colors(degree: int, coeffs: Tensor, means: Tensor, viewmats: Tensor) -> Tensor:
    """View-dependent RGB (C,N,3) from SH coeffs (N,K,3), K >= (degree+1)^2, as gsplat renders it.

    The direction runs from the camera centre to the mean; the result is shifted by +0.5 and
    clamped at 0 (gsplat's match to the Inria rasteriser). Extra coefficients beyond the degree
    are ignored.
    """
    campos = torch.linalg.inv(viewmats)[:, :3, 3]  # (C,3)
    dirs = means[None] - campos[:, None]  # (C,N,3)
    # Same guard as a normalise with eps: a mean exactly at the camera centre is culled anyway.
    dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    basis = sh_basis(degree, dirs)  # (C,N,B)
    nb = basis.shape[-1]
    rgb = (basis[..., None] * coeffs[None, :, :nb]).sum(dim=-2)
    return torch.clamp_min(rgb + 0.5, 0.0)
