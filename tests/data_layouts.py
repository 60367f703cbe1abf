"""Hand-made minimal scenes in the released layouts, written from the documented formats
(docs/datasets.md and COLMAP's binary model format) WITHOUT using ``bench.data``, so the loaders
are checked against an independent writer."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np


def llff_row(c2w: np.ndarray, h: float, w: float, f: float, near: float, far: float) -> np.ndarray:
    """One poses_bounds row from an OpenCV camera-to-world: columns [down, right, back | t | hwf]."""
    rot = c2w[:3, :3]
    block = np.column_stack([rot[:, 1], rot[:, 0], -rot[:, 2], c2w[:3, 3], [h, w, f]])
    return np.concatenate([block.ravel(), [near, far]])


def png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        arr = np.clip(arr * 255 + 0.5, 0, 255).astype(np.uint8)
    assert cv2.imwrite(str(path), arr[..., ::-1] if arr.ndim == 3 else arr)


def noise_image(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def write_dyblurf(root: Path, scene: str, c2w_left, c2w_right, *, full_hw, train_hw, focal_full, bounds,
                  disp=None, seed=0, flow=True) -> Path:
    """DyBluRF layout: <root>/<scene>/dense/...; bounds (2N,2); disp optional (N,h,w) else ones."""
    rng = np.random.default_rng(seed)
    dense = Path(root) / scene / "dense"
    n = len(c2w_left)
    (hf, wf), (ht, wt) = full_hw, train_hw
    png(dense / "images" / "00000.png", noise_image(rng, wf, hf))  # only the first file's shape is used
    rows = []
    for k in range(n):
        png(dense / f"images_{wt}x{ht}" / f"{k:05d}.png", noise_image(rng, wt, ht))
        png(dense / "inference_images" / f"{k:05d}.png", noise_image(rng, wf, hf))
        png(dense / "motion_masks" / f"{k:05d}.png", (rng.random((ht, wt)) > 0.7).astype(np.uint8) * 255)
        (dense / "disp").mkdir(parents=True, exist_ok=True)
        d = disp[k] if disp is not None else np.full((ht, wt), 0.5, np.float32)
        np.save(dense / "disp" / f"{k:05d}.npy", d.astype(np.float32))
        rows.append(llff_row(c2w_left[k], hf, wf, focal_full, *bounds[2 * k]))
        rows.append(llff_row(c2w_right[k], hf, wf, focal_full, *bounds[2 * k + 1]))
    if flow:
        (dense / "flow_i1").mkdir(parents=True, exist_ok=True)
        for i in range(n - 1):
            for j, kind in ((i, "fwd"), (i + 1, "bwd")):
                np.savez(dense / "flow_i1" / f"{j:05d}_{kind}.npz", flow=np.full((ht, wt, 2), 0.5, np.float32),
                         mask=np.ones((ht, wt), bool))
    np.save(dense / "poses_bounds.npy", np.stack(rows))
    return dense


def write_d2rf(root: Path, scene: str, c2w_left, c2w_right, *, full_hw, focal_full, bounds, seed=0) -> Path:
    """D2RF layout at factor 2: images (sharp, .jpg), images_2 (interleaved), dpt, motion_masks."""
    rng = np.random.default_rng(seed)
    base = Path(root) / scene
    hf, wf = full_hw
    rows = []
    for k in range(len(c2w_left)):
        for side, c2w, b in (("left", c2w_left[k], bounds[2 * k]), ("right", c2w_right[k], bounds[2 * k + 1])):
            name = f"{k:06d}_{side}"
            base.joinpath("images").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(base / "images" / f"{name}.jpg"), noise_image(rng, wf, hf))
            png(base / "images_2" / f"{name}.png", noise_image(rng, wf // 2, hf // 2))
            png(base / "motion_masks" / f"{name}.png", np.zeros((hf // 2, wf // 2), np.uint8))
            png(base / "background_mask" / f"{name}.png", np.full((hf // 2, wf // 2), 255, np.uint8))
            (base / "dpt").mkdir(parents=True, exist_ok=True)
            np.save(base / "dpt" / f"{name}.npy", np.full((hf // 2, wf // 2), 0.25, np.float32))
            rows.append(llff_row(c2w, hf, wf, focal_full, *b))
    np.save(base / "poses_bounds.npy", np.stack(rows))
    return base


def rotmat_to_qvec(R: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) of a rotation matrix (Shepperd's method, w branch + fallbacks)."""
    tr = np.trace(R)
    if tr > 0:
        s = np.sqrt(tr + 1.0) * 2
        q = [0.25 * s, (R[2, 1] - R[1, 2]) / s, (R[0, 2] - R[2, 0]) / s, (R[1, 0] - R[0, 1]) / s]
    elif R[0, 0] > R[1, 1] and R[0, 0] > R[2, 2]:
        s = np.sqrt(1.0 + R[0, 0] - R[1, 1] - R[2, 2]) * 2
        q = [(R[2, 1] - R[1, 2]) / s, 0.25 * s, (R[0, 1] + R[1, 0]) / s, (R[0, 2] + R[2, 0]) / s]
    elif R[1, 1] > R[2, 2]:
        s = np.sqrt(1.0 + R[1, 1] - R[0, 0] - R[2, 2]) * 2
        q = [(R[0, 2] - R[2, 0]) / s, (R[0, 1] + R[1, 0]) / s, 0.25 * s, (R[1, 2] + R[2, 1]) / s]
    else:
        s = np.sqrt(1.0 + R[2, 2] - R[0, 0] - R[1, 1]) * 2
        q = [(R[1, 0] - R[0, 1]) / s, (R[0, 2] + R[2, 0]) / s, (R[1, 2] + R[2, 1]) / s, 0.25 * s]
    return np.array(q)


