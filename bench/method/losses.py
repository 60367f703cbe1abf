"""Training losses of docs/method.md §5.

Image convention: (B,C,H,W) tensors in [0, 1]. ``ssim`` and ``reconstruction_loss`` also accept
a single (H,W,C) image (the renderer's layout) and treat it as a batch of one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as nnf

from bench.method.kernels import centre_index

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_C1 = 0.01 ** 2
SSIM_C2 = 0.03 ** 2


def _as_bchw(img: torch.Tensor) -> torch.Tensor:
    if img.dim() == 3:
        return img.permute(2, 0, 1).unsqueeze(0)
    if img.dim() != 4:
        raise ValueError(f"expected an (H,W,C) or (B,C,H,W) image, got shape {tuple(img.shape)}")
    return img


def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over all elements."""
    return (pred - target).abs().mean()


def _gaussian_1d(device, dtype) -> torch.Tensor:
    """(11,) normalised Gaussian taps (sigma 1.5); the 2D window is its outer product."""
    x = torch.arange(SSIM_WINDOW, device=device, dtype=dtype) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-x ** 2 / (2 * SSIM_SIGMA ** 2))
    return g / g.sum()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004) with an 11x11 Gaussian window, sigma 1.5, data range 1.

    a, b: (B,C,H,W) or (H,W,C), both sides at least 11 px. Statistics use only positions where
    the window lies fully inside the image ("valid" filtering, no padding bias at the border).
    Differentiable; returns a scalar. The window is separable, so the five local statistics are
    filtered together as one stack of maps, by a row and a column pass (22 taps instead of 121).
    """
    a, b = _as_bchw(a), _as_bchw(b)
    if min(a.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {SSIM_WINDOW} px per side, got {tuple(a.shape[-2:])}")
    C = a.shape[1]
    g = _gaussian_1d(a.device, a.dtype)
    module = _compiled_module(a, b)
    if module is not None:
        return _SSIMCompiled.apply(a, b, g, module)
    maps = torch.cat([a, b, a * a, b * b, a * b], dim=1)  # (B,5C,H,W)
    n = maps.shape[1]
    maps = nnf.conv2d(maps, g.view(1, 1, 1, -1).expand(n, 1, 1, -1), groups=n)
    maps = nnf.conv2d(maps, g.view(1, 1, -1, 1).expand(n, 1, -1, 1), groups=n)
    mu_a, mu_b, aa, bb, ab = maps.split(C, dim=1)
    var_a = aa - mu_a ** 2
    var_b = bb - mu_b ** 2
    cov = ab - mu_a * mu_b
    num = (2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)
    den = (mu_a ** 2 + mu_b ** 2 + SSIM_C1) * (var_a + var_b + SSIM_C2)
    return (num / den).mean()


class _SSIMCompiled(torch.autograd.Function):
    """ssim by the compiled CPU loops (bench/render/cpu_ext/ssim_cpu.cpp): a, b (B,C,H,W), taps
    (11,) -> mean SSIM, with a hand-written backward."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, taps: torch.Tensor, module) -> torch.Tensor:
        planes = [x.reshape(-1, *x.shape[-2:]).contiguous() for x in (a, b)]
        ctx.save_for_backward(*planes, taps)
        ctx.module, ctx.shape = module, a.shape
        return module.ssim_forward(*planes, taps)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        a, b, taps = ctx.saved_tensors
        da, db = ctx.module.ssim_backward(a, b, taps, float(grad), ctx.needs_input_grad[1])
        return (da.reshape(ctx.shape) if ctx.needs_input_grad[0] else None,
                db.reshape(ctx.shape) if ctx.needs_input_grad[1] else None, None, None)


def _compiled_module(a: torch.Tensor, b: torch.Tensor):
    """The compiled CPU kernels for these images, or None (GPU, other dtypes, not built)."""
    if a.device.type != "cpu" or a.dtype not in (torch.float32, torch.float64) or b.dtype != a.dtype:
        return None
    from bench.render import cpu_ext

    return cpu_ext.load() if cpu_ext.enabled() else None


def reconstruction_loss(pred: torch.Tensor, target: torch.Tensor, beta: float = 0.2) -> torch.Tensor:
    """(1 - beta) * L1 + beta * (1 - SSIM); the release uses beta = 0.2."""
    return (1 - beta) * l1(pred, target) + beta * (1 - ssim(pred, target))


def blur_aware_sparsity(kernels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """mean |sigmoid(5 (1 - sg(m))) - k_centre| over pixels.

    kernels: (B,K*K,H,W); mask: (B,1,H,W). The mask is detached: the loss only shapes the
    kernels, pushing the centre tap towards 1 where the mask says there is little blur.
    """
    K = int(round(kernels.shape[1] ** 0.5))
    target = torch.sigmoid(5 * (1 - mask.detach()))
    return (target - kernels[:, centre_index(K):centre_index(K) + 1]).abs().mean()


def mask_sparsity(mask: torch.Tensor) -> torch.Tensor:
    """Mean blur-mask value (pushes the mask to 0 where blur is not needed)."""
    return mask.mean()


def trimmed_l1(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor | None = None,
               trim: float = 0.02) -> torch.Tensor:
    """Mean absolute residual after dropping the largest ``trim`` fraction.

    pred, target: any equal shapes; valid: same shape (or broadcastable) bool, or None for all.
    Returns 0 (still in the graph) when nothing is valid.
    """
    res = (pred - target).abs()
    if valid is not None:
        res = res[valid.expand_as(res)]
    res = res.reshape(-1)
    if res.numel() == 0:
        return pred.sum() * 0
    keep = max(1, math.ceil((1 - trim) * res.numel()))
    return torch.topk(res, keep, largest=False, sorted=False).values.mean()


def low_frequency_loss(sharp: torch.Tensor, blurry: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """L1 between area-downsampled (by ``factor``) sharp render and blurry frame. (B,C,H,W) or (H,W,C)."""
    sharp, blurry = _as_bchw(sharp), _as_bchw(blurry)
    size = (max(1, sharp.shape[-2] // factor), max(1, sharp.shape[-1] // factor))
    down = lambda x: nnf.interpolate(x, size=size, mode="area")  # noqa: E731
    return l1(down(sharp), down(blurry))


def disparity(depth: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """1 / depth where depth > eps, 0 elsewhere (invalid depth or empty render)."""
    safe = depth.clamp_min(eps)
    return torch.where(depth > eps, 1.0 / safe, torch.zeros_like(depth))


def depth_loss(rendered_depth: torch.Tensor, target_depth: torch.Tensor, trim: float = 0.02) -> torch.Tensor:
    """Trimmed L1 between rendered and dataset disparity over pixels with valid dataset depth."""
    return trimmed_l1(disparity(rendered_depth), disparity(target_depth), valid=target_depth > 0, trim=trim)


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of images in [0, 1] (no gradient)."""
    mse = nnf.mse_loss(pred.detach().clamp(0, 1), target.detach()).item()
    return float("inf") if mse == 0 else -10.0 * math.log10(mse)
