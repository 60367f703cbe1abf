"""Evaluation protocols, one per dataset family, recorded in every results file.

A protocol fixes which test frames count, how ground truth is brought to the render size, whether
dynamic-region (motion-mask) metrics are computed, which SSIM variant is the headline "SSIM", and
the LPIPS network and input range. The loaders already select the protocol's test frames (the
Scene's ``test`` views), so ``frames`` documents that selection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from bench.errors import BenchError

LPIPS_INPUTS = ("scaled", "unscaled")


@dataclass(frozen=True)
class Protocol:
    """name: registry key. frames: which test views are evaluated. gt_resize: OpenCV interpolation
    used when GT and render sizes differ. dynamic: compute masked metrics with the test motion masks.
    ssim_metric: the metric shown as "SSIM" in tables (``ssim`` = skimage default 7x7 uniform window,
    ``ssim_gauss`` = 11x11 Gaussian sigma 1.5). lpips_net / lpips_version: LPIPS backbone and
    linear-layer version. lpips_input: ``scaled`` maps [0,1] to [-1,1] as the lpips package expects,
    ``unscaled`` feeds [0,1] as the public dydeblur code did.
    """

    name: str
    description: str
    frames: str
    gt_resize: str = "INTER_AREA"
    mask_resize: str = "INTER_NEAREST"
    dynamic: bool = False
    ssim_metric: str = "ssim"
    lpips_net: str = "alex"
    lpips_version: str = "0.1"
    lpips_input: str = "scaled"
    data_range: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)

    def with_lpips_input(self, lpips_input: str | None) -> "Protocol":
        """A copy with another LPIPS input range (None keeps this one)."""
        if lpips_input is None:
            return self
        if lpips_input not in LPIPS_INPUTS:
            raise BenchError(f"--lpips-input {lpips_input!r}: expected one of {', '.join(LPIPS_INPUTS)}")
        return replace(self, lpips_input=lpips_input)


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            name="dyblurf",
            description="Stereo Blur, DyBluRF release: sharp right camera, full image (DyBluRF eval)",
            frames="all right-camera frames (inference_images/%05d.png), 24 per scene",
        ),
        Protocol(
            name="deblur4dgs",
            description="Stereo Blur, Deblur4DGS release: sharp right camera, full image",
            frames="odd interleaved frames images_test[1::2]",
            # Shape-of-Motion based evaluation uses the Gaussian-window SSIM [inferred].
            ssim_metric="ssim_gauss",
        ),
        Protocol(
            name="d2rf",
            description="D2RF: sharp right camera, full image plus dynamic-region metrics (D2RF eval)",
            frames="every right frame (images/*_right.jpg)",
            dynamic=True,
        ),
        Protocol(
            name="synthetic",
            description="Synthetic scenes of this project: sharp held-out views, full image plus dynamic region",
            frames="all test views of the generated scene",
            dynamic=True,
        ),
    )
}


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``; BenchError listing known names otherwise."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise BenchError(f"protocol {name!r}: expected one of {', '.join(PROTOCOLS)}") from None


def headline_ssim(protocol_names) -> str:
    """The SSIM metric shown as "SSIM" for results recorded under ``protocol_names`` (the first
    known protocol's ``ssim_metric``; ``ssim`` when none is known)."""
    for name in protocol_names:
        if name in PROTOCOLS:
            return PROTOCOLS[name].ssim_metric
    return "ssim"
