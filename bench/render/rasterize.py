"""The renderer's one entry point: `rasterize` N 3D Gaussians through C pinhole cameras."""

from __future__ import annotations

import torch
from torch import Tensor

import bench.render.composite as composite_mod
from bench.errors import BenchError
from bench.render import cpu_ext
from bench.render.allocator import tune_cpu_allocator
from bench.render.composite import composite, pair_tables, plan_tiles
from bench.render.cpu_ext.ops import (MAX_COMPILED_SH_DEGREE, composite_compiled, plan_tiles_compiled,
                                      project_compiled, sh_colors_compiled)
from bench.render.output import RenderOutput
from bench.render.projection import Projected, project, quat_scale_to_factor, sh_colors

BACKENDS = ("auto", "torch", "gsplat")
EPS2D = 0.3


def rasterize(
    means: Tensor,
    quats: Tensor,
    log_scales: Tensor,
    opacity_logits: Tensor,
    colors: Tensor,
    viewmats: Tensor,
    Ks: Tensor,
    width: int,
    height: int,
    *,
    sh_degree: int | None = None,
    features: Tensor | None = None,
    near: float = 0.01,
    far: float = 1e10,
    background: Tensor | None = None,
    backend: str = "auto",
) -> RenderOutput:
    """Render N Gaussians into C images with gsplat 1.5.3's semantics (differentiable in every input).

    Args:
        means: (N,3) world-space centres.
        quats: (N,4) rotations as wxyz quaternions, any norm (normalised here).
        log_scales: (N,3) log standard deviations along the rotated axes.
        opacity_logits: (N,) pre-sigmoid opacities.
        colors: (N,3) RGB, used as is (no clamping), or SH coefficients (N,K,3) with
            K >= (sh_degree+1)^2, evaluated along camera centre -> mean, +0.5, clamped at 0.
        viewmats: (C,4,4) world-to-camera matrices, OpenCV convention (x right, y down, z forward).
        Ks: (C,3,3) pinhole intrinsics (fx, fy, cx, cy are used).
        width, height: image size in pixels.
        sh_degree: SH degree 0..4 when `colors` holds SH coefficients, else None.
        features: (N,F) extra per-Gaussian channels composited like colour, or None.
        near, far: camera-z range; Gaussians with centres outside it are culled.
        background: (3,) colour added as T_final * background to rgb only; None = black.
        backend: "torch" (pure PyTorch, CPU or GPU, float32 or float64), "gsplat" (CUDA and
            float32 only: its rasteriser has no float64 kernels, so float64 input is rejected
            rather than silently cast) or "auto" (gsplat for float32 CUDA tensors, torch
            otherwise). The first CPU render raises glibc's
            malloc thresholds for the process (bench/render/allocator.py): much faster
            repeated renders, at the cost of keeping freed memory mapped.

    Returns:
        RenderOutput with rgb (C,H,W,3), depth (C,H,W,1), alpha (C,H,W,1), features (C,H,W,F) or None,
        means2d (C,N,2), radii (C,N,2) int32, visible (C,N). means2d of Gaussians that are not
        visible is undefined (gsplat leaves it uninitialised): mask every use by ``visible``.
    """
    _check_inputs(means, quats, log_scales, opacity_logits, colors, viewmats, Ks, width, height,
                  sh_degree, features, background, backend)
    # cameras and background follow the Gaussians' dtype (float64 for tests, float32 in training)
    viewmats, Ks = viewmats.to(means.dtype), Ks.to(means.dtype)
    if background is not None:
        background = background.to(means.dtype)
    if backend == "auto":
        backend = "gsplat" if means.is_cuda and means.dtype == torch.float32 else "torch"
    if backend == "gsplat":
        from bench.render.gsplat_backend import rasterize_gsplat

        return rasterize_gsplat(
            means, quats, log_scales, opacity_logits, colors, viewmats, Ks, width, height,
            sh_degree=sh_degree, features=features, near=near, far=far, background=background,
            eps2d=EPS2D,
        )
    return _rasterize_torch(
        means, quats, log_scales, opacity_logits, colors, viewmats, Ks, width, height,
        sh_degree, features, near, far, background,
    )


