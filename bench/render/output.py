"""What a render returns."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class RenderOutput:
    """Rendered images and per-Gaussian screen-space information for C cameras.

    rgb (C,H,W,3) colour plus T_final * background; depth (C,H,W,1) expected camera z,
    sum(w z) / max(alpha, 1e-10); alpha (C,H,W,1) = 1 - T_final; features (C,H,W,F) or None,
    composited like colour with no background; means2d (C,N,2) pixel-space means, a graph tensor with
    retain_grad() so its .grad is the screen-space positional gradient after backward (densification);
    radii (C,N,2) int32 per-axis extent in pixels, 0 = not rendered; visible (C,N) bool.

    means2d (and its gradient) of a Gaussian that is not visible in a camera is undefined: gsplat
    leaves it uninitialised, the torch backend writes 0. Every consumer masks by ``visible`` (or
    ``radii > 0``), as densification's gradient accumulation does.
    """

    rgb: Tensor
    depth: Tensor
    alpha: Tensor
    features: Tensor | None
    means2d: Tensor
    radii: Tensor
    visible: Tensor
