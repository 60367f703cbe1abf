"""Test-time pose refinement (``eval.refine_test_poses``), as Deblur4DGS evaluates.

Deblur4DGS (``flow3d/validator.py``, ``validate_imgs_with_optimization``) optimises every test camera
against that view's ground-truth image before scoring it, with the model frozen: a 3x3 matrix A
(from the identity, not constrained to a rotation) left-multiplies the world-to-camera rotation and
an offset d is added to its translation, w2c' = [A R | t + d]; 500 Adam steps on the L1 distance
to the ground truth, lr 1e-2 cosine-annealed towards 1e-4 (its scheduler steps before the
optimiser, so step i uses the annealed lr of step i + 1). This module reproduces it, so that how
much such a practice moves a reported number can be measured (docs/method.md §12).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bench.method.model import GaussianModel
from bench.render import rasterize


@dataclass
class RefinedPose:
    """One test view after refinement: w2c (4,4) used for the final render, rgb (H,W,3) in [0,1],
    the L1 loss before the first and after the last step."""

    w2c: torch.Tensor
    rgb: torch.Tensor
    first_loss: float
    last_loss: float


def annealed_lr(i: int, steps: int, lr: float, lr_final: float) -> float:
    """The lr of refinement step ``i`` (0-based): cosine annealing from ``lr`` to ``lr_final`` over
    ``steps``, read one step ahead as Deblur4DGS's scheduler order does."""
    return lr_final + (lr - lr_final) * (1 + math.cos(math.pi * (i + 1) / steps)) / 2


def refine_pose(model: GaussianModel, K: torch.Tensor, w2c: torch.Tensor, width: int, height: int, frame: float,
                gt: torch.Tensor, *, steps: int, lr: float, lr_final: float, sh_degree: int,
                backend: str) -> RefinedPose:
    """Optimise one test camera (K (3,3), w2c (4,4)) against ``gt`` (H,W,3) with the model frozen."""
    with torch.no_grad():  # the model is frozen: its Gaussians at this frame are constants
        means, quats = model.at_frame(frame)
        p = model.params
        gaussians = (means, quats, p["log_scales"].detach(), p["opacity_logits"].detach(),
                     model.colors(sh_degree).detach())
    A = torch.eye(3, dtype=w2c.dtype, device=w2c.device, requires_grad=True)
    d = torch.zeros(3, dtype=w2c.dtype, device=w2c.device, requires_grad=True)
    opt = torch.optim.Adam([A, d], lr=lr)

    def render(grad: bool) -> torch.Tensor:
        with torch.set_grad_enabled(grad):
            out = rasterize(*gaussians, adjusted(w2c, A, d)[None], K[None], width, height, sh_degree=sh_degree,
                            backend=backend)
            return out.rgb[0]

    first = last = float("nan")
    for i in range(steps):
        for group in opt.param_groups:
            group["lr"] = annealed_lr(i, steps, lr, lr_final)
        opt.zero_grad(set_to_none=True)
        loss = torch.mean(torch.abs(render(True) - gt))
        loss.backward()
        opt.step()
        last = float(loss.detach())
        first = last if i == 0 else first
    with torch.no_grad():
        return RefinedPose(w2c=adjusted(w2c, A, d), rgb=render(False).clamp(0, 1), first_loss=first, last_loss=last)


def adjusted(w2c: torch.Tensor, A: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """[A R | t + d] over the last row of ``w2c`` (4,4); A (3,3), d (3,)."""
    top = torch.cat([A @ w2c[:3, :3], (w2c[:3, 3] + d)[:, None]], dim=1)
    return torch.cat([top, w2c[3:]], dim=0)
