"""Evaluation protocols, one per dataset family, recorded in every results file.

A protocol fixes which test frames count, how ground truth is read and brought to the render size,
whether the render is scored as float or as the 8-bit image a script saved, whether dynamic-region
(motion-mask) metrics are computed, which SSIM variant is the headline "SSIM", and the LPIPS network
and input range. Each peer protocol reproduces what that peer's public evaluation script computes
(docs/datasets.md §Protocols). The loaders already select the protocol's test frames (the Scene's
``test`` views), so ``frames`` documents that selection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from bench.errors import BenchError
from bench.metrics.image import SSIM_VARIANTS
from bench.metrics.registry import METRICS

LPIPS_INPUTS = ("scaled", "unscaled")
GT_DTYPES = ("uint8", "float32")
RENDER_INPUTS = ("float", "png8")


@dataclass(frozen=True)
class Protocol:
    """name: registry key. frames: which test views are evaluated. source: the evaluation script
    reproduced. gt_dtype: ``uint8`` reads the GT file as 8-bit and resizes it as 8-bit before /255
    (OpenCV scripts), ``float32`` resizes the float image. gt_resize / mask_resize: OpenCV
    interpolation used when GT / mask and render sizes differ. render: ``float`` scores the render
    as rendered, ``png8`` as the 8-bit PNG a script saves and reads back /255. dynamic: compute
    masked metrics with the test motion masks. ssim_metric: the metric shown as "SSIM" in tables (a
    key of bench.metrics.image.SSIM_VARIANTS). lpips_net / lpips_version: LPIPS backbone and
    linear-layer version. lpips_input: ``scaled`` maps [0,1] to [-1,1] as the lpips package expects,
    ``unscaled`` feeds [0,1] as the public dydeblur code did. data_range: PSNR's data range.
    """

    name: str
    description: str
    frames: str
    source: str = ""
    gt_dtype: str = "float32"
    gt_resize: str = "INTER_AREA"
    mask_resize: str = "INTER_NEAREST"
    render: str = "float"
    dynamic: bool = False
    ssim_metric: str = "ssim"
    lpips_net: str = "alex"
    lpips_version: str = "0.1"
    lpips_input: str = "scaled"
    data_range: float = 1.0

    def __post_init__(self):
        for key, value, allowed in (("gt_dtype", self.gt_dtype, GT_DTYPES), ("render", self.render, RENDER_INPUTS),
                                    ("ssim_metric", self.ssim_metric, tuple(SSIM_VARIANTS)),
                                    ("lpips_input", self.lpips_input, LPIPS_INPUTS)):
            if value not in allowed:
                raise BenchError(f"protocol {self.name!r}: {key}={value!r}, expected one of {', '.join(allowed)}")

    def to_dict(self) -> dict:
        return asdict(self)

    def with_lpips_input(self, lpips_input: str | None) -> "Protocol":
        """A copy with another LPIPS input range (None keeps this one)."""
        if lpips_input is None:
            return self
        if lpips_input not in LPIPS_INPUTS:
            raise BenchError(f"--lpips-input {lpips_input!r}: expected one of {', '.join(LPIPS_INPUTS)}")
        return replace(self, lpips_input=lpips_input)

    def conventions(self) -> dict[str, dict]:
        """metric -> how this protocol computes it (recorded in results.json next to the values)."""
        lpips = {"net": self.lpips_net, "version": self.lpips_version, "input": self.lpips_input}
        out = {"psnr": {"data_range": self.data_range}}
        out.update({m: {**_ssim_record(m), "headline": m == self.ssim_metric} for m in SSIM_VARIANTS})
        out["lpips"] = lpips
        out["lpips_01"] = {**lpips, "input": "unscaled"}
        out["psnr_dyn"] = {"data_range": self.data_range}
        out["ssim_dyn"] = {"of": self.ssim_metric, **_ssim_record(self.ssim_metric)}
        out["lpips_dyn"] = {**lpips, "spatial": True}
        out.update(_region_records(self))
        inputs = {"gt_dtype": self.gt_dtype, "gt_resize": self.gt_resize, "render": self.render}
        return {m: {"convention": METRICS[m].convention, **record, **inputs} for m, record in out.items()}


def _region_records(protocol: "Protocol") -> dict[str, dict]:
    """The parameters of the region metrics (bench.metrics.regions): thresholds, the per-view pixel
    floor and the mask filter."""
    from bench.metrics import regions as R

    psnr = {"data_range": protocol.data_range, "mask_resize": protocol.mask_resize, "min_pixels": R.MIN_REGION_PX}
    out = {m: {**psnr, "region": r} for m, r in R.REGION_PSNR.items()}
    out["psnr_sharp"]["below_px"] = R.SHARP_PX
    out["psnr_blurred"]["above_px"] = R.BLURRED_PX
    out[R.FALSE_BLUR] = {"sharp_below_px": R.SHARP_PX, "kernel_above_px": R.FALSE_BLUR_PX,
                         "mask_resize": protocol.mask_resize, "min_pixels": R.MIN_REGION_PX}
    return out


def _ssim_record(metric: str) -> dict:
    """The explicit scikit-image arguments of an SSIM variant (window type spelled out)."""
    args = SSIM_VARIANTS[metric]
    window = {"window": "gaussian", "win_size": 11} if args["gaussian_weights"] else {"window": "uniform"}
    return {**window, **args}


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol(
            name="dyblurf",
            description="Stereo Blur, DyBluRF release: sharp right camera, full image (DyBluRF eval)",
            frames="all right-camera frames (inference_images/%05d.png), 24 per scene",
            source="DyBluRF evaluation_stereo.py, scikit-image 0.19 defaults",
            # The script reads the GT with cv2, resizes it as uint8 and divides by 255 afterwards,
            # scores the float render, and calls structural_similarity without data_range.
            gt_dtype="uint8",
            ssim_metric="ssim_r2",
        ),
        Protocol(
            name="deblur4dgs",
            description="Stereo Blur, Deblur4DGS release: sharp right camera, full image",
            frames="odd interleaved frames images_test[1::2]",
            source="Deblur4DGS run_compute_metrics.py, scikit-image 0.19.3 pinned",
            # It scores PNGs saved by the renderer, read back as float; SSIM without data_range.
            gt_dtype="uint8",
            render="png8",
            ssim_metric="ssim_r2",
        ),
        Protocol(
            name="d2rf",
            description="D2RF: sharp right camera, full image plus dynamic-region metrics (D2RF eval)",
            frames="every right frame (images/*_right.jpg)",
            source="D2RF evaluation script, structural_similarity(data_range=1.0)",
            # 8-bit GT resize and float render as in the DynamicNeRF-derived scripts [inferred].
            gt_dtype="uint8",
            dynamic=True,
        ),
        Protocol(
            name="synthetic",
            description="Synthetic scenes of this project: sharp held-out views, full image plus dynamic region",
            frames="all test views of the generated scene",
            source="this project: float GT and render, SSIM data range 1",
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
