"""Evaluation protocols, one per peer evaluation script, recorded in every results file.

A protocol fixes which test frames count, how ground truth is read and brought to the render size,
whether the render is scored as float or as the 8-bit image a script saved, whether dynamic-region
(motion-mask) metrics are computed, which SSIM variant is the headline "SSIM", and the LPIPS network
and input range. Each peer protocol reproduces what that peer's public evaluation script computes
(docs/datasets.md §Protocols); its ``source`` names the script and function. A run is evaluated with
its dataset's protocol unless another is named (``bench eval --protocol``, the sweep key
``protocol``). The loaders already select the dataset's test frames (the Scene's ``test`` views), so
``frames`` documents that selection.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from bench.errors import BenchError
from bench.metrics.image import QUANTISE, SSIM_3DGS, SSIM_3DGS_ARGS, SSIM_METRICS, SSIM_VARIANTS
from bench.metrics.registry import METRICS

LPIPS_INPUTS = ("scaled", "unscaled")
LPIPS_NETS = ("alex", "vgg")
GT_DTYPES = ("uint8", "float32")
RENDER_INPUTS = ("float", "png8")
# The resize filters each GT library is asked for by name (cv2 constants; PIL Image.Resampling members).
GT_FILTERS = {"cv2": ("INTER_AREA", "INTER_NEAREST", "INTER_LINEAR", "INTER_CUBIC", "INTER_LANCZOS4"),
              "pil": ("BICUBIC", "BILINEAR", "NEAREST", "BOX", "HAMMING", "LANCZOS")}


@dataclass(frozen=True)
class Protocol:
    """name: registry key. frames: which test views are evaluated. source: the peer script and
    function reproduced. gt_dtype: ``uint8`` reads the GT file as 8-bit and resizes it as 8-bit before
    /255, ``float32`` resizes the float image. gt_library / gt_resize: who reads and resizes the GT
    (``cv2``: cv2.imread, cv2.resize; ``pil``: PIL.Image.open, Image.resize, 8-bit only) and the
    filter, named explicitly (a cv2 constant or a PIL Image.Resampling member). mask_resize: OpenCV
    filter of the masks. render: ``float`` scores the render as rendered, ``png8`` as the 8-bit PNG a
    script saves and reads back /255, quantised by ``render_quantise`` (``round``, or ``floor``: NeRF
    code's truncating ``to8b``). dynamic: compute masked metrics with the test motion masks.
    ssim_metric: the metric shown as "SSIM" in tables (one of bench.metrics.image.SSIM_METRICS).
    lpips_net / lpips_version: LPIPS backbone and linear-layer version; lpips_net_by_layout:
    (layout, net) pairs where the peer picks the network by the data layout (for_layout applies
    them). lpips_input: ``scaled`` maps [0,1] to [-1,1] as the lpips package expects, ``unscaled``
    feeds [0,1]. data_range: PSNR's data range. notes: what the peer code leaves open.
    """

    name: str
    description: str
    frames: str
    source: str = ""
    gt_dtype: str = "float32"
    gt_library: str = "cv2"
    gt_resize: str = "INTER_AREA"
    mask_resize: str = "INTER_NEAREST"
    render: str = "float"
    render_quantise: str = "round"
    dynamic: bool = False
    ssim_metric: str = "ssim"
    lpips_net: str = "alex"
    lpips_net_by_layout: tuple[tuple[str, str], ...] = ()
    lpips_version: str = "0.1"
    lpips_input: str = "scaled"
    data_range: float = 1.0
    notes: str = ""

    def __post_init__(self):
        for key, value, allowed in self._choices():
            if value not in allowed:
                raise BenchError(f"protocol {self.name!r}: {key}={value!r}, expected one of {', '.join(allowed)}")
        if self.gt_library == "pil" and self.gt_dtype != "uint8":  # PIL resizes the 8-bit image the file holds
            raise BenchError(f"protocol {self.name!r}: gt_library='pil' needs gt_dtype='uint8', "
                             f"got {self.gt_dtype!r}")

    def _choices(self):
        """(field, value, allowed values) of every field with a closed set of values."""
        nets = [("lpips_net", self.lpips_net, LPIPS_NETS)]
        nets += [(f"lpips_net_by_layout[{layout!r}]", net, LPIPS_NETS) for layout, net in self.lpips_net_by_layout]
        return [("gt_dtype", self.gt_dtype, GT_DTYPES), ("gt_library", self.gt_library, tuple(GT_FILTERS)),
                ("gt_resize", self.gt_resize, GT_FILTERS.get(self.gt_library, ())),
                ("render", self.render, RENDER_INPUTS), ("render_quantise", self.render_quantise, QUANTISE),
                ("ssim_metric", self.ssim_metric, SSIM_METRICS), *nets,
                ("lpips_input", self.lpips_input, LPIPS_INPUTS)]

    def to_dict(self) -> dict:
        return asdict(self)

    def with_lpips_input(self, lpips_input: str | None) -> "Protocol":
        """A copy with another LPIPS input range (None keeps this one)."""
        if lpips_input is None:
            return self
        if lpips_input not in LPIPS_INPUTS:
            raise BenchError(f"--lpips-input {lpips_input!r}: expected one of {', '.join(LPIPS_INPUTS)}")
        return replace(self, lpips_input=lpips_input)

    def for_layout(self, layout: str | None) -> "Protocol":
        """This protocol for a scene stored in ``layout``: its LPIPS network where lpips_net_by_layout
        names one for that layout (the peer picked it by the data it was given), itself otherwise."""
        net = dict(self.lpips_net_by_layout).get(layout)
        return self if net is None or net == self.lpips_net else replace(self, lpips_net=net)

    def conventions(self) -> dict[str, dict]:
        """metric -> how this protocol computes it (recorded in results.json next to the values)."""
        lpips = {"net": self.lpips_net, "version": self.lpips_version, "input": self.lpips_input}
        out = {"psnr": {"data_range": self.data_range}}
        out.update({m: {**_ssim_record(m), "headline": m == self.ssim_metric} for m in SSIM_METRICS})
        out["lpips"] = lpips
        out["lpips_01"] = {**lpips, "input": "unscaled"}
        out["psnr_dyn"] = {"data_range": self.data_range}
        out["ssim_dyn"] = {"of": self.ssim_metric, **_ssim_record(self.ssim_metric)}
        out["lpips_dyn"] = {**lpips, "spatial": True}
        out.update(_region_records(self))
        png8 = {"render_quantise": self.render_quantise} if self.render == "png8" else {}
        inputs = {"gt_dtype": self.gt_dtype, "gt_library": self.gt_library, "gt_resize": self.gt_resize,
                  "render": self.render, **png8}
        return {m: {"convention": METRICS[m].convention, **record, **inputs} for m, record in out.items()}


def _region_records(protocol: "Protocol") -> dict[str, dict]:
    """The parameters of the region metrics (bench.metrics.regions): thresholds, the per-view pixel
    floor and the mask filter."""
    from bench.metrics import regions

    psnr = {"data_range": protocol.data_range, "mask_resize": protocol.mask_resize,
            "min_pixels": regions.MIN_REGION_PX}
    out = {m: {**psnr, "region": r} for m, r in regions.REGION_PSNR.items()}
    out["psnr_sharp"]["below_px"] = regions.SHARP_PX
    out["psnr_blurred"]["above_px"] = regions.BLURRED_PX
    out[regions.FALSE_BLUR] = {"sharp_below_px": regions.SHARP_PX, "kernel_above_px": regions.FALSE_BLUR_PX,
                               "mask_resize": protocol.mask_resize, "min_pixels": regions.MIN_REGION_PX}
    return out


def _ssim_record(metric: str) -> dict:
    """The explicit arguments of an SSIM variant (window type spelled out): scikit-image's, or for
    ssim_3dgs those of the numpy/scipy reproduction of 3DGS's SSIM."""
    if metric == SSIM_3DGS:
        return {"window": "gaussian", **SSIM_3DGS_ARGS, "implementation": "3DGS utils/loss_utils.py ssim"}
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
            source="DyBluRF evaluation_stereo.py evaluation(), scikit-image 0.19 defaults",
            # The script reads the GT with cv2, resizes it as uint8 and divides by 255 afterwards,
            # scores the float render, and calls structural_similarity without data_range.
            gt_dtype="uint8",
            ssim_metric="ssim_r2",
        ),
        Protocol(
            name="deblur4dgs",
            description="Stereo Blur, Deblur4DGS release: sharp right camera, full image",
            frames="odd interleaved frames images_test[1::2]",
            source="Deblur4DGS run_compute_metrics.py scene_metrics(), scikit-image 0.19.3 pinned; the PNGs "
                   "it reads are written by flow3d/validator.py validate_imgs_with_optimization()",
            # It scores the PNGs the validator wrote as uint8(x * 255), a truncation, read back as
            # float; SSIM without data_range.
            gt_dtype="uint8",
            render="png8",
            render_quantise="floor",
            ssim_metric="ssim_r2",
        ),
        Protocol(
            name="d2rf",
            description="D2RF: sharp right camera, full image plus dynamic-region metrics (D2RF eval)",
            frames="every right frame (images/*_right.jpg)",
            source="D2RF eval.py evaluation(); the PNGs it reads are written by run_nerf.py with "
                   "run_nerf_helpers.py to8b",
            # evaluation() reads the GT with cv2.imread, resizes it as uint8 with cv2.INTER_AREA and
            # divides by 255; it scores the render read back (cv2.imread /255) from the PNG that
            # run_nerf.py wrote with to8b = uint8(255 * clip(x)), a truncation; compare_ssim with
            # channel_axis=2, data_range=1.0 (7x7 uniform window); LPIPS alex v0.1 on im2tensor's
            # x / 0.5 - 1, i.e. [-1, 1].
            gt_dtype="uint8",
            render="png8",
            render_quantise="floor",
            dynamic=True,
        ),
        Protocol(
            name="dydeblur",
            description="The seed paper's public code (dydeblur train.py): full image, float render, GT "
                        "resized by PIL, LPIPS on [0,1]",
            frames="the dataset's test views (dydeblur's readers take every right-camera frame)",
            source="dydeblur scene/dataset_readers.py readD2RFCameras, readDyBluRFCameras, "
                   "readDeblur4DGSCameras (GT Image.resize with PIL's default filter) and train.py "
                   "training() / training_report() (use_skimage_ssim=True: structural_similarity("
                   "channel_axis=-1, data_range=1); LPIPS alex v0.1, lpips.LPIPS(net='vgg') on the "
                   "'dense' DyBluRF data, both fed [0,1]); metrics.py evaluate() reports "
                   "utils/loss_utils.py ssim() instead (ssim_3dgs)",
            # PIL's default for RGB images is BICUBIC since Pillow 7.0 (NEAREST before); named here so
            # that no Pillow default decides it.
            gt_dtype="uint8",
            gt_library="pil",
            gt_resize="BICUBIC",
            ssim_metric="ssim",
            lpips_net_by_layout=(("dyblurf", "vgg"),),
            lpips_input="unscaled",
            notes="Which SSIM produced the paper's table is not established: train.py's test "
                  "evaluation (the PSNR/SSIM/LPIPS it saves) uses scikit-image SSIM (ssim, the "
                  "headline: the script whose per-layout LPIPS network the paper's numbers follow), "
                  "metrics.py the 3DGS Gaussian SSIM (ssim_3dgs); both are recorded.",
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
