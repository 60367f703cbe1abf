"""Evaluate a run from its saved test renders: no retraining, the dataset's protocol recorded.

``evaluate_run(run_dir)`` reads ``config.yaml`` (dataset, scene, data root), loads the scene's test
views through the data registry and compares them with ``renders/test/<name>.png``.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from bench import rundir
from bench.errors import BenchError
from bench.metrics import image as im
from bench.metrics.image import match_size
from bench.metrics import regions as region_metrics
from bench.metrics.protocols import PROTOCOLS, Protocol, get_protocol
from bench.metrics.registry import METRICS

DYNAMIC_METRICS = ("psnr_dyn", "ssim_dyn", "lpips_dyn")


def read_image(path: Path) -> np.ndarray:
    """(H,W,3) float32 RGB in [0,1] from an 8- or 16-bit image file (alpha dropped)."""
    return read_render(path)[0]


def read_render(path: Path) -> tuple[np.ndarray, int]:
    """(float32 (H,W,3) RGB in [0,1], bits per channel of the file: 8 or 16)."""
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise BenchError(f"{path}: not a readable image")
    if raw.ndim == 2:
        raw = np.repeat(raw[..., None], 3, axis=-1)
    bits = 16 if raw.dtype == np.uint16 else 8
    rgb = cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2RGB).astype(np.float32) / (65535.0 if bits == 16 else 255.0)
    return rgb, bits


def read_gt_8bit(path: Path, library: str = "cv2") -> np.ndarray:
    """(H,W,3) uint8 RGB as an evaluation script reads ground truth: ``cv2`` as ``cv2.imread`` with
    default flags, ``pil`` as ``PIL.Image.open`` (converted to RGB when the file holds another mode).
    The two decoders may differ on JPEG files, hence the protocol's own."""
    if library == "pil":
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as img:
                return np.asarray(img if img.mode == "RGB" else img.convert("RGB")).copy()
        except (OSError, UnidentifiedImageError):
            raise BenchError(f"{path}: not a readable ground-truth image") from None
    import cv2

    raw = cv2.imread(str(path))
    if raw is None:
        raise BenchError(f"{path}: not a readable ground-truth image")
    return np.ascontiguousarray(raw[..., ::-1])


def prepare_gt(gt: np.ndarray, height: int, width: int, protocol: Protocol) -> np.ndarray:
    """The float32 (height,width,3) GT the protocol scores: with ``gt_dtype=uint8`` an 8-bit image (a
    float one is quantised first) is resized as uint8 by the protocol's library and only then divided
    by 255; otherwise resized as float."""
    if protocol.gt_dtype == "uint8":
        gt8 = gt if gt.dtype == np.uint8 else im.quantise_8bit(gt)
        small = match_size(gt8, height, width, protocol.gt_resize, protocol.gt_library)
        return small.astype(np.float32) / 255.0
    return match_size(np.asarray(gt, dtype=np.float32), height, width, protocol.gt_resize)


def prepare_render(pred: np.ndarray, protocol: Protocol) -> np.ndarray:
    """The (H,W,3) render the protocol scores: as given (``float``) or as a saved 8-bit PNG read back
    (``png8``, quantised as the peer's writer does: protocol.render_quantise)."""
    return im.saved_image(pred, protocol.render_quantise) if protocol.render == "png8" else pred


def make_lpips(protocol: Protocol, device: str = "cpu", warn: bool = True):
    """(LPIPSMetric or None, reason when None). Prints a warning when the weights are missing, unless
    ``warn`` is False (a caller scoring many runs says it once for all of them)."""
    from bench.metrics import lpips_metric

    reason = lpips_metric.missing_reason(protocol.lpips_net, protocol.lpips_version)
    if reason is not None:
        if warn:
            print(f"warning: LPIPS not computed: {reason}", file=sys.stderr)
        return None, reason
    return _lpips(protocol.lpips_input, protocol.lpips_version, device, protocol.lpips_net), None


