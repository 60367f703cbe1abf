"""The Gaussian scene model: static and dynamic 3D Gaussians moved by shared motion bases.

Per-Gaussian tensors live in ``params`` (a dict of nn.Parameters so that densification can
replace them and patch the optimiser state); every tensor's first dimension is the Gaussian
count N:

- ``means`` (N,3) canonical positions, ``quats`` (N,4) wxyz unnormalised, ``log_scales`` (N,3),
  ``opacity_logits`` (N,), ``sh_dc`` (N,1,3), ``sh_rest`` (N,(D+1)^2-1,3) for max SH degree D,
  ``motion_coefs`` (N,B) softmax logits over the motion bases (unused for static Gaussians);
- ``flag`` (N,) float32 in {0,1}, 1 = dynamic. A plain tensor (not optimised), kept in the dict
  so that clone/split/prune carry it along with the other attributes.

Dynamic Gaussians move with ``bases`` (:class:`bench.method.motion.MotionBases`, one transform
per training frame, linear in between); static ones do not. Canonical space is the space of
frame ``canonical_frame``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bench.method.geometry import backproject
from bench.method.masks import mask_tolerance, moving_masks
from bench.method.motion import MotionBases, identity_coefficients, init_from_flow_or_tracks
from bench.method.rng import generator

SH_C0 = 0.28209479177387814  # Y_0^0; colour = SH_C0 * dc + 0.5 for degree 0


def rgb_to_sh_dc(rgb: torch.Tensor) -> torch.Tensor:
    """DC SH coefficient whose degree-0 colour is ``rgb``. (...,3) -> (...,3)."""
    return (rgb - 0.5) / SH_C0


def inverse_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.log(x / (1 - x))


@dataclass
class RenderResult:
    """One rendered view. rgb (H,W,3), depth (H,W,1) expected z, alpha (H,W,1), dyn_mask (H,W,1)
    soft dynamic mask; ``raw`` is the renderer's output (means2d etc. for densification)."""

    rgb: torch.Tensor
    depth: torch.Tensor
    alpha: torch.Tensor
    dyn_mask: torch.Tensor
    raw: object