def _rasterize_torch(
    means, quats, log_scales, opacity_logits, colors, viewmats, Ks, width, height,
    sh_degree, features, near, far, background,
) -> RenderOutput:
    """EWA projection, tile binning and compositing (custom backwards) by the compiled CPU kernels
    (bench/render/cpu_ext) where available, else in pure PyTorch."""
    if means.device.type == "cpu":
        tune_cpu_allocator()  # keeps freed render buffers in the heap (see bench/render/allocator.py)
    C, N = viewmats.shape[0], means.shape[0]
    module = _compiled_module(means)
    if module is not None and not (viewmats.requires_grad or Ks.requires_grad):
        proj = Projected(*project_compiled(module, means, quats, log_scales, opacity_logits, viewmats,
                                           Ks, width, height, near, far, EPS2D))
    else:  # the compiled projection passes no gradient to the cameras
        opacities = torch.sigmoid(opacity_logits)
        factors = quat_scale_to_factor(quats, torch.exp(log_scales))
        proj = project(means, factors, opacities, viewmats, Ks, width, height, near, far, EPS2D)
    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()
    if sh_degree is None:
        rgb = colors[None].expand(C, N, 3)
    elif module is not None and sh_degree <= MAX_COMPILED_SH_DEGREE and not viewmats.requires_grad:
        rgb = sh_colors_compiled(module, sh_degree, colors, means, viewmats)
    else:
        rgb = sh_colors(sh_degree, colors, means, viewmats)
    channels = [rgb, proj.depths[..., None]]
    if features is not None:
        channels.append(features[None].expand(C, N, features.shape[-1]))
    feats = torch.cat(channels, dim=-1)

    if module is not None:
        plan = plan_tiles_compiled(module, means2d.detach(), proj.conics.detach(), proj.opacities.detach(),
                                   proj.radii, proj.depths.detach(), width, height, composite_mod.TILE)
        fg, alpha = composite_compiled(module, means2d, proj.conics, proj.opacities, feats, plan,
                                       width, height)
    else:
        plan = plan_tiles(means2d.detach(), proj.conics.detach(), proj.opacities.detach(), proj.radii,
                          proj.depths.detach(), width, height)
        q, f = pair_tables(means2d, proj.conics, proj.opacities, feats, plan)
        fg, alpha = composite(q, f, plan, width, height)
    image = fg[..., :3]
    if background is not None:
        image = image + (1.0 - alpha) * background
    return RenderOutput(
        rgb=image,
        depth=fg[..., 3:4] / alpha.clamp(min=1e-10),
        alpha=alpha,
        features=fg[..., 4:] if features is not None else None,
        means2d=means2d,
        radii=proj.radii,
        visible=proj.visible,
    )


def _compiled_module(means: Tensor):
    """The compiled CPU kernels for these tensors, or None for the pure-PyTorch projection and
    compositor (CUDA tensors, dtypes other than float32/float64, BENCH_RENDER_COMPILED=0, failed
    build)."""
    if means.device.type != "cpu" or means.dtype not in (torch.float32, torch.float64):
        return None
    if not cpu_ext.enabled():
        return None
    return cpu_ext.load()


def _check_inputs(means, quats, log_scales, opacity_logits, colors, viewmats, Ks, width, height,
                  sh_degree, features, background, backend) -> None:
    """Raise BenchError naming the argument whose shape or value is wrong."""
    if backend not in BACKENDS:
        raise BenchError(f"rasterize backend={backend!r}: expected one of {', '.join(BACKENDS)}")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        raise BenchError(f"rasterize width/height={width!r}/{height!r}: expected positive integers")
    n = means.shape[0] if means.dim() == 2 else -1
    c = viewmats.shape[0] if viewmats.dim() == 3 else -1
    expected = {
        "means": (means, (n, 3)),
        "quats": (quats, (n, 4)),
        "log_scales": (log_scales, (n, 3)),
        "opacity_logits": (opacity_logits, (n,)),
        "viewmats": (viewmats, (c, 4, 4)),
        "Ks": (Ks, (c, 3, 3)),
    }
    if sh_degree is None:
        expected["colors"] = (colors, (n, 3))
    else:
        if not (isinstance(sh_degree, int) and 0 <= sh_degree <= 4):
            raise BenchError(f"rasterize sh_degree={sh_degree!r}: expected an integer 0..4 or None")
        k = colors.shape[1] if colors.dim() == 3 else -1
        if k < (sh_degree + 1) ** 2:
            raise BenchError(
                f"rasterize colors shape {tuple(colors.shape)}: expected (N,K,3) SH coefficients "
                f"with K >= {(sh_degree + 1) ** 2} for sh_degree={sh_degree}"
            )
        expected["colors"] = (colors, (n, k, 3))
    if features is not None:
        f = features.shape[1] if features.dim() == 2 else -1
        expected["features"] = (features, (n, f))
    if background is not None:
        expected["background"] = (background, (3,))
    for name, (tensor, shape) in expected.items():
        if tuple(tensor.shape) != shape or min(shape) < 0:
            raise BenchError(
                f"rasterize {name} shape {tuple(tensor.shape)}: expected {_shape_text(name, shape)}"
            )


def _shape_text(name: str, shape: tuple[int, ...]) -> str:
    """Human-readable expected shape, with N/C/K/F where the size is free or unknown."""
    letters = {"viewmats": "C", "Ks": "C"}
    parts = [letters.get(name, "N") if i == 0 else str(s) for i, s in enumerate(shape)]
    if name == "colors" and len(shape) == 3:
        parts[1] = "K"
    if name == "features":
        parts[1] = "F"
    if name == "background":
        parts = ["3"]
    return "(" + ",".join(parts) + ")"