@functools.lru_cache(maxsize=4)
def _lpips(lpips_input: str, version: str, device: str, net: str):
    """The LPIPS network, built once per process and settings: `bench eval SWEEP` scores many runs."""
    from bench.metrics import lpips_metric

    return lpips_metric.LPIPSMetric(lpips_input, version, device=device, net=net)


def image_metrics(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None, protocol: Protocol,
                  lpips_fn=None) -> dict[str, float | None]:
    """Every metric of one (H,W,3) render against its GT, both as scored; mask (H,W) in {0,1} or None."""
    out: dict[str, float | None] = {"psnr": im.psnr(pred, gt, protocol.data_range)}
    headline_map = None
    for variant in im.SSIM_METRICS:
        value, smap = im.ssim_map(pred, gt, variant)
        out[variant] = value
        if variant == protocol.ssim_metric:
            headline_map = smap
    out["lpips"] = lpips_fn(pred, gt) if lpips_fn is not None else None
    if lpips_fn is None or lpips_fn.input_range == "unscaled":  # the protocol's LPIPS already is lpips_01
        out["lpips_01"] = out["lpips"]
    else:
        out["lpips_01"] = lpips_fn(pred, gt, input_range="unscaled")
    if protocol.dynamic and mask is not None:
        out["psnr_dyn"] = im.masked_psnr(pred, gt, mask, protocol.data_range)
        out["ssim_dyn"] = im.masked_mean(headline_map, mask)
        has_mask = mask.sum() > 0
        out["lpips_dyn"] = (im.masked_mean(lpips_fn.spatial_map(pred, gt), mask)
                            if lpips_fn is not None and has_mask else None)
    return out


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def evaluate_images(pairs: Iterable[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]],
                    protocol: Protocol, lpips_fn=None, lpips_missing: str | None = None,
                    render_bits: Iterable[int] = (), regions: region_metrics.RegionTruth | None = None,
                    regions_missing: str = region_metrics.NOT_SYNTHETIC) -> dict:
    """Metrics block for (name, pred (H,W,3) float, gt (H,W,3) float or uint8, mask (H,W) or None) tuples.

    The render and GT are brought to what the protocol scores (prepare_render, prepare_gt: size,
    dtype), masks resized with the protocol's filter. Aggregates are means over images (dynamic
    metrics over images whose mask is not empty, region metrics over those whose region has at least
    regions.MIN_REGION_PX pixels; infinite PSNR is skipped). render_bits: bit depths of the render
    files read (a list may be filled while ``pairs`` is consumed: it is read last), recorded under
    ``inputs``; empty for in-memory renders. regions: the scene's region ground truth
    (bench.metrics.regions; the block then gets a ``regions`` entry with per-view pixel counts and
    reasons), or None with ``regions_missing`` saying why. false_blur needs the run's training
    kernels: evaluate_run adds it.
    """
    per_image: dict[str, dict] = {}
    region_views: dict[str, dict] = {}
    any_mask = False
    for name, pred, gt, mask in pairs:
        h, w = pred.shape[:2]
        gt, pred = prepare_gt(gt, h, w, protocol), prepare_render(pred, protocol)
        if mask is not None:
            any_mask = True
            mask = (match_size(mask.astype(np.float32), h, w, protocol.mask_resize) > 0.5).astype(np.float32)
        per_image[name] = image_metrics(pred, gt, mask, protocol, lpips_fn)
        if regions is not None:
            values, region_views[name] = region_metrics.score_view(regions, name, pred, gt, protocol)
            per_image[name].update(values)
    if not per_image:
        raise BenchError("evaluation: no test images to evaluate")
    missing = _missing(protocol, lpips_fn, lpips_missing, any_mask)
    if regions is None:
        missing.update(dict.fromkeys(region_metrics.REGION_METRICS, regions_missing))
    else:
        missing[region_metrics.FALSE_BLUR] = region_metrics.NO_RUN_DIR  # evaluate_run replaces it from the run's training kernels
    aggregate = _aggregate(per_image, missing)
    for values in per_image.values():
        for m in METRICS:
            if m not in region_metrics.TRAIN_VIEW_METRICS:  # scored on training views, not on this test view
                values.setdefault(m, None)
    block = {"protocol": protocol.to_dict(), "conventions": protocol.conventions(),
             "inputs": {"render_bits": sorted(set(render_bits))}, "aggregate": aggregate,
             "per_image": per_image, "missing": missing}
    if regions is not None:
        block["regions"] = {"thresholds_px": region_metrics.thresholds(), "per_image": region_views, "per_train_view": {}}
    return block


