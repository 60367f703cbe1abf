"""Render every frame of a synthetic scene: blurry/sharp images, depth, masks, flow and blur truth."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.synth.blur import defocus_layers
from bench.data.synth.raycast import Hits, cast, pixel_rays, project, world_points
from bench.data.synth.scenes import SUPERSAMPLE, TRAIN_SIZE, SceneDef


@dataclass
class Rendered:
    """All arrays of one scene. Training resolution (H,W) unless named ``*_full`` ((H,W) x SUPERSAMPLE).

    left_blurry_full / left_sharp_full / right_sharp_full / right_blurry_full: (N,Hf,Wf,3) in [0,1]
    (right_blurry_full only for defocus/mixed: the D2RF layout ships defocused right frames).
    left_depth / right_depth: (N,H,W) raw depth (generator units). left_mask / right_mask: (N,H,W)
    dynamic masks of the sharp instant; left_mask_blur: union over the exposure.
    coc: (N,H,W) CoC radius in training pixels or None; motion_disp: (N,S,H,W,2) or None.
    flow_fwd / flow_bwd (N-1,H,W,2) and their validity masks (N-1,H,W).
    c2w_left / c2w_right: (N,4,4). landmarks: list of dicts (view, frame, point, pixel).
    tracks: (N,P,N,4) for every query frame q, P surface points seen in q followed through all N
    frames: x, y (pixels), occlusion logit (-5 visible / +5 occluded), expected-distance logit (-5).
    points / point_colors: (M,3) static surface points (raw world) and their colours, a sparse model.
    left_hits / right_hits: the N training-resolution ray casts of each camera at its frame's
    mid-exposure instant (kept for the region ground truth, bench.data.synth.regions).
    """

    left_blurry_full: np.ndarray
    left_sharp_full: np.ndarray
    right_sharp_full: np.ndarray
    right_blurry_full: np.ndarray | None
    left_depth: np.ndarray
    right_depth: np.ndarray
    left_mask: np.ndarray
    left_mask_blur: np.ndarray
    right_mask: np.ndarray
    coc: np.ndarray | None
    motion_disp: np.ndarray | None
    flow_fwd: np.ndarray
    flow_bwd: np.ndarray
    flow_fwd_valid: np.ndarray
    flow_bwd_valid: np.ndarray
    c2w_left: np.ndarray
    c2w_right: np.ndarray
    kappa: float
    landmarks: list[dict]
    tracks: np.ndarray
    points: np.ndarray
    point_colors: np.ndarray
    left_hits: list[Hits]
    right_hits: list[Hits]


def _dyn(sd: SceneDef, obj: np.ndarray) -> np.ndarray:
    flags = np.array([p.dynamic for p in sd.objects] + [False])  # index -1 = miss
    return flags[obj]


def _full(sd: SceneDef, c2w: np.ndarray, t: float) -> Hits:
    w, h = TRAIN_SIZE
    return cast(sd.objects, c2w, pixel_rays(sd.K(SUPERSAMPLE), w * SUPERSAMPLE, h * SUPERSAMPLE), t)


def _train(sd: SceneDef, c2w: np.ndarray, t: float) -> Hits:
    w, h = TRAIN_SIZE
    return cast(sd.objects, c2w, pixel_rays(sd.K(), w, h), t)


def _pix_centres() -> np.ndarray:
    w, h = TRAIN_SIZE
    j, i = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    return np.stack([j, i], -1).reshape(-1, 2)


def _signed_coc(depth: np.ndarray, focus: float, kappa: float) -> np.ndarray:
    """Thin-lens CoC radius (pixels), negative in front of the focus plane."""
    with np.errstate(divide="ignore"):
        return kappa * (1.0 / focus - 1.0 / np.maximum(depth, 1e-6))


def _kappa(sd: SceneDef) -> float:
    """Lens constant so that the largest CoC over the training frames is ``sd.max_coc`` pixels."""
    worst = 0.0
    for k in range(sd.frames):
        t = k / (sd.frames - 1)
        d = _train(sd, sd.c2w(t), t).depth
        worst = max(worst, float(np.abs(1.0 / sd.focus_at(t) - 1.0 / d[d > 0]).max()))
    return sd.max_coc / worst


def _image(h: Hits, factor: int = SUPERSAMPLE) -> np.ndarray:
    w, hh = TRAIN_SIZE
    return h.rgb.reshape(hh * factor, w * factor, 3)


def _defocus(sd: SceneDef, hit: Hits, t: float, kappa: float) -> np.ndarray:
    w, h = TRAIN_SIZE
    depth = hit.depth.reshape(h * SUPERSAMPLE, w * SUPERSAMPLE)
    return defocus_layers(_image(hit), SUPERSAMPLE * _signed_coc(depth, sd.focus_at(t), kappa))


DEPTH_TOL = 0.02  # relative depth agreement at which a projected point is the surface a view sees


def seen_at(uv: np.ndarray, z: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """(M,) bool: points projected to pixel coordinates ``uv`` (M,2) at depth ``z`` (M,) are the surface
    seen by a view whose training-resolution depth map is ``depth`` (H,W): inside the image, in front
    of the camera, and within DEPTH_TOL of the depth map at the pixel they fall in."""
    h, w = depth.shape
    col, row = np.floor(uv[:, 0]).astype(int), np.floor(uv[:, 1]).astype(int)
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h) & (z > 0)
    seen = np.zeros(len(z), dtype=bool)
    target = depth[np.clip(row, 0, h - 1), np.clip(col, 0, w - 1)]
    seen[inside] = np.abs(target[inside] - z[inside]) < DEPTH_TOL * z[inside]
    return seen


def _flow(sd: SceneDef, src: Hits, ti: float, tj: float, dst_depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flow (H,W,2) of the training-resolution left view from time ti to tj and its validity (H,W)."""
    w, h = TRAIN_SIZE
    pts = world_points(sd.objects, src.obj, src.local, tj)
    uv, z = project(sd.K(), np.linalg.inv(sd.c2w(tj)), pts)
    flow = uv - _pix_centres()
    return flow.reshape(h, w, 2).astype(np.float32), seen_at(uv, z, dst_depth).reshape(h, w)


