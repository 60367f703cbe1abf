"""Per-pixel blur kernels on a K x K support and the blur formation rule.

Layout: a kernel field is a (B,K*K,H,W) tensor; channel ``k = (dy + r) * K + (dx + r)``
(r = (K-1)/2) weighs the sharp pixel at offset (dx, dy) from the output pixel, i.e. the same
row-major order as ``nnf.unfold``. Kernels are non-negative and sum to 1 over the K*K channels.

Families:
- full: an unconstrained softmax over K*K logits.
- defocus: a soft-edged disc, ``w = clamp(radius + 1 - |p|, 0, 1)``: offsets within ``radius``
  get full weight and the edge falls off linearly over one pixel, so the kernel is
  differentiable in the radius, radius 0 gives a delta, and it depends on |p| only (radially
  symmetric by construction).
- motion: a soft line segment of total length ``length`` through the centre,
  ``w = clamp(1 - dist(p, segment), 0, 1)``: one-pixel-wide linear falloff around the segment
  [-length/2, length/2] * direction. Length 0 gives a delta; the kernel is symmetric under a 180°
  rotation because the segment is.
The centre weight of both parametric families is always 1 before normalisation, so the
normalisation never divides by zero. Their weights use :func:`_ramp` (clamp to [0, 1] with the
right-hand derivative at 0), so a tap entering the kernel passes a gradient: at radius or length 0
the blur still has a non-zero derivative in that parameter (torch's clamp gives 0 there).
Only ``full`` has a centre weight of its own (:func:`has_free_centre`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as nnf


def kernel_offsets(K: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """(K*K,2) pixel offsets (dx, dy) of the kernel channels, row-major like nnf.unfold."""
    if K < 1 or K % 2 == 0:
        raise ValueError(f"kernel size must be odd and positive, got {K}")
    r = (K - 1) // 2
    dy, dx = torch.meshgrid(torch.arange(-r, r + 1, device=device, dtype=dtype),
                            torch.arange(-r, r + 1, device=device, dtype=dtype), indexing="ij")
    return torch.stack([dx.reshape(-1), dy.reshape(-1)], dim=-1)


def centre_index(K: int) -> int:
    """Channel index of the (0, 0) offset."""
    return (K * K) // 2


def full_kernel(logits: torch.Tensor) -> torch.Tensor:
    """Unconstrained kernels: softmax over the K*K channels of (B,K*K,H,W) logits."""
    return torch.softmax(logits, dim=1)


def has_free_centre(kernel_type: str) -> bool:
    """Whether the family's centre weight is a parameter of its own (docs/method.md §4-5).

    Only ``full``: its centre logit is free, so the blur-aware sparsity can tie it to the mask.
    A parametric family's centre weight is a fixed function of its size (the disc's is about
    1 / (pi (r + 0.5)^2)); the term would pin the size itself (centre >= 0.5 means radius <= 0.25 px,
    length <= 1 px) and pull it to 0 wherever the reconstruction pulls less, where the mask then
    loses its gradient too. For those families the mask alone sets the centre share of the blur
    m * k + (1 - m) * delta, which is the tie that term makes for ``full``.
    """
    return kernel_type == "full"


def _normalise(weights: torch.Tensor) -> torch.Tensor:
    return weights / weights.sum(dim=1, keepdim=True)


def _ramp(x: torch.Tensor) -> torch.Tensor:
    """clamp(x, 0, 1) with derivative 1 on [0, 1): a tap at the kernel's edge (x = 0) gets the
    gradient of growing into the kernel, so radius/length 0 is not a stationary point."""
    return torch.where(x >= 1, torch.ones_like(x), torch.where(x >= 0, x, torch.zeros_like(x)))


def defocus_kernel(radius: torch.Tensor, K: int) -> torch.Tensor:
    """Isotropic soft-disc PSF from a per-pixel radius in pixels.

    radius: (B,1,H,W) >= 0. Returns (B,K*K,H,W).
    """
    off = kernel_offsets(K, radius.device, radius.dtype)
    dist = off.norm(dim=-1).view(1, -1, 1, 1)
    return _normalise(_ramp(radius + 1 - dist))


def motion_kernel(direction: torch.Tensor, length: torch.Tensor, K: int) -> torch.Tensor:
    """Linear motion PSF: a soft segment through the centre.

    direction: (B,2,H,W) (dx, dy), any non-zero scale; length: (B,1,H,W) total length in pixels
    (>= 0). Returns (B,K*K,H,W).
    """
    off = kernel_offsets(K, direction.device, direction.dtype).T.reshape(1, 2, -1, 1, 1)  # (1,2,K²,1,1)
    d = nnf.normalize(direction, dim=1, eps=1e-8).unsqueeze(2)  # (B,2,1,H,W)
    along = (off * d).sum(dim=1)  # (B,K²,H,W) projection on the direction
    half = 0.5 * length
    nearest = along.clamp(min=-half, max=half)  # closest point of the segment, as a coordinate along d
    perp2 = ((off - nearest.unsqueeze(1) * d) ** 2).sum(dim=1)
    dist = torch.sqrt(perp2 + 1e-12)
    return _normalise(_ramp(1 - dist))


class _ShiftedSum(torch.autograd.Function):
    """out = sum_k kernels[:, k] * padded shifted by offset k, without materialising the patches.

    ``nnf.unfold`` would build a (B, C*K*K, H*W) patch tensor and its backward a second one; summing
    K*K shifted views in place is about twice as fast on the CPU and needs no extra memory.
    padded: (B,C,H+K-1,W+K-1); kernels: (B,K*K,H,W). Returns (B,C,H,W).
    """

    @staticmethod
    def forward(ctx, padded: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(padded, kernels)
        B, C, H, W, K = _shifted_shape(padded, kernels)
        out = padded.new_zeros(B, C, H, W)
        for k in range(K * K):
            dy, dx = divmod(k, K)
            out.addcmul_(padded[:, :, dy:dy + H, dx:dx + W], kernels[:, k:k + 1])
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        padded, kernels = ctx.saved_tensors
        B, C, H, W, K = _shifted_shape(padded, kernels)
        grad_padded = torch.zeros_like(padded) if ctx.needs_input_grad[0] else None
        grad_kernels = torch.empty_like(kernels) if ctx.needs_input_grad[1] else None
        for k in range(K * K):
            dy, dx = divmod(k, K)
            if grad_kernels is not None:
                torch.sum(grad * padded[:, :, dy:dy + H, dx:dx + W], dim=1, out=grad_kernels[:, k])
            if grad_padded is not None:
                grad_padded[:, :, dy:dy + H, dx:dx + W].addcmul_(grad, kernels[:, k:k + 1])
        return grad_padded, grad_kernels


def _shifted_shape(padded: torch.Tensor, kernels: torch.Tensor) -> tuple[int, int, int, int, int]:
    B, C, H, W = padded.shape[:2] + kernels.shape[2:]
    return B, C, H, W, padded.shape[2] - H + 1


class _ShiftedSumCompiled(torch.autograd.Function):
    """_ShiftedSum by the compiled CPU loops (bench/render/cpu_ext): the same sum in the same
    order per output element, without one tensor operation per kernel tap."""

    @staticmethod
    def forward(ctx, padded: torch.Tensor, kernels: torch.Tensor, module) -> torch.Tensor:
        padded, kernels = padded.contiguous(), kernels.contiguous()
        ctx.save_for_backward(padded, kernels)
        ctx.module = module
        K = padded.shape[2] - kernels.shape[2] + 1
        return module.blur_forward(padded, kernels, K)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        padded, kernels = ctx.saved_tensors
        K = padded.shape[2] - kernels.shape[2] + 1
        g_pad, g_ker = ctx.module.blur_backward(grad.contiguous(), padded, kernels, K,
                                                ctx.needs_input_grad[0], ctx.needs_input_grad[1])
        return (g_pad if ctx.needs_input_grad[0] else None,
                g_ker if ctx.needs_input_grad[1] else None, None)


def _compiled_blur(padded: torch.Tensor, kernels: torch.Tensor):
    """The compiled CPU module for these tensors, or None (GPU, other dtypes, not built)."""
    if padded.device.type != "cpu" or padded.dtype not in (torch.float32, torch.float64) \
            or kernels.dtype != padded.dtype:
        return None
    from bench.render import cpu_ext

    return cpu_ext.load() if cpu_ext.enabled() else None


def apply_kernels(image: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Per-pixel kernel application: out(x) = sum_k kernels_k(x) * image(x + offset_k).

    image: (B,C,H,W); kernels: (B,K*K,H,W). Returns (B,C,H,W). The image is padded by
    replicating its border so that kernels near the border average real colours instead of
    darkening towards a zero padding. On CPU the compiled loops of bench/render/cpu_ext run where
    they are built (BENCH_RENDER_COMPILED=0 forces the PyTorch shifted-view sum).
    """
    kk = kernels.shape[1]
    K = int(round(kk ** 0.5))
    if K * K != kk:
        raise ValueError(f"kernel channels must be a square number, got {kk}")
    r = (K - 1) // 2
    padded = nnf.pad(image, (r, r, r, r), mode="replicate") if r > 0 else image
    module = _compiled_blur(padded, kernels)
    if module is not None:
        return _ShiftedSumCompiled.apply(padded, kernels, module)
    return _ShiftedSum.apply(padded, kernels)


def blur_formation(sharp: torch.Tensor, kernels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Blurry image m * (k applied to I) + (1 - m) * I.

    sharp: (B,C,H,W); kernels: (B,K*K,H,W); mask: (B,1,H,W) in [0,1]. Returns (B,C,H,W).
    """
    return mask * apply_kernels(sharp, kernels) + (1 - mask) * sharp
