"""Differentiable Gaussian renderer with gsplat 1.5.3's semantics: pure-PyTorch and gsplat backends.

Entry point: `rasterize(...) -> RenderOutput` (see bench/render/rasterize.py for shapes).
"""

from bench.render.rasterize import RenderOutput, rasterize

__all__ = ["RenderOutput", "rasterize"]
