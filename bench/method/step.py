"""One training step's view and losses: which view step s trains on, and the loss terms of its render.

The view of step ``s`` is drawn from a generator seeded by (seed, purpose, s) (bench.method.rng), so a
resumed run draws the same views as an uninterrupted one, and two variants with the same seed draw
the same training frame on every step where both train on one.
"""

from __future__ import annotations

from typing import Any

import torch

from bench.method import losses
from bench.method.config import MethodConfig
from bench.method.kernels import blur_formation, has_free_centre
from bench.method.model import RenderResult
from bench.method.rng import generator
from bench.method.run_state import Run, SceneTensors
from bench.method.smoothness import smoothness_terms


def step_generator(seed: int, step: int, purpose: str = "view") -> torch.Generator:
    """The generator that draws step ``step``'s view: a pure function of (seed, purpose, step).

    Training frames and virtual views have separate streams ("view", "virtual_view"), so a variant
    without virtual views still draws the same training frames as one with them.
    """
    return generator(seed, purpose, step)


def torch_randint(n: int, gen: torch.Generator) -> int:
    return int(torch.randint(n, (1,), generator=gen).item())


def virtual_slot(cfg: MethodConfig, s: int) -> bool:
    """Is step ``s`` one that trains on a virtual view when there are any (every n-th in the window)?"""
    u = cfg.unseen
    return s % u.every == 0 and cfg.at(u.start_frac) <= s < max(cfg.at(u.end_frac), 1)


def virtual_possible(data: SceneTensors) -> bool:
    """Can the scene have virtual views (bench.method.train builds them only with masks and >= 2 frames)?"""
    return data.mask is not None and data.n >= 2


def uses_virtual(run: Run, s: int) -> bool:
    return run.virtual is not None and virtual_slot(run.cfg, s)


def skips(run: Run, s: int) -> bool:
    """Does step ``s`` make no update? With ``unseen.skip_virtual_steps`` (and no virtual views), the
    steps a run with virtual views would spend on them: the control takes exactly its real steps."""
    u = run.cfg.unseen
    return u.skip_virtual_steps and not u.enabled and virtual_possible(run.data) and virtual_slot(run.cfg, s)


def step_counts(cfg: MethodConfig, virtual_views: bool) -> dict[str, int]:
    """How many of the run's steps train on a real frame, on a virtual view, or are skipped.

    virtual_views: whether the scene allows virtual views (:func:`virtual_possible`).
    """
    slots = sum(virtual_slot(cfg, s) for s in range(cfg.train.steps)) if virtual_views else 0
    virtual = slots if cfg.unseen.enabled else 0
    skipped = slots if (cfg.unseen.skip_virtual_steps and not cfg.unseen.enabled) else 0
    return {"real": cfg.train.steps - virtual - skipped, "virtual": virtual, "skipped": skipped}


def target(run: Run, s: int) -> dict[str, Any]:
    """The view step ``s`` trains on: a training frame, or every n-th step a virtual view.

    Returns image (H,W,3), mask (H,W) or None, depth (H,W) or None, K, w2c, frame (int), virtual,
    and for a training frame its view index ``view``.
    """
    seed, d = run.record["seed"], run.data
    if uses_virtual(run, s):
        v = run.virtual
        j = torch_randint(len(v), step_generator(seed, s, "virtual_view"))
        return {"image": v.images[j], "mask": v.motion_mask[j], "depth": None, "K": v.K[j], "w2c": v.w2c[j],
                "frame": int(d.frame[int(v.source_frame[j])]), "virtual": True}
    i = torch_randint(d.n, step_generator(seed, s))
    return train_view(run, i, d.mask is not None, with_depth=True)


def train_view(run: Run, i: int, with_mask: bool, with_depth: bool) -> dict[str, Any]:
    """Training frame ``i`` as a target (see :func:`target`)."""
    d = run.data
    return {"image": d.images[i], "mask": d.mask[i] if with_mask else None,
            "depth": d.depth[i] if with_depth else None, "K": d.K[i], "w2c": d.w2c[i],
            "frame": int(d.frame[i]), "virtual": False, "view": i}


def sh_degree(cfg: MethodConfig, s: int) -> int:
    return min(cfg.model.sh_degree, s // cfg.every(cfg.model.sh_increase_every_frac))


def chw(x: torch.Tensor) -> torch.Tensor:
    """(H,W,C) -> (1,C,H,W)."""
    return x.permute(2, 0, 1)[None]


def forward(run: Run, s: int, t: dict[str, Any]) -> tuple[dict[str, torch.Tensor], RenderResult, torch.Tensor,
                                                          tuple[torch.Tensor, torch.Tensor] | None]:
    """Render the target's camera and compute every loss term of step ``s``.

    Returns (terms: name -> weighted scalar tensor, render result, prediction (1,3,H,W),
    (kernels (1,K²,H,W), mask (1,1,H,W)) or None).
    """
    cfg, d = run.cfg, run.data
    r = run.model.render(t["K"], t["w2c"], d.W, d.H, t["frame"], sh_degree=sh_degree(cfg, s),
                         backend=run.backend)
    sharp = chw(r.rgb)
    gt = chw(t["image"])
    blur = None
    pred = sharp
    if run.bpnet is not None and s >= cfg.at(cfg.blur.start_frac):
        frame = torch.tensor([t["frame"]], device=run.device)
        kernels, mask = run.bpnet(frame, sharp, chw(r.depth), chw(r.dyn_mask))
        pred = blur_formation(sharp, kernels, mask)
        blur = (kernels, mask)
    elif run.true_blur is not None and not t["virtual"]:  # virtual views are warped frames, no known blur
        pred = run.true_blur(sharp, t["view"])
    terms = loss_terms(cfg, s, t, r, sharp, pred, gt, blur)
    terms.update(smoothness_terms(cfg.loss, run.model, t["frame"], t["w2c"]))
    return terms, r, pred, blur


def loss_terms(cfg: MethodConfig, s: int, t: dict[str, Any], r: RenderResult, sharp: torch.Tensor,
               pred: torch.Tensor, gt: torch.Tensor, blur) -> dict[str, torch.Tensor]:
    """The weighted loss terms of step ``s`` (docs/method.md §5); only the active ones appear."""
    lw = cfg.loss
    terms = {"rec": losses.reconstruction_loss(pred, gt, lw.ssim_lambda)}
    if t["mask"] is not None and lw.dynamic_mask > 0:
        terms["dyn_mask"] = lw.dynamic_mask * losses.trimmed_l1(r.dyn_mask[..., 0], t["mask"],
                                                               trim=lw.trim_fraction)
    if t["depth"] is not None and lw.depth > 0:
        terms["depth"] = lw.depth * losses.depth_loss(r.depth[..., 0], t["depth"], trim=lw.trim_fraction)
    if not t["virtual"] and lw.low_frequency > 0 and s >= cfg.at(lw.low_frequency_start_frac):
        terms["low_freq"] = lw.low_frequency * losses.low_frequency_loss(sharp, gt, lw.low_frequency_factor)
    if blur is not None:
        # only a free centre weight can be tied to the mask (kernels.has_free_centre)
        if lw.blur_sparsity > 0 and has_free_centre(cfg.blur.kernel_type) \
                and s >= cfg.at(lw.blur_sparsity_start_frac):
            terms["blur_sparsity"] = lw.blur_sparsity * losses.blur_aware_sparsity(*blur)
        if lw.mask_sparsity > 0 and s >= cfg.at(lw.mask_sparsity_start_frac):
            terms["mask_sparsity"] = lw.mask_sparsity * losses.mask_sparsity(blur[1])
    return terms
