"""Python side of the compiled CPU renderer: tile planning and compositing with its backward.

Same inputs and outputs as the pure-PyTorch path's plan_tiles/pair_tables/composite, but the
compositor takes per-Gaussian tensors directly and writes image layout, so no per-pair tables or
tile re-layout are built in PyTorch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class CompiledPlan:
    """pair_ids (P,) int64 flat camera*N + gaussian ids grouped by tile, depth-sorted in a tile;
    offsets (C*tiles_y*tiles_x + 1,) int64 into pair_ids; radii (C*N,2) int32 boxes; tile size;
    exp_lanes: after a forward pass with this plan, the 0-d int64 count of pixel lanes its kernel
    sent through exp() (the real work, padding lanes of a vector included), else None."""

    pair_ids: Tensor
    offsets: Tensor
    radii: Tensor
    num_cameras: int
    tile: int
    exp_lanes: Tensor | None = None

    def evaluations(self) -> int:
        """Gaussian-pixel evaluations of whole tiles (an upper bound of what the kernel does)."""
        return int(self.pair_ids.numel()) * self.tile * self.tile


@torch.no_grad()
def plan_tiles_compiled(module, means2d: Tensor, conics: Tensor, opacities: Tensor, radii: Tensor,
                        depths: Tensor, width: int, height: int, tile: int) -> CompiledPlan:
    """Inputs as bench.render.composite.plan_tiles: (C,N,2), (C,N,3), (C,N), (C,N,2) int, (C,N)."""
    ids, offsets = module.plan_tiles(means2d, conics, opacities, radii, depths, width, height, tile)
    C, N = depths.shape
    return CompiledPlan(ids, offsets, radii.reshape(C * N, 2).to(torch.int32).contiguous(), C, tile)


class _CompiledComposite(torch.autograd.Function):
    """(C,N,2) means, (C,N,3) conics, (C,N) opacities, (C,N,ch) channels -> (C,H,W,ch+1) images
    holding sum_i w_i f_i and, last, alpha = sum_i w_i."""

    @staticmethod
    def forward(ctx, means2d, conics, opacities, feats, plan: CompiledPlan, module, width, height):
        C, N = opacities.shape
        flat = [t.reshape(C * N, k).contiguous()
                for t, k in ((means2d, 2), (conics, 3), (opacities, 1), (feats, feats.shape[-1]))]
        flat[2] = flat[2].reshape(C * N)
        out, t_final, last, plan.exp_lanes = module.composite_forward(*flat, plan.radii, plan.pair_ids, plan.offsets,
                                                      C, width, height, plan.tile)
        ctx.save_for_backward(*flat, t_final, last)
        ctx.plan, ctx.module, ctx.size, ctx.shapes = plan, module, (width, height), (C, N)
        return out

    @staticmethod
    def backward(ctx, g_out):
        means2d, conics, opacities, feats, t_final, last = ctx.saved_tensors
        plan, (width, height), (C, N) = ctx.plan, ctx.size, ctx.shapes
        g_m, g_c, g_o, g_f = ctx.module.composite_backward(
            means2d, conics, opacities, feats, plan.radii, plan.pair_ids, plan.offsets,
            g_out.contiguous(), t_final, last, width, height, plan.tile)
        return (g_m.reshape(C, N, 2), g_c.reshape(C, N, 3), g_o.reshape(C, N),
                g_f.reshape(C, N, feats.shape[-1]), None, None, None, None)


def composite_compiled(module, means2d: Tensor, conics: Tensor, opacities: Tensor, feats: Tensor,
                       plan: CompiledPlan, width: int, height: int) -> tuple[Tensor, Tensor]:
    """fg (C,H,W,ch) = sum_i w_i f_i (no background) and alpha (C,H,W,1) = sum_i w_i."""
    feats = feats.to(means2d.dtype)
    out = _CompiledComposite.apply(means2d, conics, opacities, feats, plan, module, width, height)
    return out[..., :-1], out[..., -1:]


class _CompiledProjection(torch.autograd.Function):
    """EWA projection by project_cpu.cpp: (N,3) means, (N,4) quats, (N,3) log scales, (N,)
    opacity logits through (C,4,4) viewmats and (C,3,3) Ks -> means2d (C,N,2), conics (C,N,3),
    depths (C,N), opacities (C,N), radii (C,N,2) int32, visible (C,N) bool. Cameras get no gradient."""

    @staticmethod
    def forward(ctx, means, quats, log_scales, logits, viewmats, Ks, module, size, planes):
        inputs = [t.contiguous() for t in (means, quats, log_scales, logits, viewmats, Ks)]
        out = module.project_forward(*inputs, *size, *planes)
        ctx.save_for_backward(*inputs)
        ctx.module, ctx.args = module, (*size, *planes)
        ctx.mark_non_differentiable(out[4], out[5])
        return tuple(out)

    @staticmethod
    def backward(ctx, g_means2d, g_conics, g_depths, g_opacities, _g_radii, _g_visible):
        grads = [g.contiguous() for g in (g_means2d, g_conics, g_depths, g_opacities)]
        d_means, d_quats, d_log_scales, d_logits = ctx.module.project_backward(
            *ctx.saved_tensors, *ctx.args, *grads)
        return d_means, d_quats, d_log_scales, d_logits, None, None, None, None, None


def project_compiled(module, means: Tensor, quats: Tensor, log_scales: Tensor, opacity_logits: Tensor,
                     viewmats: Tensor, Ks: Tensor, width: int, height: int, near: float, far: float,
                     eps2d: float) -> tuple[Tensor, ...]:
    """bench.render.projection.project of (N,...) Gaussians with quat_scale_to_factor and the
    opacity sigmoid folded in; the same outputs, with gradients for the Gaussians only."""
    return _CompiledProjection.apply(means, quats, log_scales, opacity_logits, viewmats, Ks, module,
                                     (width, height), (near, far, eps2d))


MAX_COMPILED_SH_DEGREE = 3


class _CompiledSH(torch.autograd.Function):
    """SH colours by project_cpu.cpp: coeffs (N,K,3), means (N,3), camera centres (C,3) ->
    rgb (C,N,3). The camera centres get no gradient."""

    @staticmethod
    def forward(ctx, coeffs, means, campos, degree, module):
        inputs = [t.contiguous() for t in (coeffs, means, campos)]
        ctx.save_for_backward(*inputs)
        ctx.module, ctx.degree = module, degree
        return module.sh_forward(*inputs, degree)

    @staticmethod
    def backward(ctx, g_rgb):
        d_coeffs, d_means = ctx.module.sh_backward(*ctx.saved_tensors, ctx.degree, g_rgb.contiguous())
        return d_coeffs, d_means, None, None, None


def sh_colors_compiled(module, degree: int, coeffs: Tensor, means: Tensor, viewmats: Tensor) -> Tensor:
    """bench.render.projection.sh_colors for degree <= MAX_COMPILED_SH_DEGREE: (C,N,3)."""
    campos = torch.linalg.inv(viewmats)[:, :3, 3]
    return _CompiledSH.apply(coeffs, means, campos, degree, module)
