"""Thin adapter over `gsplat.rasterization` (CUDA only), imported lazily."""

from __future__ import annotations

import torch
from torch import Tensor

from bench.errors import BenchError
from bench.render.output import RenderOutput
from bench.render.projection import sh_colors


def rasterize_gsplat(
    means: Tensor, quats: Tensor, log_scales: Tensor, opacity_logits: Tensor, colors: Tensor,
    viewmats: Tensor, Ks: Tensor, width: int, height: int, *, sh_degree: int | None,
    features: Tensor | None, near: float, far: float, background: Tensor | None, eps2d: float,
) -> RenderOutput:
    """Render with gsplat's CUDA kernels; same arguments and RenderOutput as `rasterize`.

    gsplat renders "RGB+ED" with the features appended to the colour channels (zero background for
    them and for depth). With features and SH together, SH colours are evaluated here (gsplat's
    rule: camera centre -> mean, +0.5, clamp at 0) because gsplat cannot append channels to SH input.
    """
    if means.dtype != torch.float32:
        raise BenchError(
            f"rasterize backend='gsplat': gsplat's rasteriser is float32 only, got {means.dtype}; "
            "cast the Gaussians to float32 or use backend='torch'"
        )
    if not _cuda_ready(means):
        raise BenchError(
            "rasterize backend='gsplat': needs CUDA tensors on a machine with a CUDA GPU; "
            "use backend='torch' (or 'auto') on CPU"
        )
    from gsplat import rasterization

    C, N = viewmats.shape[0], means.shape[0]
    num_feat = 0 if features is None else features.shape[-1]
    gs_sh = sh_degree
    gs_colors = colors
    if features is not None:
        if sh_degree is None:
            rgb = colors[None].expand(C, N, 3)
        else:
            rgb = sh_colors(sh_degree, colors, means, viewmats)
        gs_colors = torch.cat([rgb, features[None].expand(C, N, num_feat)], dim=-1)
        gs_sh = None
    backgrounds = None
    if background is not None:
        bg = torch.cat([background, background.new_zeros(num_feat)])
        backgrounds = bg[None].expand(C, 3 + num_feat).contiguous()
    renders, alphas, meta = rasterization(
        means, quats, torch.exp(log_scales), torch.sigmoid(opacity_logits), gs_colors, viewmats, Ks,
        width, height, near_plane=near, far_plane=far, radius_clip=0.0, eps2d=eps2d,
        sh_degree=gs_sh, packed=False, tile_size=16, backgrounds=backgrounds,
        render_mode="RGB+ED", rasterize_mode="classic",
    )
    means2d = meta["means2d"]
    if means2d.requires_grad:
        means2d.retain_grad()
    radii = meta["radii"].to(torch.int32)
    return RenderOutput(
        rgb=renders[..., :3],
        depth=renders[..., -1:],
        alpha=alphas,
        features=renders[..., 3:3 + num_feat] if features is not None else None,
        means2d=means2d,
        radii=radii,
        visible=(radii > 0).all(dim=-1),
    )


def _cuda_ready(means: Tensor) -> bool:
    """gsplat's kernels need a CUDA device and the Gaussians on it."""
    return torch.cuda.is_available() and means.is_cuda
