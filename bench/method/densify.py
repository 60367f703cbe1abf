"""Adaptive density control (3DGS) and dynamic Gaussian densification (DGD), docs/method.md §6.

The functions below edit a parameter dict in place; :class:`DensifyStrategy` drives them over a run.

Gaussians live in a dict ``params`` of per-Gaussian tensors (name -> (N,...)), all in the same
order. Trainable entries are ``nn.Parameter`` s, each the only parameter of a param group of one
``torch.optim.Adam`` whose group carries ``"name": <dict key>``; other entries (e.g. the bool
dynamic flag) are plain tensors that are edited alongside. Every edit replaces the parameters by
new ones and moves the Adam moments with them: rows kept on prune keep their moments, new rows
start with zero moments (as in 3DGS). Children of clone/split inherit every attribute (flag,
motion coefficients, colour, ...).

Required keys (the renderer's argument names): ``means`` (N,3), ``quats`` (N,4),
``log_scales`` (N,3), ``opacity_logits`` (N,).

Gradient statistics follow gsplat's default strategy (read as a spec): the pixel-space gradient
of each visible Gaussian's 2D mean is rescaled to normalised device units (x W/2, x H/2) and
multiplied by the number of cameras of the render, its norm is summed per Gaussian together
with a visibility count, and the mean over the window decides growth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from bench.method.config import MethodConfig
from bench.method.geometry import pixel_centres, quat_to_matrix, unproject
from bench.method.masks import mask_tolerance, moving_masks
from bench.method.model import rgb_to_sh_dc
from bench.method.motion import MotionBases
from bench.method.rng import generator

REQUIRED = ("means", "quats", "log_scales", "opacity_logits")
Params = dict[str, torch.Tensor]


def check_params(params: Params, optimizer: torch.optim.Optimizer) -> None:
    """Raise ValueError if the dict and the optimizer do not follow the conventions above."""
    missing = [k for k in REQUIRED if k not in params]
    if missing:
        raise ValueError(f"densification needs per-Gaussian keys {missing}")
    n = {k: v.shape[0] for k, v in params.items()}
    if len(set(n.values())) != 1:
        raise ValueError(f"per-Gaussian tensors disagree on N: {n}")
    for group in optimizer.param_groups:
        name = group.get("name")
        if name in params and (len(group["params"]) != 1 or group["params"][0] is not params[name]):
            raise ValueError(f"optimizer group {name!r} must hold exactly params[{name!r}]")


def new_state(num_gaussians: int, device=None) -> dict[str, torch.Tensor]:
    """Empty gradient statistics: grad2d (N,) summed normalised gradient norms, count (N,) visibility."""
    return {"grad2d": torch.zeros(num_gaussians, device=device), "count": torch.zeros(num_gaussians, device=device)}


@torch.no_grad()
def accumulate_gradients(state: dict[str, torch.Tensor], means2d_grad: torch.Tensor, radii: torch.Tensor,
                         width: int, height: int) -> None:
    """Add one step's view-space gradients to ``state`` (in place).

    means2d_grad: (C,N,2) gradient of the pixel-space 2D means (N in the params' order);
    radii: (C,N,2) or (C,N); a Gaussian counts for a camera when all its radii are > 0.
    """
    C = means2d_grad.shape[0]
    grads = means2d_grad.clone()
    grads[..., 0] *= width / 2.0 * C
    grads[..., 1] *= height / 2.0 * C
    visible = radii > 0
    if visible.dim() == 3:
        visible = visible.all(dim=-1)
    ids = torch.nonzero(visible)[:, 1]
    state["grad2d"].index_add_(0, ids, grads[visible].norm(dim=-1).to(state["grad2d"].dtype))
    state["count"].index_add_(0, ids, torch.ones_like(ids, dtype=state["count"].dtype))


def _edit(params: Params, optimizer: torch.optim.Optimizer, value_fn: Callable[[str, torch.Tensor], torch.Tensor],
          moment_fn: Callable[[torch.Tensor], torch.Tensor], names=None) -> None:
    """Replace per-Gaussian tensors (all, or ``names``) by ``value_fn(name, old)``, Adam moments by ``moment_fn``."""
    groups = {g.get("name"): g for g in optimizer.param_groups}
    for name in list(params if names is None else names):
        old = params[name]
        new_value = value_fn(name, old.detach())
        if not isinstance(old, nn.Parameter):
            params[name] = new_value
            continue
        new = nn.Parameter(new_value, requires_grad=old.requires_grad)
        group = groups.get(name)
        if group is not None:
            st = optimizer.state.pop(old, None)
            if st:
                for key, v in st.items():
                    if torch.is_tensor(v) and v.dim() > 0 and v.shape[0] == old.shape[0]:
                        st[key] = moment_fn(v)
                optimizer.state[new] = st
            group["params"][0] = new
        params[name] = new


def keep_gaussians(params: Params, optimizer: torch.optim.Optimizer, state: dict | None, keep: torch.Tensor) -> None:
    """Keep the rows where ``keep`` (N,) bool is True (moments and statistics follow)."""
    _edit(params, optimizer, lambda _, v: v[keep], lambda m: m[keep])
    if state is not None:
        for k in ("grad2d", "count"):
            state[k] = state[k][keep]


def append_gaussians(params: Params, optimizer: torch.optim.Optimizer, state: dict | None, rows: Params) -> None:
    """Append M new Gaussians; ``rows`` must hold an (M,...) tensor for every key of ``params``."""
    missing = sorted(set(params) - set(rows))
    if missing:
        raise ValueError(f"new Gaussians lack attributes {missing}")
    m = rows["means"].shape[0]

    def grow(name, v):
        return torch.cat([v, rows[name].to(device=v.device, dtype=v.dtype)])

    _edit(params, optimizer, grow, lambda mom: torch.cat([mom, mom.new_zeros((m,) + mom.shape[1:])]))
    if state is not None:
        for k in ("grad2d", "count"):
            state[k] = torch.cat([state[k], state[k].new_zeros(m)])


@torch.no_grad()
def split_children(params: Params, select: torch.Tensor, split_factor: float = 1.6,
                   generator: torch.Generator | None = None) -> Params:
    """Two children per selected Gaussian: means sampled from the parent's Gaussian, scales / split_factor.

    select: (N,) bool. Returns rows (2S,...) for every key; other attributes are copied.
    """
    rows = {k: v.detach()[select].repeat((2,) + (1,) * (v.dim() - 1)) for k, v in params.items()}
    scales = rows["log_scales"].exp()
    noise = torch.randn(scales.shape, generator=generator, device=generator.device if generator else scales.device)
    offset = (quat_to_matrix(rows["quats"]) @ (scales * noise.to(scales.device))[..., None]).squeeze(-1)
    rows["means"] = rows["means"] + offset
    rows["log_scales"] = rows["log_scales"] - math.log(split_factor)
    return rows


@torch.no_grad()
def densify_and_prune(params: Params, optimizer: torch.optim.Optimizer, state: dict[str, torch.Tensor], *,
                      scene_extent: float, grad_threshold: float = 2e-4, percent_dense: float = 0.01,
                      prune_opacity: float = 0.005, prune_big: bool = False, max_world_scale: float = 0.1,
                      split_factor: float = 1.6, generator: torch.Generator | None = None) -> dict[str, int]:
    """One round of clone / split / prune; resets the gradient statistics.

    Gaussians whose mean normalised gradient exceeds ``grad_threshold`` grow: clone when their
    largest scale is <= percent_dense * extent, else split into two with scale / split_factor
    (0.8 * 2). Then prune opacity < ``prune_opacity`` and, when ``prune_big`` (after the first
    opacity reset), largest scale > max_world_scale * extent. Clones are not split in the same
    round. Returns counts {"cloned", "split", "pruned", "total"}.
    """
    check_params(params, optimizer)
    grads = state["grad2d"] / state["count"].clamp_min(1)
    high = grads > grad_threshold
    small = params["log_scales"].exp().max(dim=-1).values <= percent_dense * scene_extent
    clone, split = high & small, high & ~small
    if clone.any():
        append_gaussians(params, optimizer, state, {k: v.detach()[clone] for k, v in params.items()})
    n_clone = int(clone.sum())
    split = torch.cat([split, split.new_zeros(n_clone)])
    n_split = int(split.sum())
    if n_split:
        append_gaussians(params, optimizer, state, split_children(params, split, split_factor, generator))
        keep_gaussians(params, optimizer, state, torch.cat([~split, split.new_ones(2 * n_split)]))
    prune = torch.sigmoid(params["opacity_logits"].reshape(-1)) < prune_opacity
    if prune_big:
        prune |= params["log_scales"].exp().max(dim=-1).values > max_world_scale * scene_extent
    if prune.any():
        keep_gaussians(params, optimizer, state, ~prune)
    n = params["means"].shape[0]
    state.update(new_state(n, params["means"].device))
    return {"cloned": n_clone, "split": n_split, "pruned": int(prune.sum()), "total": n}


@torch.no_grad()
def reset_opacity(params: Params, optimizer: torch.optim.Optimizer, value: float = 0.01) -> None:
    """Clamp every opacity to at most ``value`` and clear its Adam moments (3DGS opacity reset)."""
    cap = math.log(value / (1 - value))
    _edit(params, optimizer, lambda _, v: v.clamp(max=cap), torch.zeros_like, names=("opacity_logits",))


@dataclass(frozen=True)
class DGDRules:
    """How DGD samples and shapes its Gaussians (docs/method.md §6; config keys ``densify.dgd_*``).

    scale: "pixel" (the pixel's footprint z/f times the current dynamic Gaussians' median size in
    pixels in that view: a new Gaussian stands for the one pixel it was lifted from) or "spacing"
    (this project's earlier rule: footprint times the mean spacing of the sampled pixels).
    sampling: "missing" (pixels weighted by 1 - the accumulated alpha of the current dynamic
    Gaussians rendered in the view, as many samples as that missing alpha sums to) or "uniform".
    opacity: a fixed opacity, or None for the median opacity of the current dynamic Gaussians.
    The field defaults are the earlier rules; the configuration's (:func:`dgd_rules`) are pixel,
    missing and the median opacity.
    """

    scale: str = "spacing"
    sampling: str = "uniform"
    opacity: float | None = 0.7


@torch.no_grad()
def dynamic_gaussian_densification(views, bases: MotionBases, dyn_means: torch.Tensor, dyn_coef_logits: torch.Tensor,
                                   *, max_points_per_view: int = 1000, rules: DGDRules = DGDRules(),
                                   dyn_shape: Params | None = None, moving: dict[int, torch.Tensor] | None = None,
                                   generator: torch.Generator | None = None, backend: str = "torch") -> Params:
    """New dynamic Gaussians in under-reconstructed moving regions (DGD).

    views: ``bench.data.scene.Views`` of the training frames (depth and motion masks required).
    dyn_means (D,3) canonical means and dyn_coef_logits (D,B) of the current dynamic Gaussians;
    dyn_shape: their ``quats`` (D,4), ``log_scales`` (D,3), ``opacity_logits`` (D,), needed by every
    rule but the earlier ones (spacing, uniform, fixed opacity). moving: {view: (H,W) bool} the pixels
    that count as moving (bench.method.masks), default the motion mask with valid depth. backend: the
    renderer of the ``missing`` rule's alpha render, the run's own ("torch" | "gsplat").
    For every view, up to ``max_points_per_view`` moving pixels are drawn (``rules.sampling``) and
    back-projected; each takes the transform (R, t) at that frame of its nearest moved dynamic
    Gaussian G' and goes to canonical space: mu0 = R^T (mu_t - t). Returns rows (M,...):
    ``means`` (canonical), ``quats`` (identity), ``log_scales`` (isotropic, ``rules.scale``),
    ``opacity_logits``, ``rgb`` (colour of the pixel in the frame), ``coef_logits`` (copied from
    G'), ``frame`` (source view). The caller adds its own attributes (SH layout, dynamic flag) and
    calls ``append_gaussians``.
    """
    device = dyn_means.device
    if views.depth is None or views.motion_mask is None:
        raise ValueError("dynamic Gaussian densification needs training depth and motion masks")
    if (rules.scale == "pixel" or rules.sampling == "missing" or rules.opacity is None) and dyn_shape is None:
        raise ValueError(f"DGD rules {rules} need the dynamic Gaussians' shape (dyn_shape)")
    dyn = {"means": dyn_means, "coef_logits": dyn_coef_logits, **(dyn_shape or {})}
    out: dict[str, list[torch.Tensor]] = {k: [] for k in ("means", "log_scales", "rgb", "coef_logits", "frame")}
    if dyn_means.shape[0] > 0:
        c2w_all = torch.linalg.inv(views.cameras.w2c.double()).float()
        for i in range(len(views)):
            pix = _moving_pixels(views, i, moving, device)
            if pix.shape[0]:
                _dgd_view(views, i, pix, c2w_all[i], bases, dyn, rules, max_points_per_view, generator, out, backend)
    return _dgd_rows(out, _dgd_opacity(rules, dyn), dyn_coef_logits.shape[1], device)


def _moving_pixels(views, i: int, moving: dict[int, torch.Tensor] | None, device) -> torch.Tensor:
    """(P,2) (row, column) of view i's moving pixels with valid depth."""
    depth = views.depth[i].to(device)
    ok = (views.motion_mask[i].to(device) > 0.5) if moving is None else moving[i].to(device)
    return torch.nonzero(ok & (depth > 0))


def _dgd_opacity(rules: DGDRules, dyn: Params) -> float:
    """The new Gaussians' opacity: fixed, or the current dynamic Gaussians' median (0.5 if there are none)."""
    if rules.opacity is not None:
        return rules.opacity
    logits = dyn["opacity_logits"]
    return float(torch.sigmoid(logits).median()) if logits.numel() else 0.5


def _dgd_rows(out: dict, opacity: float, B: int, device) -> Params:
    """Concatenate the per-view rows of ``out`` into DGD's result (see dynamic_gaussian_densification)."""
    cat = {k: torch.cat(v).to(device) if v else None for k, v in out.items()}
    m = 0 if cat["means"] is None else cat["means"].shape[0]
    opacity = min(max(opacity, 1e-4), 1 - 1e-4)
    return {
        "means": cat["means"] if m else torch.zeros(0, 3, device=device),
        "quats": torch.tensor([1.0, 0, 0, 0], device=device).repeat(m, 1),
        "log_scales": cat["log_scales"] if m else torch.zeros(0, 3, device=device),
        "opacity_logits": torch.full((m,), math.log(opacity / (1 - opacity)), device=device),
        "rgb": cat["rgb"] if m else torch.zeros(0, 3, device=device),
        "coef_logits": cat["coef_logits"] if m else torch.zeros(0, B, device=device),
        "frame": cat["frame"] if m else torch.zeros(0, dtype=torch.long, device=device),
    }


def _dgd_view(views, i: int, pix: torch.Tensor, c2w: torch.Tensor, bases: MotionBases, dyn: Params,
              rules: DGDRules, max_points: int, generator, out: dict, backend: str) -> None:
    """DGD for training view i and its moving pixels ``pix`` (P,2); appends its rows to ``out``."""
    device = pix.device
    frame = float(views.frame_index[i])
    K, w2c = views.cameras.K[i].to(device).float(), views.cameras.w2c[i].to(device).float()
    n_all = pix.shape[0]
    if rules.sampling == "missing":
        alpha = _dynamic_alpha(dyn, bases, frame, K, w2c, views.cameras.width, views.cameras.height, backend)
        pick = _sample_missing(1 - alpha[pix[:, 0], pix[:, 1]], max_points, generator)
    else:
        pick = _sample_uniform(n_all, max_points, generator)
    if pick.numel() == 0:
        return
    pix = pix[pick.to(device)]
    z = views.depth[i].to(device)[pix[:, 0], pix[:, 1]]
    world = unproject(pixel_centres(pix), z, K, c2w.to(device))
    R, t = bases.transforms(dyn["coef_logits"], frame)
    moved = (R @ dyn["means"][:, :, None]).squeeze(-1) + t
    near = _nearest(world, moved)
    canonical = (R[near].transpose(1, 2) @ (world - t[near])[:, :, None]).squeeze(-1)
    if rules.scale == "pixel":
        size_px = _median_size_px(moved, dyn["log_scales"], K, w2c)
    else:  # sampled points are this many pixels apart on average
        size_px = math.sqrt(n_all / pix.shape[0])
    scale = z / K[0, 0] * size_px
    out["means"].append(canonical)
    out["log_scales"].append(scale.clamp_min(1e-8).log()[:, None].expand(-1, 3))
    out["rgb"].append(views.images[i].to(device)[pix[:, 0], pix[:, 1], :3])
    out["coef_logits"].append(dyn["coef_logits"][near])
    out["frame"].append(torch.full((pix.shape[0],), i, dtype=torch.long, device=device))


def _sample_uniform(n: int, max_points: int, generator) -> torch.Tensor:
    """Indices of up to ``max_points`` of ``n`` candidates, uniformly without replacement (all if n fits)."""
    if n <= max_points:
        return torch.arange(n)
    return torch.randperm(n, generator=generator, device=generator.device if generator else None)[:max_points]


def _sample_missing(weights: torch.Tensor, max_points: int, generator) -> torch.Tensor:
    """Indices drawn without replacement with probability proportional to ``weights`` (P,) in [0, 1].

    The count is the weights' sum (rounded), capped by ``max_points`` and the non-zero weights: each
    new Gaussian stands for about one pixel's worth of missing alpha, so a view whose moving region
    the dynamic Gaussians already cover adds (nearly) nothing.
    """
    w = weights.clamp(0, 1).double().cpu()
    n = min(max_points, int(float(w.sum()) + 0.5), int((w > 0).sum()))
    if n <= 0:
        return torch.zeros(0, dtype=torch.long)
    return torch.multinomial(w, n, replacement=False, generator=generator)


def _nearest(points: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """(M,) index of the nearest of ``ref`` (D,3) to each of ``points`` (M,3), in chunks."""
    rows = max(1, 2 ** 24 // ref.shape[0])  # bound the distance matrix to ~64 MB
    return torch.cat([torch.cdist(points[j:j + rows], ref).argmin(1) for j in range(0, points.shape[0], rows)])


def _dynamic_alpha(dyn: Params, bases: MotionBases, frame: float, K: torch.Tensor, w2c: torch.Tensor,
                   width: int, height: int, backend: str) -> torch.Tensor:
    """(H,W) accumulated alpha of the dynamic Gaussians alone, moved to ``frame``, in camera (K, w2c),
    rendered by the run's own renderer backend."""
    from bench.render import rasterize

    means, quats = bases.apply(dyn["means"], dyn["quats"], dyn["coef_logits"], frame)
    colours = torch.zeros(means.shape[0], 3, device=means.device)
    out = rasterize(means, quats, dyn["log_scales"], dyn["opacity_logits"], colours, w2c[None], K[None],
                    width, height, backend=backend)
    return out.alpha[0, ..., 0]


def _median_size_px(moved: torch.Tensor, log_scales: torch.Tensor, K: torch.Tensor, w2c: torch.Tensor) -> float:
    """Median size in pixels (geometric-mean scale x f / z) of the moved dynamic Gaussians (D,3) in front
    of the camera; 1 px when none is."""
    z = moved @ w2c[2, :3] + w2c[2, 3]
    front = z > 1e-6
    if not front.any():
        return 1.0
    size = log_scales[front].mean(-1).exp() * K[0, 0] / z[front]
    return float(size.median())


class DensifyStrategy:
    """Adaptive density control and DGD over one run: owns the gradient statistics, the scene
    extent, the growth threshold and the schedule (docs/method.md §6).

    The trainer calls :meth:`step_post_backward` after each backward pass (statistics) and
    :meth:`step_post_optimizer` after the optimiser steps (clone/split/prune, opacity reset, DGD),
    as gsplat's strategies are driven. ``state_dict`` holds everything a resume needs; the split
    noise and DGD's point sampling of a step come from generators seeded by (seed, purpose, step)
    (bench.method.rng), which need no saving and are the same in every variant of one seed.
    """

    def __init__(self, cfg: MethodConfig, num_gaussians: int, device, extent: float, seed: int,
                 log: Callable[[str], None], backend: str = "torch"):
        self.cfg, self.seed, self.log, self.backend = cfg, seed, log, backend
        self.stats = new_state(num_gaussians, device)
        self.extent = extent
        self.initial = num_gaussians
        # Gaussians added (clone, split: net one each, DGD) and pruned so far; curves.csv records them.
        # DGD's share is kept apart: the cap bounds adaptive density control only, so that `full` and
        # `no_densification` grow the same and differ by DGD's Gaussians alone.
        self.totals = {"grown": 0, "pruned": 0, "dgd": 0}

    def state_dict(self) -> dict:
        return {"stats": {k: v.clone() for k, v in self.stats.items()}, "extent": self.extent,
                "initial": self.initial, "totals": dict(self.totals)}

    def load_state_dict(self, state: dict) -> None:
        self.stats = {k: v.clone() for k, v in state["stats"].items()}
        self.extent = state["extent"]
        self.initial = state["initial"]
        self.totals = dict(state["totals"])

    def step_post_backward(self, step: int, raw, width: int, height: int) -> None:
        """Accumulate step ``step``'s view-space gradients (``raw``: the renderer's RenderOutput)
        while adaptive density control runs."""
        d = self.cfg.densify
        if not d.enabled or step >= self.cfg.at(d.end_frac) or raw.means2d.grad is None:
            return
        accumulate_gradients(self.stats, raw.means2d.grad, raw.radii, width, height)

    def step_post_optimizer(self, model, optimizer: torch.optim.Optimizer, views, done: int) -> None:
        """Clone/split/prune, opacity reset and DGD due after ``done`` completed steps.

        model: bench.method.model.GaussianModel; optimizer: its Gaussians' Adam; views: the
        training ``Views`` (depth and motion masks, for DGD).
        """
        cfg, d = self.cfg, self.cfg.densify
        params = model.params
        if d.enabled and cfg.at(d.start_frac) < done <= cfg.at(d.end_frac):
            if done % cfg.every(d.every_frac) == 0:
                counts = densify_and_prune(params, optimizer, self.stats, scene_extent=self.extent,
                                           grad_threshold=self.growth_threshold(model.num_gaussians, done),
                                           percent_dense=d.percent_dense, prune_opacity=d.prune_opacity,
                                           prune_big=done > cfg.at(d.prune_big_after_frac),
                                           max_world_scale=d.prune_scale_frac_extent,
                                           generator=generator(self.seed, "split", done))
                self.totals["grown"] += counts["cloned"] + counts["split"]
                self.totals["pruned"] += counts["pruned"]
            if done % cfg.every(d.opacity_reset_every_frac) == 0:
                reset_opacity(params, optimizer)
        if d.dgd and done == max(1, cfg.at(d.dgd_at_frac)):
            self._dgd(model, optimizer, views, done)

    def budget(self, done: int) -> int:
        """The count growth may reach after ``done`` steps (0 = unlimited).

        ``densify.max_gaussians`` throughout with ``cap_schedule=constant``; with ``linear`` the cap
        rises from the initial count to ``max_gaussians`` over the densification window, so that
        growth is spread over the window instead of filling the cap in its first rounds.
        """
        d, cfg = self.cfg.densify, self.cfg
        if d.max_gaussians <= 0 or d.cap_schedule == "constant":
            return d.max_gaussians
        start, end = cfg.at(d.start_frac), cfg.at(d.end_frac)
        progress = min(1.0, max(0.0, (done - start) / max(1, end - start)))
        return int(self.initial + progress * max(0, d.max_gaussians - self.initial))

    def growth_threshold(self, num_gaussians: int, done: int) -> float:
        """The gradient threshold, raised so that growth cannot take the count without DGD's Gaussians
        beyond :meth:`budget` after ``done`` steps."""
        d = self.cfg.densify
        cap = self.budget(done)
        if cap <= 0:
            return d.grad_threshold
        grads = self.stats["grad2d"] / self.stats["count"].clamp_min(1)
        room = cap - (num_gaussians - self.totals["dgd"])
        if room <= 0:
            return math.inf
        if int((grads > d.grad_threshold).sum()) <= room:
            return d.grad_threshold
        # Only the `room` largest gradients grow (each grown Gaussian adds one net).
        return max(d.grad_threshold, float(grads.topk(room + 1).values[-1]))

    def _dgd(self, model, optimizer: torch.optim.Optimizer, views, done: int) -> None:
        """Dynamic Gaussian densification: new dynamic Gaussians copy their neighbour's coefficients."""
        rows = dgd_for_model(model, views, self.cfg, generator(self.seed, "dgd", done), self.backend)
        m = rows["means"].shape[0]
        if m == 0:
            self.log(f"DGD at step {done}: no dynamic pixel missing, no dynamic pixel with depth or no dynamic "
                     f"Gaussian; nothing added")
            return
        append_gaussians(model.params, optimizer, self.stats, dgd_attributes(rows, model.params))
        self.totals["grown"] += m
        self.totals["dgd"] += m
        size = rows["log_scales"][:, 0].exp().median()
        self.log(f"DGD at step {done}: added {m} dynamic Gaussians (median scale {float(size):.4g}, opacity "
                 f"{float(torch.sigmoid(rows['opacity_logits'][0])):.3f}; total {model.num_gaussians})")


def dgd_rules(cfg: MethodConfig) -> DGDRules:
    """The DGD rules of a configuration (``densify.dgd_scale``, ``dgd_sampling``, ``dgd_opacity_rule``)."""
    d = cfg.densify
    return DGDRules(scale=d.dgd_scale, sampling=d.dgd_sampling,
                    opacity=d.dgd_opacity if d.dgd_opacity_rule == "fixed" else None)


def dgd_for_model(model, views, cfg: MethodConfig, gen: torch.Generator | None, backend: str = "torch") -> Params:
    """DGD's new rows (see :func:`dynamic_gaussian_densification`) for ``model`` (GaussianModel) and the
    training ``views`` under ``cfg``: its rules and the moving-pixel check of bench.method.masks."""
    p = model.params
    dyn = p["flag"] > 0.5
    shape = {k: p[k].detach()[dyn] for k in ("quats", "log_scales", "opacity_logits")}
    moving = None
    if views.depth is not None and views.motion_mask is not None:
        moving = moving_masks(views, mask_tolerance(cfg))
    return dynamic_gaussian_densification(views, model.bases, p["means"].detach()[dyn], p["motion_coefs"].detach()[dyn],
                                          max_points_per_view=cfg.densify.dgd_points_per_view, rules=dgd_rules(cfg),
                                          dyn_shape=shape, moving=moving, generator=gen, backend=backend)


def dgd_attributes(rows: Params, params: Params) -> Params:
    """Every per-Gaussian attribute of DGD's new ``rows`` in the layout of the model's ``params``."""
    m, dev = rows["means"].shape[0], params["means"].device
    return {
        "means": rows["means"], "quats": rows["quats"], "log_scales": rows["log_scales"],
        "opacity_logits": rows["opacity_logits"], "sh_dc": rgb_to_sh_dc(rows["rgb"])[:, None, :],
        "sh_rest": torch.zeros((m,) + tuple(params["sh_rest"].shape[1:]), device=dev),
        "motion_coefs": rows["coef_logits"], "flag": torch.ones(m, device=dev),
    }
