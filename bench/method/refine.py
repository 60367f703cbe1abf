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


def refine_saved_run(run_dir, steps: int, select: str | None = None, progress: bool = True) -> str:
    """Refine the test poses of a trained run from its saved state and write that mode's renders
    (bench.rundir.eval_renders); returns the mode's name. ``select``: the state refined, ``last``
    (the final checkpoint) or ``best_test`` (checkpoints/best_test.pt); default the run's own
    ``eval.select``. BenchError when the run has no such saved state."""
    from pathlib import Path

    from bench import rundir
    from bench.errors import BenchError
    from bench.method.checkpoints import read_checkpoint
    from bench.method.config import validate
    from bench.data.registry import load_scene
    from bench.method.device import pick_device, set_threads
    from bench.method.outputs import write_refined_renders
    from bench.method.selection import load_best_model
    from bench.method.step import sh_degree
    from bench.method.run_state import SceneTensors
    from bench.metrics.evaluate import read_config

    run_dir = Path(run_dir)
    record = read_config(run_dir)
    cfg = validate(record.get("config") or {}, str(run_dir / rundir.CONFIG))
    select = select or cfg.eval.select
    set_threads(cfg)
    choice = pick_device("auto", cfg.train.backend, torch.cuda.is_available())
    device = choice.device
    if select == "best_test":
        model, _ = load_best_model(run_dir, device)
    else:
        final = rundir.checkpoint_path(run_dir, cfg.train.steps)
        if not final.is_file():
            raise BenchError(f"{final}: missing; refining the test poses of the last state needs the run's final "
                             "checkpoint")
        model = GaussianModel.from_state_dict(read_checkpoint(final, device)["model"]).to(device)
    scene = load_scene(record["dataset"], record["scene"], data_root=record.get("data_root"))
    data = SceneTensors.from_scene(scene, device)
    gt = scene.test.images.stack().float().to(device)
    mode = rundir.eval_mode(select, steps)
    eval_cfg = cfg.eval.model_copy(update={"refine_test_poses": steps})
    write_refined_renders(model, data, gt, run_dir / rundir.eval_renders(mode), eval_cfg,
                          sh_degree(cfg, cfg.train.steps), choice.backend, progress)
    return mode
