"""Write a rendered synthetic scene in a real layout (DyBluRF, D2RF, Deblur4DGS) plus ``synthetic_gt/``.

``synthetic_gt/`` (a folder no real layout uses) holds ``gt.npz`` (sharp left frames, raw depth,
dynamic masks of both views, CoC radii, sub-frame displacements), ``regions.npz`` (the regions each
method component addresses, ``bench/data/synth/regions.py``) and ``meta.json`` (scene parameters,
raw cameras, landmarks: 3D points and the pixels where they were drawn; the regions' shares).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench.data.io import write_image
from bench.data.layouts import d2rf, d4dgs, dyblurf
from bench.data.layouts.checks import POSES_BOUNDS
from bench.data.llff import opencv_c2w_to_llff_row
from bench.data.synth.render import Rendered, downsample
from bench.data.synth.scenes import FOCAL, SUPERSAMPLE, TRAIN_SIZE, SceneDef

GT_DIR = "synthetic_gt"
GENERATOR_VERSION = 7  # bump whenever the written data change: older scenes are regenerated
# 7: regions.npz and meta.json "shares" added; images and arrays of version 6 scenes unchanged


def _poses_bounds(r: Rendered) -> np.ndarray:
    """(2N,17) LLFF rows, left/right alternating, hwf at full resolution, bounds from the depth maps."""
    w, h = TRAIN_SIZE
    hwf = (h * SUPERSAMPLE, w * SUPERSAMPLE, FOCAL * SUPERSAMPLE)
    rows = []
    for k in range(len(r.c2w_left)):
        for c2w, depth in ((r.c2w_left[k], r.left_depth[k]), (r.c2w_right[k], r.right_depth[k])):
            valid = depth[depth > 0]
            rows.append(opencv_c2w_to_llff_row(c2w, hwf, float(valid.min()), float(valid.max())))
    return np.stack(rows)


def _disp(depth: np.ndarray) -> np.ndarray:
    """Disparity in inverse raw units (what the loaders invert with the LLFF scale)."""
    return np.where(depth > 0, 1.0 / np.maximum(depth, 1e-9), 0.0).astype(np.float32)


def _save_flow(path: Path, flow: np.ndarray, valid: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, flow=flow.astype(np.float32), mask=valid.astype(bool))


def write_dyblurf(r: Rendered, scene_dir: Path) -> None:
    """DyBluRF layout (bench.data.layouts.dyblurf) under ``scene_dir/dense``; full resolution =
    SUPERSAMPLE x training size."""
    dense = scene_dir / dyblurf.SCENE_FOLDER
    train = dyblurf.train_folder_name(*TRAIN_SIZE)
    for k in range(len(r.c2w_left)):
        name = dyblurf.frame_name(k)
        write_image(dense / dyblurf.FULL_IMAGES / f"{name}.png", r.left_blurry_full[k])
        write_image(dense / train / f"{name}.png", downsample(r.left_blurry_full[k]))
        write_image(dense / dyblurf.SHARP_IMAGES / f"{name}.png", r.left_sharp_full[k])
        write_image(dense / dyblurf.TEST_IMAGES / f"{name}.png", r.right_sharp_full[k])
        write_image(dense / dyblurf.MASKS / f"{name}.png", r.left_mask_blur[k].astype(np.float32))
        (dense / dyblurf.DISP).mkdir(parents=True, exist_ok=True)
        np.save(dense / dyblurf.DISP / f"{name}.npy", _disp(r.left_depth[k]))
    flow = dense / dyblurf.FLOW
    for i in range(len(r.flow_fwd)):
        _save_flow(flow / dyblurf.FLOW_PATTERN.format(i, "fwd"), r.flow_fwd[i], r.flow_fwd_valid[i])
        _save_flow(flow / dyblurf.FLOW_PATTERN.format(i + 1, "bwd"), r.flow_bwd[i], r.flow_bwd_valid[i])
    np.save(dense / POSES_BOUNDS, _poses_bounds(r))


def write_d2rf(r: Rendered, scene_dir: Path) -> None:
    """D2RF layout (bench.data.layouts.d2rf) under ``scene_dir``; images/ sharp full res (PNG),
    images_2/ defocused at half (the SUPERSAMPLE factor)."""
    train = d2rf.train_folder_name(SUPERSAMPLE)
    for k in range(len(r.c2w_left)):
        for side, sharp, blurry, depth, mask in (
                ("left", r.left_sharp_full[k], r.left_blurry_full[k], r.left_depth[k], r.left_mask_blur[k]),
                ("right", r.right_sharp_full[k], r.right_blurry_full[k], r.right_depth[k], r.right_mask[k])):
            name = d2rf.frame_name(k, side)
            write_image(scene_dir / d2rf.SHARP_IMAGES / f"{name}.png", sharp)
            write_image(scene_dir / d2rf.BOKEH_IMAGES / f"{name}.png", blurry)
            write_image(scene_dir / train / f"{name}.png", downsample(blurry))
            write_image(scene_dir / d2rf.MASKS / f"{name}.png", mask.astype(np.float32))
            write_image(scene_dir / d2rf.BACKGROUND_MASKS / f"{name}.png", 1.0 - mask.astype(np.float32))
            (scene_dir / d2rf.DPT).mkdir(parents=True, exist_ok=True)
            np.save(scene_dir / d2rf.DPT / f"{name}.npy", _disp(depth))
    flow = scene_dir / d2rf.FLOW
    for i in range(len(r.flow_fwd)):
        _save_flow(flow / d2rf.FLOW_PATTERN.format(i, "fwd"), r.flow_fwd[i], r.flow_fwd_valid[i])
        _save_flow(flow / d2rf.FLOW_PATTERN.format(i + 1, "bwd"), r.flow_bwd[i], r.flow_bwd_valid[i])
    np.save(scene_dir / POSES_BOUNDS, _poses_bounds(r))


def write_d4dgs(r: Rendered, scene_dir: Path) -> None:
    """Deblur4DGS (Shape-of-Motion) layout (bench.data.layouts.d4dgs) under ``scene_dir/x1`` at the
    training resolution.

    images/: even = blurry left, odd = right (defocused if the scene has defocus, else sharp);
    images_test/: sharp, interleaved; COLMAP model of the raw cameras at full resolution (so the
    loader divides K by SUPERSAMPLE); aligned_depth_anything_colmap/: exact disparity 1/depth;
    2d_tracks/: the true tracks of the generator.
    """
    from bench.data.colmap import ColmapCamera, ColmapImage, rotation_to_qvec, write_model

    base = scene_dir / d4dgs.SCENE_FOLDER
    w, h = TRAIN_SIZE
    right_blurry = r.right_blurry_full if r.right_blurry_full is not None else r.right_sharp_full
    images = []
    depth, masks = d4dgs.depth_dir(base), base / d4dgs.PREPROCESSED / d4dgs.MASKS
    for k in range(len(r.c2w_left)):
        for side in (0, 1):
            name = d4dgs.frame_name(2 * k + side)
            blurry = r.left_blurry_full[k] if side == 0 else right_blurry[k]
            sharp = r.left_sharp_full[k] if side == 0 else r.right_sharp_full[k]
            mask = r.left_mask_blur[k] if side == 0 else r.right_mask[k]
            write_image(base / d4dgs.IMAGES / f"{name}.png", downsample(blurry))
            write_image(base / d4dgs.TEST_IMAGES / f"{name}.png", downsample(sharp))
            write_image(base / d4dgs.MASKS / f"{name}.png", mask.astype(np.float32))
            w2c = np.linalg.inv(r.c2w_left[k] if side == 0 else r.c2w_right[k])
            images.append(ColmapImage(2 * k + side + 1, rotation_to_qvec(w2c[:3, :3]), w2c[:3, 3], 1, f"{name}.png"))
        write_image(masks / f"{d4dgs.frame_name(2 * k)}.png", r.left_mask_blur[k].astype(np.float32))
        depth.mkdir(parents=True, exist_ok=True)
        np.save(depth / f"{d4dgs.frame_name(2 * k)}.npy", _disp(r.left_depth[k]))
    f = FOCAL * SUPERSAMPLE
    camera = ColmapCamera(1, "PINHOLE", w * SUPERSAMPLE, h * SUPERSAMPLE,
                          np.array([f, f, w * SUPERSAMPLE / 2, h * SUPERSAMPLE / 2]))
    colors = np.clip(np.round(r.point_colors * 255), 0, 255).astype(np.uint8)
    write_model(d4dgs.sparse_dir(base), camera, images, r.points, colors)
    tracks = d4dgs.tracks_dir(base)
    tracks.mkdir(parents=True, exist_ok=True)
    for q in range(len(r.tracks)):
        for t in range(len(r.tracks)):
            np.save(tracks / d4dgs.track_name(d4dgs.frame_name(2 * q), d4dgs.frame_name(2 * t)), r.tracks[q, :, t])


def write_gt(sd: SceneDef, r: Rendered, scene_dir: Path, shares: dict | None = None) -> None:
    """``synthetic_gt/gt.npz`` and ``synthetic_gt/meta.json`` (with the region ``shares`` if given)."""
    gt = scene_dir / GT_DIR
    gt.mkdir(parents=True, exist_ok=True)
    arrays = {
        "sharp": np.stack([downsample(img) for img in r.left_sharp_full]).astype(np.float16),
        "depth": r.left_depth.astype(np.float32),
        "motion_mask": r.left_mask.astype(np.uint8),
        "test_motion_mask": r.right_mask.astype(np.uint8),
    }
    if r.coc is not None:
        arrays["coc"] = r.coc
    if r.motion_disp is not None:
        arrays["motion_disp"] = r.motion_disp.astype(np.float16)
    np.savez(gt / "gt.npz", **arrays)
    meta = {
        "generator_version": GENERATOR_VERSION, "name": sd.name, "seed": sd.seed, "blur_type": sd.blur_type,
        "layout": sd.layout, "frames": sd.frames, "subframes": sd.subframes, "exposure": sd.exposure,
        "train_size": list(TRAIN_SIZE), "supersample": SUPERSAMPLE, "focal": FOCAL, "baseline": sd.baseline,
        "kappa": r.kappa, "focus": list(sd.focus),
        "c2w_left": r.c2w_left.tolist(), "c2w_right": r.c2w_right.tolist(), "landmarks": r.landmarks,
    }
    if shares is not None:
        meta["shares"] = shares
    (gt / "meta.json").write_text(json.dumps(meta, indent=1))


def write_regions(regions: dict[str, np.ndarray], scene_dir: Path) -> None:
    """``synthetic_gt/regions.npz``: unseen, emerging (N,H,W) bool; test/train_blur_rms (N,H,W) float32."""
    gt = scene_dir / GT_DIR
    gt.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(gt / "regions.npz", **regions)
