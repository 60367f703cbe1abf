"""Analytic ray casting of rigidly moving, textured primitives (numpy only).

World frame of the generator: OpenCV-like (x right, y down, z forward for the initial camera).
Each object has a canonical shape in its local frame (plane z = 0, sphere at the origin, axis-
aligned box at the origin) and a pose ``world = R(t) @ local + T(t)``; the albedo texture is a
function of local coordinates, so it moves with the object. No shading: colours are albedo, so a
surface point looks the same from every view and instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EPS = 1e-6


def rot_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class Texture:
    """Procedural albedo: mix of two colours by a checker, stripe and value-noise pattern.

    cell: checker cell size in local units; stripe: (2,) wave vector in cycles per unit;
    noise: (G,G) random grid sampled bilinearly with period ``noise_period`` units.
    """

    color_a: np.ndarray
    color_b: np.ndarray
    cell: float
    stripe: np.ndarray
    noise: np.ndarray
    noise_period: float

    def __call__(self, uv: np.ndarray) -> np.ndarray:
        """(M,2) surface coordinates -> (M,3) RGB in [0,1] (float32 arithmetic: colour needs no more)."""
        import cv2

        uv = uv.astype(np.float32)
        checker = (np.floor(uv[:, 0] / self.cell) + np.floor(uv[:, 1] / self.cell)) % 2.0
        stripes = 0.5 + 0.5 * np.sin(2.0 * np.pi * (uv @ self.stripe.astype(np.float32)))
        # bilinear, periodic lookup of the noise grid (row = u, column = v), done by OpenCV for speed;
        # remap wants 2-D maps shorter than 32767, so the M lookups are laid out in rows of 256
        g = self.noise.shape[0]
        q = np.mod(uv * np.float32(g / self.noise_period), np.float32(g))
        m = len(q)
        pad = np.zeros((-m % 256, 2), np.float32)
        maps = np.concatenate([q, pad]).reshape(-1, 256, 2)
        n = cv2.remap(self.noise.astype(np.float32), maps[..., 1], maps[..., 0], cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_WRAP).reshape(-1)[:m]
        p = np.clip(0.55 * checker + 0.25 * n + 0.2 * stripes, 0.0, 1.0)[:, None]
        return self.color_a * (1.0 - p) + self.color_b * p


def _wrap_lookup(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Bilinear, periodic lookup of ``grid`` (G0,G1) or (G0,G1,C) at fractional (M,) rows/columns.

    Done by OpenCV's remap (deterministic, fast); remap wants 2-D maps shorter than 32767, so the
    M lookups are laid out in rows of 256. Returns (M,) or (M,C) float32.
    """
    import cv2

    m = len(rows)
    pad = -m % 256
    r = np.concatenate([rows.astype(np.float32), np.zeros(pad, np.float32)]).reshape(-1, 256)
    c = np.concatenate([cols.astype(np.float32), np.zeros(pad, np.float32)]).reshape(-1, 256)
    out = cv2.remap(grid.astype(np.float32), c, r, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    return out.reshape((-1,) + grid.shape[2:])[:m]


@dataclass
class ImageTexture:
    """Albedo from a photograph, tiled over the surface: ``image`` (G0,G1,3) float32 in [0,1].

    period: surface units covered by one copy of the image along its columns (rows keep the
    image's aspect ratio); offset: (2,) shift in units, so that objects sharing a photograph show
    different parts of it. uv[:,0] runs along the image columns, uv[:,1] along its rows.
    """

    image: np.ndarray
    period: float
    offset: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def __call__(self, uv: np.ndarray) -> np.ndarray:
        """(M,2) surface coordinates -> (M,3) RGB in [0,1], bilinear and periodic."""
        per_unit = self.image.shape[1] / self.period  # texels per surface unit, same on both axes
        q = (uv + self.offset) * per_unit
        # v grows downwards in image rows so that an upright photo on a wall (y down) stays upright
        return np.clip(_wrap_lookup(self.image, q[:, 1], q[:, 0]), 0.0, 1.0)


@dataclass
class Motion:
    """Rigid pose over normalised time t: ``T(t) = base + amp * sin(2 pi freq t + phase) + vel * t``,
    ``R(t) = base_rot @ rot_y(spin * t)``."""

    base: np.ndarray
    base_rot: np.ndarray = field(default_factory=lambda: np.eye(3))
    amp: np.ndarray = field(default_factory=lambda: np.zeros(3))
    freq: float = 0.0
    phase: float = 0.0
    vel: np.ndarray = field(default_factory=lambda: np.zeros(3))
    spin: float = 0.0

    def pose(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(R (3,3), T (3,)) at time t."""
        T = self.base + self.amp * np.sin(2.0 * np.pi * self.freq * t + self.phase) + self.vel * t
        return self.base_rot @ rot_y(self.spin * t), T


@dataclass
class Primitive:
    """kind: 'plane' | 'sphere' | 'box'; size: sphere radius (1,), box half extents (3,), plane unused."""

    kind: str
    size: np.ndarray
    texture: Texture
    motion: Motion
    dynamic: bool

    def intersect(self, o: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Local ray origin (3,) (all rays share it) and directions (M,3) -> (M,) hit parameter, inf if missed."""
        t = np.full(len(d), np.inf)
        if self.kind == "plane":
            dz = d[:, 2]
            ok = np.abs(dz) > EPS
            hit = -o[2] / np.where(ok, dz, 1.0)
            ok &= hit > EPS
            t[ok] = hit[ok]
        else:
            # Bounding-sphere test first: exact for spheres, a cheap cull for boxes.
            r = float(self.size[0]) if self.kind == "sphere" else float(np.linalg.norm(self.size))
            a = np.einsum("ij,ij->i", d, d)
            b = 2.0 * (d @ o)
            disc = b * b - 4 * a * (float(o @ o) - r * r)
            cand = np.flatnonzero(disc >= 0)
            if self.kind == "sphere":
                hit = (-b[cand] - np.sqrt(disc[cand])) / (2 * a[cand])
                good = hit > EPS
                t[cand[good]] = hit[good]
            else:
                dc = d[cand]
                inv = 1.0 / np.where(np.abs(dc) > EPS, dc, EPS)
                t1, t2 = (-self.size - o) * inv, (self.size - o) * inv
                tmin = np.minimum(t1, t2).max(1)
                tmax = np.maximum(t1, t2).min(1)
                ok = (tmax >= tmin) & (tmin > EPS)
                t[cand[ok]] = tmin[ok]
        return t

    def surface_uv(self, p: np.ndarray) -> np.ndarray:
        """Local hit points (M,3) -> (M,2) texture coordinates (arc length on spheres)."""
        if self.kind == "plane":
            return p[:, :2]
        if self.kind == "sphere":
            r = float(self.size[0])
            lon = np.arctan2(p[:, 0], p[:, 2])
            lat = np.arcsin(np.clip(p[:, 1] / r, -1, 1))
            return np.stack([lon * r, lat * r], 1)
        rel = np.abs(p) / self.size
        face = rel.argmax(1)
        uv = np.where(face[:, None] == 0, p[:, [1, 2]], np.where(face[:, None] == 1, p[:, [0, 2]], p[:, [0, 1]]))
        return uv + face[:, None] * 7.31  # different faces use different parts of the texture


@dataclass
class Hits:
    """Per-ray results of one cast. depth: (M,) z in the camera; obj: (M,) object index (-1 = miss);
    local: (M,3) local hit point; rgb: (M,3) albedo."""

    depth: np.ndarray
    obj: np.ndarray
    local: np.ndarray
    rgb: np.ndarray


def pixel_rays(K: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H*W,3) camera-frame directions with z = 1 through pixel centres (j + 0.5, i + 0.5)."""
    j, i = np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)
    x = (j - K[0, 2]) / K[0, 0]
    y = (i - K[1, 2]) / K[1, 1]
    return np.stack([x, y, np.ones_like(x)], -1).reshape(-1, 3)


def cast(objects: list[Primitive], c2w: np.ndarray, dirs_cam: np.ndarray, t: float) -> Hits:
    """Cast rays (camera-frame dirs with z = 1) from camera ``c2w`` (4,4) at time ``t``.

    With z = 1 directions the hit parameter equals the depth along the optical axis.
    """
    d = dirs_cam @ c2w[:3, :3].T
    frames = [p.motion.pose(t) for p in objects]
    origins = [(c2w[:3, 3] - T) @ R for R, T in frames]  # R^T applied to row vectors
    hits = np.stack([p.intersect(ol, d @ R) for p, ol, (R, _) in zip(objects, origins, frames)])
    obj = hits.argmin(0)
    best = hits.min(0)
    obj[~np.isfinite(best)] = -1
    local = np.zeros_like(d)
    rgb = np.zeros_like(d)
    for k, prim in enumerate(objects):
        idx = np.flatnonzero(obj == k)
        if idx.size:
            local[idx] = origins[k] + best[idx, None] * (d[idx] @ frames[k][0])
            rgb[idx] = prim.texture(prim.surface_uv(local[idx]))
    depth = np.where(obj >= 0, best, 0.0)
    return Hits(depth=depth, obj=obj, local=local, rgb=rgb)


def world_points(objects: list[Primitive], obj: np.ndarray, local: np.ndarray, t: float) -> np.ndarray:
    """(M,3) world positions at time ``t`` of surface points given by object index and local coords."""
    out = np.zeros_like(local)
    for k, prim in enumerate(objects):
        sel = obj == k
        if sel.any():
            R, T = prim.motion.pose(t)
            out[sel] = local[sel] @ R.T + T
    return out


def project(K: np.ndarray, w2c: np.ndarray, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World points (M,3) -> pixel coordinates (M,2) and camera depth (M,)."""
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (cam[:, :2] / z[:, None]) * np.array([K[0, 0], K[1, 1]]) + np.array([K[0, 2], K[1, 2]])
    return uv, z
