"""Optimisers and learning-rate schedules of a training run (docs/method.md §8)."""

from __future__ import annotations

import math

import torch

from bench.method.bpnet import BPNet
from bench.method.config import MethodConfig
from bench.method.model import GaussianModel

GAUSSIAN_LRS = {  # Gaussian param key -> OptimConfig field of its learning rate
    "means": "means", "quats": "rotations", "log_scales": "scales", "opacity_logits": "opacity",
    "sh_dc": "sh_dc", "sh_rest": "sh_rest", "motion_coefs": "motion_coefs",
}


def make_optimizers(cfg: MethodConfig, model: GaussianModel, bpnet: BPNet | None) -> dict[str, torch.optim.Adam]:
    """Adam (eps from the config) for the Gaussians (one group per attribute), bases and BP-Net."""
    o = cfg.optim
    groups = [{"params": [model.params[k]], "lr": getattr(o, f), "name": k} for k, f in GAUSSIAN_LRS.items()]
    opts = {
        "gaussians": torch.optim.Adam(groups, lr=0.0, eps=o.eps, fused=True),
        "bases": torch.optim.Adam(model.bases.parameters(), lr=o.motion_bases, eps=o.eps, fused=True),
    }
    if bpnet is not None:
        # The per-frame camera embedding gets its own group: each frame's row is updated only on
        # that frame's steps, so short runs need a larger step for it (blur.embedding_lr_scale).
        emb = list(bpnet.embedding.parameters())
        rest = [p for n, p in bpnet.named_parameters() if not n.startswith("embedding.")]
        opts["bpnet"] = torch.optim.Adam([{"params": rest, "scale": 1.0},
                                          {"params": emb, "scale": cfg.blur.embedding_lr_scale}],
                                         lr=cfg.blur.lr, eps=o.eps, fused=True)
    return opts


def exp_lr(start: float, end: float, progress: float) -> float:
    """Log-linear interpolation from ``start`` to ``end``; progress clamped to [0,1]."""
    p = min(max(progress, 0.0), 1.0)
    return math.exp((1 - p) * math.log(start) + p * math.log(end))


def set_lrs(cfg: MethodConfig, optimizers: dict[str, torch.optim.Adam], s: int) -> None:
    """Learning rates of step ``s``: means decay over means_decay_frac, BP-Net from its start."""
    for group in optimizers["gaussians"].param_groups:
        if group["name"] == "means":
            group["lr"] = exp_lr(cfg.optim.means, cfg.optim.means_final, s / cfg.every(cfg.optim.means_decay_frac))
    if "bpnet" in optimizers:
        start = cfg.at(cfg.blur.start_frac)
        lr = exp_lr(cfg.blur.lr, cfg.blur.lr_final, (s - start) / cfg.every(cfg.blur.lr_decay_frac))
        for group in optimizers["bpnet"].param_groups:
            group["lr"] = lr * group["scale"]