def write_colmap(sparse: Path, *, width, height, fx, fy, cx, cy, w2cs, names, points=None) -> None:
    """cameras.bin (one PINHOLE camera), images.bin (no 2D points except one each), points3D.bin."""
    sparse.mkdir(parents=True, exist_ok=True)
    with open(sparse / "cameras.bin", "wb") as f:
        f.write(struct.pack("<Q", 1))
        f.write(struct.pack("<iiQQ", 1, 1, width, height))
        f.write(struct.pack("<dddd", fx, fy, cx, cy))
    with open(sparse / "images.bin", "wb") as f:
        f.write(struct.pack("<Q", len(names)))
        for i, (w2c, name) in enumerate(zip(w2cs, names), start=1):
            q = rotmat_to_qvec(w2c[:3, :3])
            f.write(struct.pack("<idddddddi", i, *q, *w2c[:3, 3], 1))
            f.write(name.encode() + b"\0")
            f.write(struct.pack("<Q", 1))
            f.write(struct.pack("<ddq", 1.5, 2.5, -1))
    points = np.zeros((0, 3)) if points is None else points
    with open(sparse / "points3D.bin", "wb") as f:
        f.write(struct.pack("<Q", len(points)))
        for i, p in enumerate(points, start=1):
            f.write(struct.pack("<QdddBBBd", i, *p, 10, 20, 30, 0.5))
            f.write(struct.pack("<Q", 2))
            f.write(struct.pack("<iiii", 1, 0, 2, 0))


def write_d4dgs(root: Path, scene: str, w2cs, *, colmap_wh, K_full, img_wh, disp=None, points=None,
                seed=0, tracks=True) -> Path:
    """Deblur4DGS layout: <root>/<scene>/x1/... for 2N interleaved cameras ``w2cs``."""
    rng = np.random.default_rng(seed)
    base = Path(root) / scene / "x1"
    w, h = img_wh
    m = len(w2cs)
    names = [f"{i:05d}" for i in range(m)]
    for i, name in enumerate(names):
        png(base / "images" / f"{name}.png", noise_image(rng, w, h))
        png(base / "images_test" / f"{name}.png", noise_image(rng, w, h))
        png(base / "masks" / f"{name}.png", np.zeros((h, w), np.uint8))
        if i % 2 == 0:
            pre = base / "flow3d_preprocessed"
            png(pre / "masks" / f"{name}.png", np.full((h, w, 3), 255, np.uint8))
            (pre / "aligned_depth_anything_colmap").mkdir(parents=True, exist_ok=True)
            d = disp[i // 2] if disp is not None else np.full((h, w), 0.25, np.float32)
            np.save(pre / "aligned_depth_anything_colmap" / f"{name}.npy", d.astype(np.float32))
    if tracks:
        tdir = base / "flow3d_preprocessed" / "2d_tracks"
        tdir.mkdir(parents=True, exist_ok=True)
        for q in names[0::2]:
            for t in names[0::2]:
                np.save(tdir / f"{q}_{t}.npy", np.full((5, 4), float(int(t)), np.float32))
    write_colmap(base / "flow3d_preprocessed" / "colmap" / "sparse", width=colmap_wh[0], height=colmap_wh[1],
                 fx=K_full[0, 0], fy=K_full[1, 1], cx=K_full[0, 2], cy=K_full[1, 2], w2cs=w2cs,
                 names=[f"{n}.png" for n in names], points=points)
    return base
