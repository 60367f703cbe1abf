"""Evaluate a run from its saved test renders: no retraining, the dataset's protocol recorded.

``evaluate_run(run_dir)`` reads ``config.yaml`` (dataset, scene, data root), loads the scene's test
views through the data registry and compares them with ``renders/test/<name>.png``.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from bench import rundir
from bench.errors import BenchError
from bench.metrics import image as im
from bench.metrics.protocols import Protocol, get_protocol
from bench.metrics.registry import METRICS

DYNAMIC_METRICS = ("psnr_dyn", "ssim_dyn", "lpips_dyn")


def read_image(path: Path) -> np.ndarray:
    """(H,W,3) float32 RGB in [0,1] from an 8- or 16-bit image file (alpha dropped)."""
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise BenchError(f"{path}: not a readable image")
    if raw.ndim == 2:
        raw = np.repeat(raw[..., None], 3, axis=-1)
    scale = 65535.0 if raw.dtype == np.uint16 else 255.0
    return (cv2.cvtColor(raw[..., :3], cv2.COLOR_BGR2RGB).astype(np.float32) / scale)


def match_size(gt: np.ndarray, height: int, width: int, interpolation: str) -> np.ndarray:
    """Resize an (H,W[,C]) GT image or mask to the render size with the protocol's OpenCV filter."""
    import cv2

    if gt.shape[:2] == (height, width):
        return gt
    return cv2.resize(gt, (width, height), interpolation=getattr(cv2, interpolation))


def make_lpips(protocol: Protocol, device: str = "cpu"):
    """(LPIPSMetric or None, reason when None). Prints a warning when the weights are missing."""
    from bench.metrics import lpips_metric

    reason = lpips_metric.missing_reason(protocol.lpips_net, protocol.lpips_version)
    if reason is not None:
        print(f"warning: LPIPS not computed: {reason}", file=sys.stderr)
        return None, reason
    return lpips_metric.LPIPSMetric(protocol.lpips_input, protocol.lpips_version, device=device), None


def image_metrics(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray | None, protocol: Protocol,
                  lpips_fn=None) -> dict[str, float | None]:
    """Every metric of one (H,W,3) render against its GT; mask (H,W) in {0,1} or None."""
    out: dict[str, float | None] = {"psnr": im.psnr(pred, gt, protocol.data_range)}
    ssim_full = None
    for variant in ("ssim", "ssim_gauss"):
        value, smap = im.ssim_map(pred, gt, variant, protocol.data_range)
        out[variant] = value
        if variant == protocol.ssim_metric:
            ssim_full = smap
    out["lpips"] = lpips_fn(pred, gt) if lpips_fn is not None else None
    if protocol.dynamic and mask is not None:
        out["psnr_dyn"] = im.masked_psnr(pred, gt, mask, protocol.data_range)
        out["ssim_dyn"] = im.masked_mean(ssim_full, mask)
        has_mask = mask.sum() > 0
        out["lpips_dyn"] = (im.masked_mean(lpips_fn.spatial_map(pred, gt), mask)
                            if lpips_fn is not None and has_mask else None)
    return out