def _motion_disp(sd: SceneDef, mid: Hits, times: np.ndarray) -> np.ndarray:
    """(S,H,W,2) displacement of each pixel's mid-exposure surface point at each sub-frame."""
    w, h = TRAIN_SIZE
    out = []
    for t in times:
        uv, _ = project(sd.K(), np.linalg.inv(sd.c2w(t)), world_points(sd.objects, mid.obj, mid.local, t))
        out.append((uv - _pix_centres()).reshape(h, w, 2))
    return np.stack(out).astype(np.float32)


def _landmarks(rng: np.random.Generator, hit: Hits, sd: SceneDef, t: float, view: str, k: int, count: int = 3):
    w, _ = TRAIN_SIZE
    pts = world_points(sd.objects, hit.obj, hit.local, t)
    centres = _pix_centres()
    picks = rng.choice(np.flatnonzero(hit.obj >= 0), count, replace=False)
    return [{"view": view, "frame": k, "point": pts[i].tolist(), "pixel": centres[i].tolist(),
             "depth": float(hit.depth[i])} for i in picks]


def _tracks(sd: SceneDef, mids: list, depths: list, rng: np.random.Generator, count: int = 24) -> np.ndarray:
    """(N,P,N,4) ground-truth 2D tracks of ``count`` points per query frame (see Rendered)."""
    out = np.zeros((len(mids), count, len(mids), 4), dtype=np.float32)
    for q, (hit, _) in enumerate(mids):
        pick = rng.choice(np.flatnonzero(hit.obj >= 0), count, replace=False)
        for j, (_, tj) in enumerate(mids):
            pts = world_points(sd.objects, hit.obj[pick], hit.local[pick], tj)
            uv, z = project(sd.K(), np.linalg.inv(sd.c2w(tj)), pts)
            seen = seen_at(uv, z, depths[j])
            out[q, :, j, :2] = uv
            out[q, :, j, 2] = np.where(seen, -5.0, 5.0)
            out[q, :, j, 3] = -5.0
    return out


def _sparse_points(sd: SceneDef, mid: Hits, sharp: np.ndarray, rng: np.random.Generator, count: int = 400):
    """Static surface points of the first frame (raw world) with their sharp colours."""
    static = np.flatnonzero((mid.obj >= 0) & ~_dyn(sd, mid.obj))
    pick = rng.choice(static, min(count, static.size), replace=False)
    return world_points(sd.objects, mid.obj[pick], mid.local[pick], 0.0), sharp.reshape(-1, 3)[pick]


def _pool_mask(mask_full: np.ndarray) -> np.ndarray:
    w, h = TRAIN_SIZE
    return mask_full.reshape(h, SUPERSAMPLE, w, SUPERSAMPLE).any(axis=(1, 3))


