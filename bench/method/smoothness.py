"""The motion smoothness losses (the paper's L_smo; docs/method.md §5).

Three terms, all zero for motion at constant velocity along a straight line (the second and the
first one) or perpendicular to the viewing ray (the third):

- SE(3) acceleration of the motion bases' per-frame 6D rotations and translations;
- track smoothness: the acceleration of the dynamic Gaussians' world means over frames t-1, t, t+1;
- "z-acceleration": the squared velocity of those means along the camera ray (despite its name,
  Shape-of-Motion's definition penalises depth velocity, not acceleration).

A term whose weight is 0 is neither computed nor returned, so default runs are unchanged.
"""

from __future__ import annotations

import torch

from bench.method.config import LossConfig
from bench.method.model import GaussianModel

# Shape-of-Motion's relative weights of the bases' rotation and translation acceleration.
SE3_ROT_WEIGHT = 1.0
SE3_TRANS_WEIGHT = 2.0


def second_difference(x: torch.Tensor) -> torch.Tensor:
    """Central second difference ``2 x_t - x_{t-1} - x_{t+1}`` over the interior frames.

    x: (...,T,D) with T >= 3. Returns (...,T-2,D).
    """
    return 2 * x[..., 1:-1, :] - x[..., :-2, :] - x[..., 2:, :]


def se3_acceleration(rot6d: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
    """Mean acceleration norm of the bases, rotations x1 plus translations x2 (a scalar).

    rot6d: (B,T,6), trans: (B,T,3), T >= 3.
    """
    rot = second_difference(rot6d).norm(dim=-1).mean()
    return SE3_ROT_WEIGHT * rot + SE3_TRANS_WEIGHT * second_difference(trans).norm(dim=-1).mean()


def track_smoothness(means: torch.Tensor) -> torch.Tensor:
    """Mean acceleration norm of M trajectories sampled at three consecutive frames.

    means: (M,3,3), axis 1 the frames t-1, t, t+1. Returns a scalar.
    """
    return second_difference(means).norm(dim=-1).mean()


def ray_velocity(means: torch.Tensor, centre: torch.Tensor) -> torch.Tensor:
    """mean((mu_t - mu_{t-1}) . ray)^2 + mean((mu_{t+1} - mu_t) . ray)^2, a scalar.

    means: (M,3,3), axis 1 the frames t-1, t, t+1; centre: (3,) camera centre. ``ray`` is the unit
    direction from the centre to mu_t, held constant: the loss is about moving along the ray, and
    a gradient through the direction would instead reward turning the ray.
    """
    ray = torch.nn.functional.normalize(means[:, 1] - centre, dim=-1).detach()
    before = ((means[:, 1] - means[:, 0]) * ray).sum(-1)
    after = ((means[:, 2] - means[:, 1]) * ray).sum(-1)
    return (before ** 2).mean() + (after ** 2).mean()


def neighbour_frames(frame: int, num_frames: int) -> tuple[int, int, int]:
    """Frames (c-1, c, c+1) around ``frame``; at the first and last frame the triple moves inward
    (c = clamp(frame, 1, T-2)) so that it stays a true second difference. Needs T >= 3."""
    c = min(max(frame, 1), num_frames - 2)
    return c - 1, c, c + 1


def dynamic_means_at(model: GaussianModel, frames: tuple[int, ...]) -> torch.Tensor:
    """World means (M,F,3) of the model's M dynamic Gaussians at each of F integer frames."""
    p = model.params
    dyn = torch.nonzero(p["flag"] > 0.5).squeeze(1)
    means, coefs = p["means"][dyn], p["motion_coefs"][dyn]
    out = []
    for f in frames:
        R, t = model.bases.transforms(coefs, f)
        out.append((R @ means[:, :, None]).squeeze(-1) + t)
    return torch.stack(out, dim=1)


def smoothness_terms(lw: LossConfig, model: GaussianModel, frame: int, w2c: torch.Tensor) -> dict[str, torch.Tensor]:
    """The weighted smoothness terms of a step at training frame ``frame`` seen by camera ``w2c`` (4,4).

    Keys ``se3_smooth``, ``track_smooth``, ``z_acc``; only those with a positive weight appear.
    With fewer than 3 frames there is no second difference and nothing appears; the two track
    terms also need at least one dynamic Gaussian.
    """
    terms: dict[str, torch.Tensor] = {}
    bases = model.bases
    if bases.num_frames < 3:
        return terms
    if lw.se3_smoothness > 0:
        terms["se3_smooth"] = lw.se3_smoothness * se3_acceleration(bases.rot6d, bases.trans)
    if (lw.track_smoothness > 0 or lw.z_acceleration > 0) and model.num_dynamic > 0:
        means = dynamic_means_at(model, neighbour_frames(frame, bases.num_frames))
        if lw.track_smoothness > 0:
            terms["track_smooth"] = lw.track_smoothness * track_smoothness(means)
        if lw.z_acceleration > 0:
            centre = -w2c[:3, :3].T @ w2c[:3, 3]
            terms["z_acc"] = lw.z_acceleration * ray_velocity(means, centre)
    return terms