class GaussianModel:
    """Static + dynamic Gaussians and their motion bases (see module docstring)."""

    def __init__(self, params: dict[str, torch.Tensor], bases: MotionBases, canonical_frame: int,
                 max_sh_degree: int):
        self.params = params
        self.bases = bases
        self.canonical_frame = canonical_frame
        self.max_sh_degree = max_sh_degree

    @property
    def num_gaussians(self) -> int:
        return self.params["means"].shape[0]

    @property
    def num_dynamic(self) -> int:
        return int(self.params["flag"].sum().item())

    def at_frame(self, frame: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Means (N,3) and quats (N,4) at training-frame time ``frame``; static ones unchanged."""
        p = self.params
        moving = p["flag"] > 0.5
        if not bool(moving.any()):
            return p["means"], p["quats"]
        return self.bases.apply(p["means"], p["quats"], p["motion_coefs"], frame, moving=moving)

    def colors(self, sh_degree: int) -> torch.Tensor:
        """SH coefficients (N,(d+1)^2,3) up to degree ``sh_degree``."""
        n = (sh_degree + 1) ** 2
        return torch.cat([self.params["sh_dc"], self.params["sh_rest"][:, : n - 1]], dim=1)

    def render(self, K: torch.Tensor, w2c: torch.Tensor, width: int, height: int, frame: float, *,
               sh_degree: int, backend: str = "torch") -> RenderResult:
        """Sharp render of one camera (K (3,3), w2c (4,4)) at training-frame time ``frame``."""
        from bench.render import rasterize

        means, quats = self.at_frame(frame)
        p = self.params
        out = rasterize(means, quats, p["log_scales"], p["opacity_logits"], self.colors(sh_degree),
                        w2c[None], K[None], width, height, sh_degree=sh_degree,
                        features=p["flag"][:, None], backend=backend)
        return RenderResult(rgb=out.rgb[0], depth=out.depth[0], alpha=out.alpha[0],
                            dyn_mask=out.features[0], raw=out)

    def to(self, device) -> "GaussianModel":
        """Move every tensor to ``device`` (before optimisers are built)."""
        self.params = {k: _leaf(v.to(device), k != "flag") for k, v in self.params.items()}
        self.bases = self.bases.to(device)
        return self

    # -- persistence -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """A snapshot: every tensor copied, so later optimiser steps (in place) do not reach it."""
        return {"params": {k: v.detach().clone() for k, v in self.params.items()},
                "bases": {k: v.detach().clone() for k, v in self.bases.state_dict().items()},
                "canonical_frame": self.canonical_frame,
                "max_sh_degree": self.max_sh_degree}

    @classmethod
    def from_state_dict(cls, state: dict) -> "GaussianModel":
        params = {k: _leaf(v, k != "flag") for k, v in state["params"].items()}
        B, T = state["bases"]["rot6d"].shape[:2]
        bases = MotionBases(B, T)
        bases.load_state_dict(state["bases"])
        return cls(params, bases, state["canonical_frame"], state["max_sh_degree"])


def _leaf(t: torch.Tensor, grad: bool) -> torch.Tensor:
    """A trainable nn.Parameter (densification's convention) or a plain tensor (the flag)."""
    t = t.detach().clone()
    return torch.nn.Parameter(t) if grad else t


def knn_scale(points: torch.Tensor, k: int = 3, chunk: int = 2048) -> torch.Tensor:
    """Root-mean-square distance (N,) of every point (N,3) to its k nearest other points."""
    n = points.shape[0]
    if n <= 1:
        return torch.full((n,), 0.01)
    k = min(k, n - 1)
    out = []
    for i in range(0, n, chunk):
        d = torch.cdist(points[i:i + chunk], points)
        d2 = d.topk(k + 1, largest=False).values[:, 1:] ** 2  # drop the point itself
        out.append(d2.mean(1).sqrt())
    return torch.cat(out).clamp_min(1e-7)


def _sample_pixels(views, frames: list[int], want_dynamic: bool, count: int, gen: torch.Generator,
                   moving: dict[int, torch.Tensor] | None = None):
    """Back-project up to ``count`` random pixels with valid depth of the chosen mask class.

    moving: {frame: (H,W) bool} the pixels that count as dynamic (bench.method.masks); default the
    motion mask. Static pixels are always those outside the motion mask: the mask pixels the check
    rejects are static surface that other frames show unmasked, where static points already come from.
    Returns points (M,3) and their colours (M,3) from the (blurry) training images.
    """
    cand = []  # (frame, flat pixel index) of every eligible pixel
    for t in frames:
        depth = views.depth[t]
        ok = depth > 0
        if views.motion_mask is not None:
            dyn = views.motion_mask[t] > 0.5
            if want_dynamic and moving is not None:
                dyn = moving[t]
            ok = ok & (dyn if want_dynamic else ~dyn)
        elif want_dynamic:
            ok = torch.zeros_like(ok)
        idx = torch.nonzero(ok.reshape(-1)).squeeze(1)
        cand.append(torch.stack([torch.full_like(idx, t), idx], dim=1))
    cand = torch.cat(cand) if cand else torch.zeros(0, 2, dtype=torch.long)
    if cand.shape[0] > count:
        cand = cand[torch.randperm(cand.shape[0], generator=gen)[:count]]
    points, colors = [], []
    for t in sorted(set(cand[:, 0].tolist())):
        pix = cand[cand[:, 0] == t, 1]
        mask = torch.zeros(views.depth[t].numel(), dtype=torch.bool)
        mask[pix] = True
        mask = mask.view_as(views.depth[t])
        c2w = torch.linalg.inv(views.cameras.w2c[t])
        points.append(backproject(views.depth[t], views.cameras.K[t], c2w, mask))
        img = views.images[t].reshape(-1, 3)
        flat = torch.nonzero(mask.reshape(-1)).squeeze(1)  # row-major order, as backproject
        colors.append(img[flat])
    if not points:
        return torch.zeros(0, 3), torch.zeros(0, 3)
    return torch.cat(points), torch.cat(colors)


def init_model(scene, cfg, seed: int) -> tuple[GaussianModel, str]:
    """Gaussians from the scene's training depth and motion masks; motion bases from tracks/flow.

    Static Gaussians: random static pixels of all training frames; dynamic Gaussians: the
    canonical (middle) frame's moving pixels (motion mask less the static surface found by
    bench.method.masks when ``model.dynamic_mask_check=depth``). Returns the model and one log line describing the
    motion-basis initialisation path.
    """
    from bench.errors import BenchError

    views = scene.train
    n_frames = len(views)
    if views.depth is None:
        raise BenchError(f"{scene.dataset}/{scene.name}: the method needs training depth to initialise")
    gen = generator(seed, "init")
    canonical = n_frames // 2
    s_pts, s_col = _sample_pixels(views, list(range(n_frames)), False, cfg.model.init_static_points, gen)
    moving = None
    if views.motion_mask is not None:  # mask pixels that show static surface at mid-exposure stay static
        moving = moving_masks(views, mask_tolerance(cfg), [canonical])
    d_pts, d_col = _sample_pixels(views, [canonical], True, cfg.model.init_dynamic_points, gen, moving)
    means = torch.cat([s_pts, d_pts])
    if means.shape[0] == 0:
        raise BenchError(f"{scene.dataset}/{scene.name}: no training pixel has valid depth")
    flag = torch.cat([torch.zeros(s_pts.shape[0]), torch.ones(d_pts.shape[0])])
    n = means.shape[0]
    scale = knn_scale(means) * cfg.model.init_scale_factor
    B = cfg.model.num_motion_bases
    bases = MotionBases(B, n_frames)
    coefs = torch.zeros(n, B)
    if cfg.model.motion_init == "identity":
        coefs[s_pts.shape[0]:] = identity_coefficients(d_pts, B, generator(seed, "motion_init"))
        path = "identity (model.motion_init=identity)"
    elif d_pts.shape[0] > 0:
        init = init_from_flow_or_tracks(bases, d_pts, scene, canonical, seed=seed)
        coefs[s_pts.shape[0]:] = init.coef_logits
        path = f"{init.path} ({init.detail})"
    else:
        path = "identity (no dynamic Gaussians)"
    D = cfg.model.sh_degree
    params = {
        "means": means,
        "quats": torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1),
        "log_scales": torch.log(scale)[:, None].repeat(1, 3),
        "opacity_logits": inverse_sigmoid(torch.full((n,), cfg.model.init_opacity)),
        "sh_dc": rgb_to_sh_dc(torch.cat([s_col, d_col]))[:, None, :],
        "sh_rest": torch.zeros(n, (D + 1) ** 2 - 1, 3),
        "motion_coefs": coefs,
        "flag": flag,
    }
    params = {k: _leaf(v.float(), k != "flag") for k, v in params.items()}
    return GaussianModel(params, bases, canonical, D), path


def scene_extent(scene, means: torch.Tensor) -> float:
    """The length scale of densification's size rules ("extent" in 3DGS).

    3DGS uses 1.1 x the radius of the camera centres, which for forward-facing video with little
    camera motion is far smaller than the scene and would prune every Gaussian wider than a
    pixel or two. [ours] The extent is the larger of that and the median distance of the initial
    Gaussians (means (N,3)) from the mean camera centre, i.e. the typical scene depth.
    """
    centres = scene.train.cameras.c2w[:, :3, 3].float()
    centre = centres.mean(0)
    cam_radius = (centres - centre).norm(dim=1).max().item() * 1.1
    depth = (means.detach().cpu() - centre).norm(dim=1).median().item() if means.shape[0] else 0.0
    extent = max(cam_radius, depth)
    return extent if math.isfinite(extent) and extent > 0 else 1.0