def _aggregate(per_image: dict[str, dict], missing: dict[str, str]) -> dict[str, float | None]:
    """Mean over images of every metric not in ``missing``; a metric without any value joins ``missing``."""
    aggregate = {m: _mean(v.get(m) for v in per_image.values()) for m in METRICS if m not in missing}
    for m, value in list(aggregate.items()):
        if value is None:
            missing[m] = (region_metrics.NO_VIEW_SCORED if m in region_metrics.REGION_PSNR else
                          "no image with a defined value (empty masks or infinite PSNR)")
    aggregate.update({m: None for m in missing})
    return {m: aggregate[m] for m in METRICS}  # registry order, whatever was missing


def _missing(protocol: Protocol, lpips_fn, lpips_missing: str | None, any_mask: bool) -> dict[str, str]:
    missing: dict[str, str] = {}
    if lpips_fn is None:
        reason = lpips_missing or "LPIPS disabled"
        for m in ("lpips", "lpips_01", "lpips_dyn"):
            missing[m] = reason
    if not protocol.dynamic:
        for m in DYNAMIC_METRICS:
            missing[m] = f"protocol {protocol.name!r} has no dynamic-region metrics"
    elif not any_mask:
        for m in DYNAMIC_METRICS:
            missing[m] = "the scene has no test motion masks"
    return missing



def run_target(config: Mapping) -> dict:
    """dataset, scene, data_root and the identity fields of a run, read from the keys training writes
    at the top of config.yaml (bench.method.train); BenchError without a dataset and a scene."""
    target = {k: config.get(k) for k in ("dataset", "scene", "data_root", "method", "base_method", "seed")}
    if not target["dataset"] or not target["scene"]:
        raise BenchError(f"{rundir.CONFIG}: expected keys 'dataset' and 'scene'")
    return target


def _render_pairs(run_dir: Path, scene, protocol: Protocol, bits: list[int], renders: str = rundir.TEST_RENDERS):
    """(name, render, GT, mask) per test view of ``run_dir/renders``; the bit depth of each render
    file is appended to ``bits``."""
    renders = Path(run_dir) / renders
    masks = scene.test.motion_mask if protocol.dynamic else None
    for i, name in enumerate(scene.test.names):
        path = renders / f"{name}.png"
        if not path.is_file():
            raise BenchError(f"{path}: missing render of test view {name!r}")
        pred, depth = read_render(path)
        bits.append(depth)
        mask = masks[i].numpy() if masks is not None else None
        yield name, pred, _ground_truth(scene.test.images, i, protocol), mask


def _ground_truth(images, i: int, protocol: Protocol) -> np.ndarray:
    """Test image ``i``: the source file read as 8-bit at its own size by the protocol's library for
    ``gt_dtype=uint8`` (the resize happens in prepare_gt), else the loader's float image."""
    if protocol.gt_dtype == "uint8" and images.sources is not None:
        return read_gt_8bit(images.sources[i], protocol.gt_library)
    return images[i].numpy()


