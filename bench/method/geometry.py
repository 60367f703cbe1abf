"""Camera and rotation helpers shared by the method's components.

Conventions: quaternions are (w, x, y, z); cameras are pinhole, OpenCV convention (x right,
y down, z forward); ``c2w`` / ``w2c`` are (4,4) rigid transforms.

Pixel convention (the one definition for the whole method): continuous image coordinates (u, v)
have their origin at the top-left *corner* of the image; the pixel in column j and row i covers
[j, j+1) x [i, i+1) and its centre is at (j + 0.5, i + 0.5) (``PIXEL_CENTRE``). This is the
convention of the renderer (bench.render evaluates Gaussians at j + 0.5), of the synthetic
generator (rays through j + 0.5), of COLMAP and LLFF intrinsics (principal point W/2 = image
centre) and of the 2D tracks the loaders return. Go from an integer pixel to coordinates with
:func:`pixel_centres` / :func:`pixel_grid`, and back with :func:`pixel_index`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices of (possibly unnormalised) quaternions.

    q: (...,4) wxyz. Returns (...,3,3).
    """
    q = nnf.normalize(q, dim=-1)
    w, x, y, z = q.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ]
    return torch.stack(rows, dim=-1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(R: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (wxyz, w >= 0) of rotation matrices.

    R: (...,3,3). Returns (...,4). Uses the numerically best of the four classic branches per
    matrix (largest of w², x², y², z²) so that it is stable for every rotation angle.
    """
    m = R
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4*q_i^2 for i = w, x, y, z; clamp keeps sqrt differentiable and real.
    sq = torch.stack([
        1 + m00 + m11 + m22,
        1 + m00 - m11 - m22,
        1 - m00 + m11 - m22,
        1 - m00 - m11 + m22,
    ], dim=-1).clamp_min(1e-12)
    r = torch.sqrt(sq)  # 2|q_i|
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s01, s02, s12 = m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1]
    # Each candidate: the quaternion computed from the branch whose diagonal term is largest.
    cand = torch.stack([
        torch.stack([r[..., 0] ** 2, d21, d02, d10], -1) / (2 * r[..., 0:1]),
        torch.stack([d21, r[..., 1] ** 2, s01, s02], -1) / (2 * r[..., 1:2]),
        torch.stack([d02, s01, r[..., 2] ** 2, s12], -1) / (2 * r[..., 2:3]),
        torch.stack([d10, s02, s12, r[..., 3] ** 2], -1) / (2 * r[..., 3:4]),
    ], dim=-2)  # (...,4 branches,4)
    best = sq.argmax(dim=-1)
    q = torch.gather(cand, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = nnf.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a*b of wxyz quaternions (rotation b first, then a). (...,4) -> (...,4)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)


def rot6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """Rotation from the 6D representation of Zhou et al. (CVPR 2019) by Gram-Schmidt.

    d6: (...,6), the first two *columns* of the matrix (unnormalised). Returns (...,3,3).
    """
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = nnf.normalize(a1, dim=-1)
    b2 = nnf.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rot6d_to_matrix`: the first two columns. (...,3,3) -> (...,6)."""
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


PIXEL_CENTRE = 0.5  # offset of a pixel's centre from its integer index (module docstring)


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(H,W,2) pixel-centre coordinates (u, v) = (j + 0.5, i + 0.5) of every pixel."""
    v, u = torch.meshgrid(torch.arange(height, device=device, dtype=dtype) + PIXEL_CENTRE,
                          torch.arange(width, device=device, dtype=dtype) + PIXEL_CENTRE, indexing="ij")
    return torch.stack([u, v], dim=-1)


def pixel_centres(rows_cols: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """Centre coordinates (M,2) (u, v) of integer pixels given as (M,2) (row i, column j), the
    order ``torch.nonzero`` returns for an (H,W) mask."""
    return rows_cols.flip(-1).to(dtype) + PIXEL_CENTRE


def pixel_index(uv: torch.Tensor) -> torch.Tensor:
    """Integer (column, row) (M,2) of the pixel containing each coordinate (M,2) (u, v).

    Not bounds-checked: a coordinate outside the image gives an index outside [0, W) x [0, H).
    """
    return torch.floor(uv).long()


def unproject(uv: torch.Tensor, z: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor) -> torch.Tensor:
    """World points (M,3) at z-depth z (M,) along the rays through image coordinates uv (M,2).

    K: (3,3); c2w: (4,4). The inverse of :func:`project` for points in front of the camera.
    """
    ones = torch.ones_like(z)
    rays = torch.stack([uv[:, 0], uv[:, 1], ones], dim=-1) @ torch.linalg.inv(K).T
    cam = rays * z[:, None]
    return cam @ c2w[:3, :3].T + c2w[:3, 3]


def backproject(depth: torch.Tensor, K: torch.Tensor, c2w: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    """World points of the centres of the pixels selected by ``mask``.

    depth: (H,W) z-depth; K: (3,3); c2w: (4,4); mask: (H,W) bool or None (all pixels).
    Returns (M,3) points in row-major pixel order of the selected pixels.
    """
    H, W = depth.shape
    uv = pixel_grid(H, W, depth.device, depth.dtype)
    if mask is None:
        mask = torch.ones_like(depth, dtype=torch.bool)
    return unproject(uv[mask], depth[mask], K, c2w)


def project(points: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Image coordinates (module docstring: a pixel's centre is at j + 0.5) and z-depth of world points.

    points: (M,3); K: (3,3); w2c: (4,4). Returns uv (M,2) and z (M,). Points with z <= 0 get
    meaningless uv; callers test z.
    """
    cam = points @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    pix = cam @ K.T
    uv = pix[:, :2] / torch.where(z.abs() < 1e-12, torch.full_like(z, 1e-12), z)[:, None]
    return uv, z


def rigid_inverse(T: torch.Tensor) -> torch.Tensor:
    """Inverse of rigid (...,4,4) transforms without a general matrix inverse."""
    R, t = T[..., :3, :3], T[..., :3, 3:]
    Rt = R.transpose(-1, -2)
    out = torch.zeros_like(T)
    out[..., :3, :3] = Rt
    out[..., :3, 3:] = -Rt @ t
    out[..., 3, 3] = 1
    return out


def slerp_quat(q0: torch.Tensor, q1: torch.Tensor, w: float) -> torch.Tensor:
    """Spherical interpolation of unit quaternions (...,4) at fraction w in [0,1] (shortest arc)."""
    q0, q1 = nnf.normalize(q0, dim=-1), nnf.normalize(q1, dim=-1)
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    dot = dot.abs().clamp(max=1.0)
    theta = torch.acos(dot)
    sin = torch.sin(theta)
    near = sin < 1e-6  # nearly equal: linear interpolation is exact enough
    a = torch.where(near, torch.full_like(sin, 1 - w), torch.sin((1 - w) * theta) / sin.clamp_min(1e-12))
    b = torch.where(near, torch.full_like(sin, w), torch.sin(w * theta) / sin.clamp_min(1e-12))
    return nnf.normalize(a * q0 + b * q1, dim=-1)