def _mean(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def evaluate_images(pairs: Iterable[tuple[str, np.ndarray, np.ndarray, np.ndarray | None]],
                    protocol: Protocol, lpips_fn=None, lpips_missing: str | None = None) -> dict:
    """Metrics block for (name, pred (H,W,3), gt (H,W,3), mask (H,W) or None) tuples.

    GT and masks are resized to the render size with the protocol's filters. Aggregates are means
    over images (dynamic metrics over images whose mask is not empty; infinite PSNR is skipped).
    """
    per_image: dict[str, dict] = {}
    any_mask = False
    for name, pred, gt, mask in pairs:
        h, w = pred.shape[:2]
        gt = match_size(gt, h, w, protocol.gt_resize)
        if mask is not None:
            any_mask = True
            mask = (match_size(mask.astype(np.float32), h, w, protocol.mask_resize) > 0.5).astype(np.float32)
        per_image[name] = image_metrics(pred, gt, mask, protocol, lpips_fn)
    if not per_image:
        raise BenchError("evaluation: no test images to evaluate")
    missing = _missing(protocol, lpips_fn, lpips_missing, any_mask)
    names = [m for m in METRICS if m not in missing]
    aggregate = {m: _mean(v.get(m) for v in per_image.values()) for m in names}
    for m, value in list(aggregate.items()):
        if value is None:
            missing[m] = "no image with a defined value (empty masks or infinite PSNR)"
    aggregate.update({m: None for m in missing})
    for values in per_image.values():
        for m in METRICS:
            values.setdefault(m, None)
    return {"protocol": protocol.to_dict(), "aggregate": aggregate, "per_image": per_image, "missing": missing}


def _missing(protocol: Protocol, lpips_fn, lpips_missing: str | None, any_mask: bool) -> dict[str, str]:
    missing: dict[str, str] = {}
    if lpips_fn is None:
        reason = lpips_missing or "LPIPS disabled"
        missing["lpips"] = reason
        missing["lpips_dyn"] = reason
    if not protocol.dynamic:
        for m in DYNAMIC_METRICS:
            missing[m] = f"protocol {protocol.name!r} has no dynamic-region metrics"
    elif not any_mask:
        for m in DYNAMIC_METRICS:
            missing[m] = "the scene has no test motion masks"
    return missing


def read_config(run_dir: Path) -> dict:
    """The run's config.yaml as a dict."""
    import yaml

    path = Path(run_dir) / rundir.CONFIG
    if not path.is_file():
        raise BenchError(f"{path}: missing; expected the run's resolved config (is {run_dir} a run directory?)")
    with open(path) as f:
        config = yaml.safe_load(f) or {}
    if not isinstance(config, dict):
        raise BenchError(f"{path}: expected a mapping")
    return config


def run_target(config: Mapping) -> dict:
    """dataset, scene, data_root and identity fields of a run from its config (top level or ``run:``/``data:``)."""
    sections = [config] + [config[k] for k in ("run", "data") if isinstance(config.get(k), Mapping)]

    def find(*keys):
        for section in sections:
            for key in keys:
                if section.get(key) is not None:
                    return section[key]
        return None

    target = {"dataset": find("dataset"), "scene": find("scene"), "data_root": find("data_root", "root"),
              "method": find("method", "variant"), "base_method": find("base_method", "base"),
              "seed": find("seed")}
    if not target["dataset"] or not target["scene"]:
        raise BenchError(f"{rundir.CONFIG}: expected keys 'dataset' and 'scene'")
    return target


def _render_pairs(run_dir: Path, scene, protocol: Protocol):
    renders = Path(run_dir) / rundir.TEST_RENDERS
    masks = scene.test.motion_mask if protocol.dynamic else None
    for i, name in enumerate(scene.test.names):
        path = renders / f"{name}.png"
        if not path.is_file():
            raise BenchError(f"{path}: missing render of test view {name!r}")
        gt = scene.test.images[i].numpy()
        mask = masks[i].numpy() if masks is not None else None
        yield name, read_image(path), gt, mask


def evaluate_run(run_dir, lpips_input: str | None = None, device: str = "cpu", progress: bool = False) -> dict:
    """Recompute the metrics block of a run from ``renders/test/*.png`` (docs/datasets.md §Results).

    lpips_input: ``scaled`` / ``unscaled`` overrides the protocol's LPIPS input range.
    """
    from bench.data.registry import get_dataset, load_scene

    run_dir = Path(run_dir)
    target = run_target(read_config(run_dir))
    spec = get_dataset(target["dataset"])
    protocol = get_protocol(spec.protocol).with_lpips_input(lpips_input)
    scene = load_scene(target["dataset"], target["scene"], data_root=target["data_root"])
    lpips_fn, reason = make_lpips(protocol, device)
    pairs = _render_pairs(run_dir, scene, protocol)
    if progress:
        pairs = _with_progress(pairs, len(scene.test.names), f"eval {target['scene']}")
    return evaluate_images(pairs, protocol, lpips_fn, reason)


def _with_progress(items, total: int, label: str):
    from rich.progress import track

    yield from track(items, total=total, description=label, transient=True)