def downsample(img: np.ndarray) -> np.ndarray:
    """INTER_AREA downsample of a full-resolution (Hf,Wf,3) image to the training size."""
    import cv2

    return cv2.resize(img.astype(np.float32), TRAIN_SIZE, interpolation=cv2.INTER_AREA)


def render_scene(sd: SceneDef, progress=None) -> Rendered:
    """Render all N frames of ``sd``; ``progress()`` is called once per frame."""
    w, h = TRAIN_SIZE
    motion = sd.blur_type in ("motion", "mixed")
    defocus = sd.blur_type in ("defocus", "mixed")
    kappa = _kappa(sd) if defocus else 0.0
    rng = np.random.default_rng(sd.seed + 1000)
    acc: dict[str, list] = {k: [] for k in ("lb", "ls", "rs", "rb", "ld", "rd", "lm", "lmb", "rm", "coc", "disp")}
    mids, rights, landmarks = [], [], []
    for k in range(sd.frames):
        t = k / (sd.frames - 1)
        times = sd.sub_times(k) if motion else np.array([t])
        subs, dyn = [], np.zeros((h, w), dtype=bool)
        for ts in times:
            hit = _full(sd, sd.c2w(ts), ts)
            subs.append(_defocus(sd, hit, t, kappa) if defocus else _image(hit))
            dyn |= _pool_mask(_dyn(sd, hit.obj).reshape(h * SUPERSAMPLE, w * SUPERSAMPLE))
        mid_full = _full(sd, sd.c2w(t), t)
        mid = _train(sd, sd.c2w(t), t)
        right_full = _full(sd, sd.c2w(t, right=True), t)
        right = _train(sd, sd.c2w(t, right=True), t)
        acc["lb"].append(np.mean(subs, axis=0))
        acc["ls"].append(_image(mid_full))
        acc["rs"].append(_image(right_full))
        if defocus:
            acc["rb"].append(_defocus(sd, right_full, t, kappa))
            acc["coc"].append(np.abs(_signed_coc(mid.depth, sd.focus_at(t), kappa)).reshape(h, w))
        if motion:
            acc["disp"].append(_motion_disp(sd, mid, times))
        acc["ld"].append(mid.depth.reshape(h, w))
        acc["rd"].append(right.depth.reshape(h, w))
        acc["lm"].append(_dyn(sd, mid.obj).reshape(h, w))
        acc["lmb"].append(dyn)
        acc["rm"].append(_dyn(sd, right.obj).reshape(h, w))
        mids.append((mid, t))
        rights.append(right)
        landmarks += _landmarks(rng, mid, sd, t, "left", k) + _landmarks(rng, right, sd, t, "right", k)
        if progress:
            progress()
    points, colors = _sparse_points(sd, mids[0][0], downsample(acc["ls"][0]), rng)
    flows = [_flow(sd, mids[i][0], mids[i][1], mids[i + 1][1], acc["ld"][i + 1]) for i in range(sd.frames - 1)]
    backs = [_flow(sd, mids[i + 1][0], mids[i + 1][1], mids[i][1], acc["ld"][i]) for i in range(sd.frames - 1)]
    return Rendered(
        left_blurry_full=np.clip(np.stack(acc["lb"]), 0, 1), left_sharp_full=np.stack(acc["ls"]),
        right_sharp_full=np.stack(acc["rs"]), right_blurry_full=np.clip(np.stack(acc["rb"]), 0, 1) if defocus else None,
        left_depth=np.stack(acc["ld"]), right_depth=np.stack(acc["rd"]), left_mask=np.stack(acc["lm"]),
        left_mask_blur=np.stack(acc["lmb"]), right_mask=np.stack(acc["rm"]),
        coc=np.stack(acc["coc"]).astype(np.float32) if defocus else None,
        motion_disp=np.stack(acc["disp"]) if motion else None,
        flow_fwd=np.stack([f for f, _ in flows]), flow_fwd_valid=np.stack([v for _, v in flows]),
        flow_bwd=np.stack([f for f, _ in backs]), flow_bwd_valid=np.stack([v for _, v in backs]),
        c2w_left=np.stack([sd.c2w(k / (sd.frames - 1)) for k in range(sd.frames)]),
        c2w_right=np.stack([sd.c2w(k / (sd.frames - 1), right=True) for k in range(sd.frames)]),
        kappa=kappa, landmarks=landmarks, tracks=_tracks(sd, mids, acc["ld"], rng),
        points=points, point_colors=colors, left_hits=[m for m, _ in mids], right_hits=rights)