def run_protocol(run_dir: Path, dataset_protocol: str, name: str | None = None) -> Protocol:
    """The protocol a run is scored with: ``name`` when given (bench eval --protocol), else the one
    its sweep planned (job.json ``protocol``, the sweep key), else its dataset's own. A name that is
    no protocol is a BenchError listing the known ones."""
    job = Path(run_dir) / rundir.JOB
    planned = (rundir.read_json(job) or {}).get("protocol")
    if name is None and planned is not None and planned not in PROTOCOLS:
        raise BenchError(f"{job}: protocol {planned!r}: unknown; allowed: {', '.join(PROTOCOLS)}")
    return get_protocol(name or planned or dataset_protocol)


def _scene_layout(spec, scene: str) -> str | None:
    """The on-disk layout of ``scene`` of dataset ``spec`` (a synthetic dataset names it per scene;
    None when the spec does not say)."""
    layout = next((getattr(s, "layout", None) for s in spec.scenes if s.name == scene), None)
    return layout or getattr(spec, "layout", None)


@dataclass
class RunEvaluation:
    """What scoring a run's renders needs, loaded once for all its evaluation modes: its config,
    target (run_target), protocol, scene, LPIPS network (or None with ``lpips_missing``) and region
    ground truth (or None with ``regions_missing``)."""

    run_dir: Path
    config: dict
    target: dict
    protocol: Protocol
    scene: object
    lpips_fn: object
    lpips_missing: str | None
    truth: object
    regions_missing: str


def prepare_evaluation(run_dir, lpips_input: str | None = None, device: str = "cpu",
                       protocol: str | None = None, warn: bool = True) -> RunEvaluation:
    """Load what scoring ``run_dir`` needs (arguments as ``evaluate_run``; ``warn``: as ``make_lpips``)."""
    from bench.data.registry import get_dataset, load_scene

    run_dir = Path(run_dir)
    config = rundir.read_config(run_dir)
    target = run_target(config)
    spec = get_dataset(target["dataset"])
    chosen = run_protocol(run_dir, spec.protocol, protocol)
    chosen = chosen.for_layout(_scene_layout(spec, target["scene"])).with_lpips_input(lpips_input)
    scene = load_scene(target["dataset"], target["scene"], data_root=target["data_root"])
    lpips_fn, reason = make_lpips(chosen, device, warn)
    truth, why_not = region_metrics.region_truth(scene)
    return RunEvaluation(run_dir, config, target, chosen, scene, lpips_fn, reason, truth,
                         why_not or region_metrics.NOT_SYNTHETIC)


def score_renders(ev: RunEvaluation, renders: str = rundir.TEST_RENDERS, progress: bool = False) -> dict:
    """The metrics block of the test renders ``ev.run_dir/renders`` (docs/datasets.md §Results)."""
    bits: list[int] = []
    pairs = _render_pairs(ev.run_dir, ev.scene, ev.protocol, bits, renders)
    if progress:
        pairs = _with_progress(pairs, len(ev.scene.test.names), f"eval {ev.target['scene']}")
    block = evaluate_images(pairs, ev.protocol, ev.lpips_fn, ev.lpips_missing, render_bits=bits, regions=ev.truth,
                            regions_missing=ev.regions_missing)
    if ev.truth is not None:
        region_metrics.add_false_blur(block, ev.run_dir, ev.truth, ev.protocol.mask_resize, ev.config)
    return block


def evaluate_run(run_dir, lpips_input: str | None = None, device: str = "cpu", progress: bool = False,
                 renders: str = rundir.TEST_RENDERS, protocol: str | None = None) -> dict:
    """Recompute the metrics block of a run from ``renders/*.png`` (docs/datasets.md §Results).

    lpips_input: ``scaled`` / ``unscaled`` overrides the protocol's LPIPS input range. renders: the
    test renders scored, relative to the run directory (an evaluation mode's, bench.metrics.modes).
    protocol: the protocol's name (run_protocol says which when None).
    """
    return score_renders(prepare_evaluation(run_dir, lpips_input, device, protocol), renders, progress)


def _with_progress(items, total: int, label: str):
    from rich.progress import track

    yield from track(items, total=total, description=label, transient=True)
