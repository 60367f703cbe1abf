"""The metric registry: every metric's display label and direction, in one place.

Tables (arrows, ranking) and figures read directions only from here.
"""

from __future__ import annotations

from typing import NamedTuple

from bench.errors import BenchError
from bench.metrics.regions import BLURRED_PX, FALSE_BLUR_PX, MIN_REGION_PX, SHARP_PX


def _floor(region: str = "region") -> str:
    """Where a region metric's value is missing in a view (bench.metrics.regions explains the floor)."""
    return f"; a view whose {region} has fewer than {MIN_REGION_PX} pixels at the render size has no value"


# What test_blur_rms is: the test camera's own blur, standing in for "in the same-instant training frame".
_TEST_BLUR = ("GT RMS blur radius: the test camera's own, under the exposure and focus of the training frame "
              "of the same instant, standing in for that frame's blur, whose pixels do not line up")


class MetricSpec(NamedTuple):
    """label: short display name; higher_is_better: ranking direction; decimals: digits shown in tables;
    convention: how it is computed, for table notes and results.json (protocol-dependent parts, such
    as the LPIPS input range or the SSIM behind ``ssim_dyn``, are recorded per run by the protocol)."""

    label: str
    higher_is_better: bool
    decimals: int
    convention: str


METRICS: dict[str, MetricSpec] = {
    "psnr": MetricSpec("PSNR", True, 2, "10 log10(1/MSE), data range 1"),
    "ssim": MetricSpec("SSIM", True, 3, "scikit-image SSIM, 7x7 uniform window, data range 1"),
    "ssim_gauss": MetricSpec("SSIM (Gauss)", True, 3,
                             "scikit-image SSIM, 11x11 Gaussian window sigma 1.5, population covariance, data range 1"),
    "ssim_r2": MetricSpec("SSIM (range 2)", True, 3,
                          "scikit-image SSIM, 7x7 uniform window, data range 2 (scikit-image < 0.20 on float "
                          "images without data_range)"),
    "ssim_3dgs": MetricSpec("SSIM (3DGS)", True, 3,
                            "3D Gaussian Splatting's training SSIM (dydeblur metrics.py): 11x11 Gaussian window "
                            "sigma 1.5 per channel, zero padding, borders included in the mean, C1 = 0.01^2, "
                            "C2 = 0.03^2"),
    "lpips": MetricSpec("LPIPS", False, 3, "LPIPS AlexNet v0.1, images scaled to [-1, 1] (the protocol's "
                        "lpips_input, unless evaluated with --lpips-input unscaled; the dydeblur protocol feeds "
                        "[0, 1], with VGG on DyBluRF-layout scenes, as its record says)"),
    "lpips_01": MetricSpec("LPIPS [0,1]", False, 3,
                           "LPIPS AlexNet v0.1, [0, 1] images fed unscaled (dydeblur's convention; VGG where "
                           "the protocol records it)"),
    "psnr_dyn": MetricSpec("dyn. PSNR", True, 2, "PSNR over the test motion mask"),
    "ssim_dyn": MetricSpec("dyn. SSIM", True, 3, "mean of the headline SSIM map over the test motion mask"),
    "lpips_dyn": MetricSpec("dyn. LPIPS", False, 3, "mean of the spatial LPIPS map over the test motion mask"),
    # Region metrics (bench.metrics.regions): synthetic scenes only, masked PSNR per test view as psnr_dyn,
    # then the mean over the views with a value; GT radii in pixels of the render.
    "psnr_unseen": MetricSpec("unseen PSNR", True, 2, "PSNR over the test pixels whose surface no training "
                              "frame sees" + _floor()),
    "psnr_emerging": MetricSpec("emerging PSNR", True, 2, "PSNR over the dynamic test pixels whose surface the "
                                "canonical frame does not show" + _floor()),
    "psnr_sharp": MetricSpec("sharp PSNR", True, 2, f"PSNR over the test pixels that are sharp (< {SHARP_PX} px; "
                             f"{_TEST_BLUR})" + _floor()),
    "psnr_blurred": MetricSpec("blurred PSNR", True, 2, f"PSNR over the test pixels that are blurred "
                               f"(> {BLURRED_PX} px; {_TEST_BLUR})" + _floor()),
    "false_blur": MetricSpec("false blur (%)", False, 2,
                             f"percentage of the sharp pixels (GT RMS blur radius < {SHARP_PX} px) of each saved "
                             f"training view where the predicted kernel's RMS radius exceeds {FALSE_BLUR_PX} px "
                             "(the kernel itself, blur mask not applied), mean over views; missing, not 0, for a "
                             "variant without a blur model" + _floor("sharp region")),
}

# Metrics that measure the same thing in different conventions: a table column of one may show a
# published value of another, marked (bench.report.tables).
CONVENTION_FAMILIES: tuple[tuple[str, ...], ...] = (("ssim", "ssim_gauss", "ssim_r2", "ssim_3dgs"),
                                                     ("lpips", "lpips_01"))


def family(name: str) -> tuple[str, ...]:
    """The metrics in ``name``'s convention family (just ``name`` when it has none)."""
    return next((f for f in CONVENTION_FAMILIES if name in f), (name,))


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
