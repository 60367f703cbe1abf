"""Shape-of-Motion style motion bases and their initialisation from 2D correspondences.

B global motion bases each hold one rigid transform (6D rotation + translation) per training
frame. A dynamic Gaussian owns B coefficient logits; its transform at a frame is the
softmax-weighted blend of the bases' 6D rotations (re-orthonormalised by Gram-Schmidt) and
translations. Canonical space is the space of the canonical frame: ``mean_t = R_t mean + t_t``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as nnf

from bench.method.geometry import (matrix_to_quat, matrix_to_rot6d, pixel_centres, pixel_index, quat_multiply,
                                   rot6d_to_matrix, unproject)
from bench.method.rng import generator

IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)


class MotionBases(nn.Module):
    """B rigid motion bases over T frames.

    Parameters: ``rot6d`` (B,T,6) initialised to the identity, ``trans`` (B,T,3) zeros.
    """

    def __init__(self, num_bases: int = 20, num_frames: int = 1):
        super().__init__()
        if num_bases < 1 or num_frames < 1:
            raise ValueError(f"MotionBases needs num_bases >= 1 and num_frames >= 1, got {num_bases}, {num_frames}")
        self.num_bases, self.num_frames = num_bases, num_frames
        self.rot6d = nn.Parameter(torch.tensor(IDENTITY_6D).repeat(num_bases, num_frames, 1))
        self.trans = nn.Parameter(torch.zeros(num_bases, num_frames, 3))

    def _at_frame(self, frame: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Bases' (B,6) rotations and (B,3) translations at a possibly fractional frame.

        Linear interpolation between the neighbouring integer frames; clamped to [0, T-1].
        """
        f = torch.as_tensor(frame, dtype=self.trans.dtype, device=self.trans.device).reshape(())
        f = f.clamp(0, self.num_frames - 1)
        f0 = int(torch.floor(f).item())
        f1 = min(f0 + 1, self.num_frames - 1)
        w = f - f0
        rot = (1 - w) * self.rot6d[:, f0] + w * self.rot6d[:, f1]
        trans = (1 - w) * self.trans[:, f0] + w * self.trans[:, f1]
        return rot, trans

    def transforms(self, coef_logits: torch.Tensor, frame: float | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-Gaussian rigid transforms at ``frame``.

        coef_logits: (N,B). frame: scalar (float or 0-d tensor) training-frame time.
        Returns R (N,3,3), t (N,3).
        """
        rot, trans = self._at_frame(frame)
        weights = torch.softmax(coef_logits, dim=-1)
        R = rot6d_to_matrix(weights @ rot)
        return R, weights @ trans

    def apply(self, means: torch.Tensor, quats: torch.Tensor, coef_logits: torch.Tensor,
              frame: float | torch.Tensor, moving: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Move canonical Gaussians to ``frame``.

        means (N,3), quats (N,4) wxyz, coef_logits (N,B); moving (N,) bool, the rows that move
        (the others are returned unchanged, and their coefficients get no gradient), or None for
        all. Returns means_t (N,3), quats_t (N,4) with mean_t = R mean + t and
        quat_t = quat(R) * quat.
        """
        module = _compiled_module(means)
        if module is not None and self.num_bases <= MAX_COMPILED_BASES:
            rot, trans = self._at_frame(frame)
            if moving is None:
                moving = torch.ones(len(means), dtype=torch.bool, device=means.device)
            return _MotionCompiled.apply(means, quats, coef_logits, rot, trans, moving.contiguous(), module)
        if moving is not None:
            rows = torch.nonzero(moving).squeeze(1)
            m, q = self.apply(means[rows], quats[rows], coef_logits[rows], frame)
            return means.index_put((rows,), m), quats.index_put((rows,), q)
        R, t = self.transforms(coef_logits, frame)
        means_t = (R @ means[:, :, None]).squeeze(-1) + t
        quats_t = quat_multiply(matrix_to_quat(R), quats)
        return means_t, quats_t


class _MotionCompiled(torch.autograd.Function):
    """MotionBases.apply after the bases' interpolation, by the compiled CPU loops
    (bench/render/cpu_ext/motion_cpu.cpp): means (N,3), quats (N,4), coef_logits (N,B), rot (B,6),
    trans (B,3), moving (N,) bool -> means_t (N,3), quats_t (N,4), with a hand-written backward."""

    @staticmethod
    def forward(ctx, means, quats, coef_logits, rot, trans, moving, module):
        inputs = [t.contiguous() for t in (means, quats, coef_logits, rot, trans, moving)]
        ctx.save_for_backward(*inputs)
        ctx.module = module
        return tuple(module.motion_forward(*inputs))

    @staticmethod
    def backward(ctx, g_means, g_quats):
        grads = ctx.module.motion_backward(*ctx.saved_tensors, g_means.contiguous(), g_quats.contiguous())
        return (*grads, None, None)


MAX_COMPILED_BASES = 64  # motion_cpu.cpp keeps a Gaussian's weights in a fixed array


def _compiled_module(means: torch.Tensor):
    """The compiled CPU kernels for these tensors, or None (GPU, other dtypes, not built)."""
    if means.device.type != "cpu" or means.dtype not in (torch.float32, torch.float64):
        return None
    from bench.render import cpu_ext

    return cpu_ext.load() if cpu_ext.enabled() else None


@dataclass
class MotionInit:
    """Result of :func:`init_from_flow_or_tracks`.

    coef_logits: (N,B) initial coefficients of the dynamic Gaussians.
    path: "tracks", "flow" or "identity". detail: one line for the run log (why / how many).
    """

    coef_logits: torch.Tensor
    path: str
    detail: str


def init_from_flow_or_tracks(bases: MotionBases, dyn_means: torch.Tensor, scene, canonical_frame: int, *,
                             max_points: int = 4096, min_trajectories: int = 16, own_weight: float = 0.99,
                             seed: int = 0) -> MotionInit:
    """Fit ``bases`` (in place) to 3D trajectories lifted from the scene's tracks or flow.

    dyn_means: (N,3) canonical-frame positions of the dynamic Gaussians. scene: a
    ``bench.data.scene.Scene`` with train depth and motion masks. Tracks are preferred to flow.
    Trajectories (P,T,3) of dynamic points are clustered (k-means of their velocities) into B
    clusters; each cluster gets a per-frame weighted Kabsch fit from its canonical positions.
    A Gaussian's coefficients put ``own_weight`` of the softmax mass on the cluster of its nearest
    trajectory. When the data does not allow a fit, the bases stay at the identity and the
    coefficients come from :func:`identity_coefficients`, with the reason in ``detail``. Random
    subsampling and k-means seeding draw from the run seed's "motion_init" stream
    (bench.method.rng).
    """
    T = len(scene.train)
    if bases.num_frames != T or not 0 <= canonical_frame < T:
        raise ValueError(f"bases for {bases.num_frames} frames / canonical frame {canonical_frame} "
                         f"do not match {T} training views")
    gen = generator(seed, "motion_init")
    fitted = _fit_to_correspondences(bases, dyn_means, scene, canonical_frame, gen, max_points=max_points,
                                     min_trajectories=min_trajectories, own_weight=own_weight)
    if isinstance(fitted, MotionInit):
        return fitted
    return MotionInit(identity_coefficients(dyn_means, bases.num_bases, gen), "identity", fitted)


def _fit_to_correspondences(bases: MotionBases, dyn_means: torch.Tensor, scene, canonical_frame: int,
                            gen: torch.Generator, *, max_points: int, min_trajectories: int,
                            own_weight: float) -> MotionInit | str:
    """The fit of :func:`init_from_flow_or_tracks`, or the reason (str) why the data allows none."""
    views, extras = scene.train, scene.extras
    T = len(views)
    if views.depth is None or views.motion_mask is None:
        return "no training depth or motion masks"
    if dyn_means.shape[0] == 0:
        return "no dynamic Gaussians"
    if extras.tracks is not None and extras.tracks.shape[1] != T:
        return f"tracks cover {extras.tracks.shape[1]} frames, not {T}"
    if extras.tracks is None and extras.flow_fwd is not None and extras.flow_fwd.shape[0] != T - 1:
        return f"{extras.flow_fwd.shape[0]} flow fields for {T} frames"
    if extras.tracks is not None:
        traj, vis = _trajectories_from_tracks(extras.tracks, views, canonical_frame)
        path = "tracks"
    elif extras.flow_fwd is not None and extras.flow_bwd is not None:
        traj, vis = _trajectories_from_flow(extras, views, canonical_frame, max_points, gen)
        path = "flow"
    else:
        return "dataset has neither 2D tracks nor optical flow"
    if traj.shape[0] < min_trajectories:
        return f"only {traj.shape[0]} dynamic {path} trajectories with depth (< {min_trajectories})"
    if traj.shape[0] > max_points:
        keep = torch.randperm(traj.shape[0], generator=gen)[:max_points]
        traj, vis = traj[keep], vis[keep]
    rot6d, trans, labels = fit_bases(traj, vis, canonical_frame, bases.num_bases, gen)
    with torch.no_grad():
        bases.rot6d.copy_(rot6d.to(bases.rot6d))
        bases.trans.copy_(trans.to(bases.trans))
    coef = coefficients_from_labels(dyn_means, traj[:, canonical_frame].to(dyn_means), labels,
                                    bases.num_bases, own_weight)
    used = int(labels.unique().numel())
    return MotionInit(coef, path, f"{traj.shape[0]} trajectories, {used} clusters fitted")


# Share of the softmax mass a Gaussian starts with on its own spatial cluster's basis. Below 1 so
# that the coefficient gradient reaches every basis; docs/method.md §2 has the measured choice.
CLUSTER_OWN_WEIGHT = 0.95


def identity_coefficients(dyn_means: torch.Tensor, num_bases: int, gen: torch.Generator) -> torch.Tensor:
    """Coefficient logits (N,B) for identity bases that let training learn distinct motions.

    Identity bases with equal coefficients are an exactly symmetric start: every basis moves the
    same, so the coefficient gradient is zero (up to rounding) and all bases get the same gradient
    for the whole run. Instead the canonical means dyn_means (N,3) are split into min(B, N) spatial clusters by
    k-means (seeded from ``gen``) and each Gaussian puts ``CLUSTER_OWN_WEIGHT`` of its mass on its
    cluster's basis: each basis then learns the motion of one region, and regions that move alike
    can still share a basis through the coefficients.
    """
    n = dyn_means.shape[0]
    if n == 0 or num_bases == 1:
        return torch.zeros(n, num_bases, device=dyn_means.device)
    labels = kmeans(dyn_means.detach().cpu().float(), min(num_bases, n), gen)
    return soft_one_hot(labels.to(dyn_means.device), num_bases, CLUSTER_OWN_WEIGHT)


def coefficients_from_labels(points: torch.Tensor, anchors: torch.Tensor, labels: torch.Tensor,
                             num_bases: int, own_weight: float = 0.99) -> torch.Tensor:
    """Coefficient logits (N,B) putting ``own_weight`` of the mass on the nearest anchor's cluster.

    points (N,3), anchors (P,3), labels (P,) long in [0,B).
    """
    nearest = _nearest(points, anchors)
    return soft_one_hot(labels.to(points.device)[nearest], num_bases, own_weight)


def soft_one_hot(labels: torch.Tensor, num_bases: int, own_weight: float) -> torch.Tensor:
    """Logits (N,B) whose softmax puts ``own_weight`` on basis labels[i] (N,) and the rest evenly."""
    if not 0 < own_weight < 1:
        raise ValueError(f"own_weight must be in (0, 1), got {own_weight}")
    if num_bases == 1:
        return torch.zeros(labels.shape[0], 1, device=labels.device)
    # softmax gives own_weight to one logit when it exceeds the others by this gap.
    gap = math.log(own_weight * (num_bases - 1) / (1 - own_weight))
    logits = torch.zeros(labels.shape[0], num_bases, device=labels.device)
    logits[torch.arange(labels.shape[0]), labels] = gap
    return logits


def _nearest(points: torch.Tensor, anchors: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Index (N,) of the nearest anchor (P,3) of every point (N,3), chunked to bound memory."""
    out = [torch.cdist(points[i:i + chunk], anchors).argmin(dim=1) for i in range(0, points.shape[0], chunk)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=points.device)


def fit_bases(traj: torch.Tensor, vis: torch.Tensor, canonical_frame: int, num_bases: int,
              gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cluster trajectories and fit one rigid transform per cluster and frame.

    traj: (P,T,3) world positions (arbitrary where not visible); vis: (P,T) bool, every
    trajectory visible at ``canonical_frame``. Returns rot6d (B,T,6), trans (B,T,3), labels (P,).
    Bases without a cluster copy the fitted ones.
    """
    velocity = (traj[:, 1:] - traj[:, :-1]).reshape(traj.shape[0], -1)
    observed = (vis[:, 1:] & vis[:, :-1]).repeat_interleave(3, dim=1)
    k = min(num_bases, traj.shape[0])
    if velocity.shape[1] > 0:
        labels = kmeans(velocity, k, gen, observed)
    else:
        labels = torch.zeros(traj.shape[0], dtype=torch.long)
    T = traj.shape[1]
    rot6d = torch.tensor(IDENTITY_6D).repeat(num_bases, T, 1)
    trans = torch.zeros(num_bases, T, 3)
    src = traj[:, canonical_frame]
    used = [b for b in range(k) if (labels == b).any()]
    for b in used:
        sel = labels == b
        R, t = robust_rigid_fit(src[sel], traj[sel], vis[sel])
        rot6d[b], trans[b] = matrix_to_rot6d(R), t
    # Bases without a cluster copy fitted ones: the small coefficient mass every Gaussian puts on
    # them then blends real motions instead of pulling towards the identity.
    spare = [b for b in range(num_bases) if b not in used]
    for i, b in enumerate(spare):
        rot6d[b], trans[b] = rot6d[used[i % len(used)]], trans[used[i % len(used)]]
    return rot6d, trans, labels


def kmeans(x: torch.Tensor, k: int, gen: torch.Generator, observed: torch.Tensor | None = None,
           iters: int = 30) -> torch.Tensor:
    """Labels (P,) of k-means with k-means++ seeding. x: (P,D).

    observed: optional (P,D) bool; missing entries are ignored (distances use the observed
    dimensions only, rescaled to all D; centres average the observed values).
    """
    P, D = x.shape
    m = torch.ones_like(x) if observed is None else observed.to(x.dtype)
    x = x * m
    scale = D / m.sum(1, keepdim=True).clamp_min(1)

    def dist2(C):  # (P,k) masked squared distances
        return ((x * x).sum(1, keepdim=True) - 2 * x @ C.T + m @ (C * C).T).clamp_min(0) * scale

    centres = [x[torch.randint(P, (1,), generator=gen)].squeeze(0)]
    d2 = dist2(centres[0][None])[:, 0]
    for _ in range(1, k):
        if d2.sum() <= 0:  # fewer distinct points than clusters: pick any remaining point
            idx = torch.randint(P, (1,), generator=gen)
        else:
            idx = torch.multinomial(d2 / d2.sum(), 1, generator=gen)
        centres.append(x[idx].squeeze(0))
        d2 = torch.minimum(d2, dist2(centres[-1][None])[:, 0])
    C = torch.stack(centres)
    for _ in range(iters):
        labels = dist2(C).argmin(1)
        total = torch.zeros_like(C).index_add_(0, labels, x)
        count = torch.zeros_like(C).index_add_(0, labels, m)
        new = torch.where(count > 0, total / count.clamp_min(1), C)
        if torch.allclose(new, C):
            break
        C = new
    return dist2(C).argmin(1)


def weighted_kabsch(src: torch.Tensor, dst: torch.Tensor, w: torch.Tensor,
                    min_points: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame rigid fit dst ≈ R src + t.

    src: (P,3); dst: (P,T,3); w: (P,T) non-negative weights. Returns R (T,3,3), t (T,3).
    Frames with fewer than ``min_points`` weighted points get a translation-only fit; frames with
    none copy the nearest fitted frame (identity if no frame has points).
    """
    count = (w > 0).sum(0)  # (T,)
    wsum = w.sum(0).clamp_min(1e-12)
    mu_s = (w.T @ src) / wsum[:, None]  # (T,3)
    mu_d = (w[..., None] * dst).sum(0) / wsum[:, None]
    xs = src[:, None, :] - mu_s[None]  # (P,T,3)
    xd = dst - mu_d[None]
    cov = torch.einsum("pt,pti,ptj->tij", w, xs, xd)  # sum w xs xd^T
    U, _, Vh = torch.linalg.svd(cov)
    V = Vh.transpose(-1, -2)
    d = torch.det(V @ U.transpose(-1, -2))
    D = torch.diag_embed(torch.stack([torch.ones_like(d), torch.ones_like(d), d], -1))
    R = V @ D @ U.transpose(-1, -2)
    eye = torch.eye(3).expand_as(R)
    R = torch.where((count >= min_points)[:, None, None], R, eye)
    t = mu_d - (R @ mu_s[..., None]).squeeze(-1)
    has = count > 0
    if not has.any():
        return eye.clone(), torch.zeros_like(t)
    frames = torch.arange(w.shape[1], dtype=torch.float32)
    fitted = frames[has]
    nearest = torch.nonzero(has).squeeze(1)[(frames[:, None] - fitted[None]).abs().argmin(1)]
    return R[nearest], t[nearest]


def robust_rigid_fit(src: torch.Tensor, dst: torch.Tensor, vis: torch.Tensor,
                     outlier_factor: float = 3.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Kabsch fit, then a refit without points whose residual exceeds ``outlier_factor`` x median.

    Flow chaining and depth produce a few gross outliers; one reweighting removes most of them.
    src (P,3), dst (P,T,3), vis (P,T) bool. Returns R (T,3,3), t (T,3).
    """
    w = vis.float()
    R, t = weighted_kabsch(src, dst, w)
    pred = torch.einsum("tij,pj->pti", R, src) + t[None]
    res = (pred - dst).norm(dim=-1)
    res_vis = torch.where(vis, res, torch.full_like(res, float("nan")))
    med = torch.nanmedian(res_vis, dim=0).values.nan_to_num(0.0)  # (T,)
    keep = vis & (res <= outlier_factor * med[None] + 1e-6)
    return weighted_kabsch(src, dst, keep.float())


def _sample_nearest(img: torch.Tensor, uv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Value of the pixel containing each coordinate (no blending across depth edges).

    img (H,W,...), uv (M,2) image coordinates (bench.method.geometry convention). Returns values
    (M,...) and in-bounds (M,) bool.
    """
    H, W = img.shape[:2]
    ui, vi = pixel_index(uv).unbind(-1)
    inside = (ui >= 0) & (ui < W) & (vi >= 0) & (vi < H)
    return img[vi.clamp(0, H - 1), ui.clamp(0, W - 1)], inside


def _lift(uv: torch.Tensor, ok: torch.Tensor, views, t: int) -> tuple[torch.Tensor, torch.Tensor]:
    """World points (M,3) of image coordinates uv (M,2) at frame t, and validity (M,) bool."""
    z, inside = _sample_nearest(views.depth[t], uv)
    ok = ok & inside & (z > 0)
    c2w = torch.linalg.inv(views.cameras.w2c[t])
    return unproject(uv, z, views.cameras.K[t], c2w), ok


def _trajectories_from_tracks(tracks: torch.Tensor, views, canonical: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dynamic 3D trajectories (P,T,3) and visibility (P,T) from 2D tracks (Q,T,4).

    A track point is visible when (1 - sigmoid(occlusion)) * (1 - sigmoid(expected distance)) > 0.5
    (TAPIR convention). A track is dynamic when most of its visible samples fall in the motion mask;
    only tracks visible with depth at the canonical frame are kept (they anchor the canonical space).
    """
    T = tracks.shape[1]
    visible = (1 - torch.sigmoid(tracks[..., 2])) * (1 - torch.sigmoid(tracks[..., 3])) > 0.5
    traj = torch.zeros(tracks.shape[0], T, 3)
    vis = torch.zeros(tracks.shape[0], T, dtype=torch.bool)
    dyn_votes = torch.zeros(tracks.shape[0])
    for t in range(T):
        uv = tracks[:, t, :2].float()
        traj[:, t], vis[:, t] = _lift(uv, visible[:, t], views, t)
        m, inside = _sample_nearest(views.motion_mask[t], uv)
        dyn_votes += torch.where(visible[:, t] & inside, m - 0.5, torch.zeros_like(m))
    keep = vis[:, canonical] & (dyn_votes > 0)
    return traj[keep], vis[keep]


def _trajectories_from_flow(extras, views, canonical: int, max_points: int,
                            gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Chain flow forwards and backwards from the canonical frame's dynamic pixels.

    flow_fwd[i] maps frame i -> i+1, flow_bwd[i] maps frame i+1 -> i. A chain stops (stays
    invisible) once it leaves the image or hits an invalid flow pixel. Returns (P,T,3), (P,T).
    """
    T = len(views)
    depth, mask = views.depth[canonical], views.motion_mask[canonical]
    pix = torch.nonzero((mask > 0.5) & (depth > 0))  # (M,2) rows v, u
    if pix.shape[0] > max_points:
        pix = pix[torch.randperm(pix.shape[0], generator=gen)[:max_points]]
    uv0 = pixel_centres(pix)
    traj = torch.zeros(uv0.shape[0], T, 3)
    vis = torch.zeros(uv0.shape[0], T, dtype=torch.bool)
    traj[:, canonical], vis[:, canonical] = _lift(uv0, torch.ones(uv0.shape[0], dtype=torch.bool), views, canonical)
    for step, flows, valids in ((1, extras.flow_fwd, extras.flow_fwd_valid), (-1, extras.flow_bwd, extras.flow_bwd_valid)):
        uv, alive = uv0.clone(), torch.ones(uv0.shape[0], dtype=torch.bool)
        t = canonical
        while 0 <= t + step < T:
            idx = t if step == 1 else t - 1  # flow pair index between frames t and t+step
            flow, inside = _sample_bilinear(flows[idx].float(), uv)
            alive = alive & inside
            if valids is not None:
                ok, _ = _sample_nearest(valids[idx], uv)
                alive = alive & ok.bool()
            uv = uv + flow
            t += step
            traj[:, t], vis[:, t] = _lift(uv, alive, views, t)
    return traj, vis


def _sample_bilinear(img: torch.Tensor, uv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Bilinear lookup of img (H,W,C) at image coordinates uv (M,2); returns (M,C), in-bounds (M,).

    grid_sample with align_corners=False puts -1 and 1 on the image's outer edges, which is the
    corner-origin convention of bench.method.geometry: u / W maps straight to [0, 1].
    """
    H, W = img.shape[:2]
    grid = torch.stack([uv[:, 0] / W * 2 - 1, uv[:, 1] / H * 2 - 1], dim=-1)
    out = nnf.grid_sample(img.permute(2, 0, 1)[None], grid[None, None], mode="bilinear",
                        padding_mode="border", align_corners=False)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] <= W) & (uv[:, 1] >= 0) & (uv[:, 1] <= H)
    return out[0, :, 0].T, inside
