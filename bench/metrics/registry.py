"""The metric registry: every metric's display label and direction, in one place.

Tables (arrows, ranking) and figures read directions only from here.
"""

from __future__ import annotations

from typing import NamedTuple

from bench.errors import BenchError


class MetricSpec(NamedTuple):
    """label: short display name; higher_is_better: ranking direction; decimals: digits shown in tables."""

    label: str
    higher_is_better: bool
    decimals: int


METRICS: dict[str, MetricSpec] = {
    "psnr": MetricSpec("PSNR", True, 2),
    "ssim": MetricSpec("SSIM", True, 3),
    "ssim_gauss": MetricSpec("SSIM (Gauss)", True, 3),
    "lpips": MetricSpec("LPIPS", False, 3),
    "psnr_dyn": MetricSpec("dyn. PSNR", True, 2),
    "ssim_dyn": MetricSpec("dyn. SSIM", True, 3),
    "lpips_dyn": MetricSpec("dyn. LPIPS", False, 3),
}


def get_metric(name: str) -> MetricSpec:
    """The spec of metric ``name``; BenchError listing known names otherwise."""
    try:
        return METRICS[name]
    except KeyError:
        raise BenchError(f"metric {name!r}: expected one of {', '.join(METRICS)}") from None


def arrow(name: str, latex: bool = False) -> str:
    """The direction arrow of a metric: up when higher is better."""
    up = get_metric(name).higher_is_better
    if latex:
        return r"$\uparrow$" if up else r"$\downarrow$"
    return "↑" if up else "↓"
