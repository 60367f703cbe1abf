"""Region metrics of the synthetic benchmark: scores on the pixels one method component addresses.

The scene's region ground truth (``scene.gt.regions``, bench.data; written by
bench.data.synth.regions, which defines the keys and thresholds) holds, per training frame k at the
training resolution (N frames, H, W):

- ``unseen`` (N,H,W) bool: test-view pixels of frame k whose surface no training frame sees;
- ``emerging`` (N,H,W) bool: dynamic test-view pixels whose surface the canonical frame does not show;
- ``test_blur_rms`` (N,H,W) float: the test (right) camera's own RMS blur radius (px) under frame k's
  exposure and focus. It stands in for the issue's "sharp / blurred in the same-instant training
  frame": that frame sees the instant from another pose, so its pixels do not line up with the test
  view's;
- ``train_blur_rms`` (N,H,W) float: RMS blur radius (px) of each pixel of training frame k.

A test view is matched to its frame by ``scene.test.frame_index``, a training view by
``scene.train.frame_index``. Masks are resized to the render size with the protocol's
``mask_resize`` (as the motion mask is); blur radii are resized the same way and rescaled to the
render's pixels before they are thresholded.

A region with fewer than MIN_REGION_PX pixels in a view (at the render resolution; 0 = empty)
gives no value there (None, with the reason recorded), never 0; its pixel count is recorded all the
same. Why 64 (an 8 x 8 patch): a PSNR is 10 log10 of a mean of squared errors; over n pixels of 3
channels with independent errors its standard deviation is about 4.34 sqrt(2 / (3 n)) dB, 0.44 dB at
n = 64 against 1.1 dB at n = 11, and neighbouring errors are correlated, so the effective count is
lower still. A handful of pixels also reaches an infinite PSNR (zero error), which the mean would
drop without a word. The same floor holds for false_blur (a share of 11 pixels moves in 9-point
steps). The run's aggregate is the mean over views with a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.data.synth.regions import BLURRED_PX, REGION_DTYPES, REGION_KEYS, SHARP_PX
from bench.errors import BenchError
from bench.metrics import image as im

# A predicted kernel blurs where a GT pixel with that radius would not count as sharp.
FALSE_BLUR_PX = SHARP_PX
MIN_REGION_PX = 64  # pixels a region needs in a view for a value there (module doc)

# metric -> the region of the test view it scores (masked PSNR, as psnr_dyn)
REGION_PSNR = {"psnr_unseen": "unseen", "psnr_emerging": "emerging", "psnr_sharp": "sharp",
               "psnr_blurred": "blurred"}
FALSE_BLUR = "false_blur"
REGION_METRICS = (*REGION_PSNR, FALSE_BLUR)
TRAIN_VIEW_METRICS = (FALSE_BLUR,)  # scored on training views: absent from a test view's per_image entry

# The region metric(s) each ablated component addresses (the report's diagnostics table): one place, as data.
COMPONENT_REGIONS: dict[str, tuple[str, ...]] = {
    "no_unseen_views": ("psnr_unseen",),
    "unseen_matched_steps": ("psnr_unseen",),
    "no_densification": ("psnr_emerging",),
    "no_sparsity": ("psnr_sharp", FALSE_BLUR),
    "no_blur": ("psnr_blurred",),
}

_REGION_TEXT = {"unseen": "unseen", "emerging": "emerging", "sharp": f"sharp (RMS blur < {SHARP_PX} px)",
                "blurred": f"blurred (RMS blur > {BLURRED_PX} px)"}
NOT_SYNTHETIC = "no region ground truth: not a synthetic scene"
STALE = "generated before region masks; regenerate with bench data synth --force"
NO_RUN_DIR = "not computed: needs the run's saved training kernels (evaluate_run)"
NO_VIEW_SCORED = f"the region is empty or under {MIN_REGION_PX} pixels in every view"


@dataclass
class RegionTruth:
    """Region ground truth of one scene. maps: REGION_KEYS -> (N,H,W) numpy arrays at the training
    resolution; test_frame / train_frame: view name -> frame index into the maps."""

    scene: str
    maps: dict[str, np.ndarray]
    test_frame: dict[str, int]
    train_frame: dict[str, int]


def region_truth(scene) -> tuple[RegionTruth | None, str | None]:
    """(RegionTruth, None) for a scene with region ground truth, else (None, why not).

    Reads ``scene.gt.regions`` with getattr: GroundTruth from before the field existed has none.
    BenchError naming the scene and key when a map is absent or mis-shaped.
    """
    if scene.gt is None:
        return None, NOT_SYNTHETIC
    regions = getattr(scene.gt, "regions", None)
    if regions is None:
        return None, STALE
    where = f"{scene.dataset}/{scene.name} region ground truth"
    maps = {key: _region_map(regions, key, where) for key in REGION_KEYS}
    shapes = {m.shape for m in maps.values()}
    if len(shapes) != 1:
        raise BenchError(f"{where}: expected one (N,H,W) shape for {', '.join(REGION_KEYS)}, got {sorted(shapes)}")
    n = next(iter(shapes))[0]
    test = _frames(scene.test, n, where, "test")
    train = _frames(scene.train, n, where, "training")
    return RegionTruth(f"{scene.dataset}/{scene.name}", maps, test, train), None


def _region_map(regions, key: str, where: str) -> np.ndarray:
    """One (N,H,W) map of the regions dict as numpy (bool masks stay bool, radii float64)."""
    if key not in regions or regions[key] is None:
        raise BenchError(f"{where}: missing key {key!r}; expected {', '.join(REGION_KEYS)}")
    value = regions[key]
    arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    if arr.ndim != 3:
        raise BenchError(f"{where}: key {key!r} expected (N,H,W), got shape {arr.shape}")
    return arr.astype(bool) if REGION_DTYPES[key] is np.bool_ else arr.astype(np.float64)


def _frames(views, n: int, where: str, kind: str) -> dict[str, int]:
    """name -> frame index of each view; BenchError when a frame lies outside the N maps."""
    frames = {name: int(k) for name, k in zip(views.names, views.frame_index.tolist())}
    bad = [name for name, k in frames.items() if not 0 <= k < n]
    if bad:
        raise BenchError(f"{where}: {kind} view {bad[0]!r} has a frame index outside the {n} frames of the maps")
    return frames


# ---------------------------------------------------------------- test views: region PSNRs

def _resize(arr: np.ndarray, h: int, w: int, interpolation: str) -> np.ndarray:
    """(H0,W0) float32 map at (h,w) with the protocol's OpenCV filter (lazy import: scikit-image)."""
    from bench.metrics.image import match_size

    return match_size(np.ascontiguousarray(arr, dtype=np.float32), h, w, interpolation)


def _resized_mask(mask: np.ndarray, h: int, w: int, interpolation: str) -> np.ndarray:
    """(H0,W0) bool -> (h,w) bool, resized as the motion mask is (float, then > 0.5)."""
    return _resize(mask, h, w, interpolation) > 0.5


def resized_radius(rms: np.ndarray, h: int, w: int, interpolation: str) -> np.ndarray:
    """(H0,W0) RMS radius in px of the maps -> (h,w) float32 in px of the target (radii scale with width).

    The one resize of GT radii: the report's blur figures call it too. interpolation: an OpenCV
    flag name such as "INTER_AREA".
    """
    return _resize(rms, h, w, interpolation) * (w / rms.shape[1])


def view_masks(truth: RegionTruth, name: str, h: int, w: int, interpolation: str) -> dict[str, np.ndarray]:
    """region -> (h,w) bool mask of test view ``name`` at the render size (keys: REGION_PSNR values)."""
    k = truth.test_frame[name]
    rms = resized_radius(truth.maps["test_blur_rms"][k], h, w, interpolation)
    return {"unseen": _resized_mask(truth.maps["unseen"][k], h, w, interpolation),
            "emerging": _resized_mask(truth.maps["emerging"][k], h, w, interpolation),
            "sharp": rms < SHARP_PX, "blurred": rms > BLURRED_PX}


def too_few(n: int) -> str | None:
    """Why a region of ``n`` pixels in one view gives no value (empty, or under MIN_REGION_PX); None if it may."""
    if n == 0:
        return "empty region"
    return f"too few pixels (n < {MIN_REGION_PX})" if n < MIN_REGION_PX else None


def region_psnrs(pred: np.ndarray, gt: np.ndarray, masks: dict[str, np.ndarray],
                 data_range: float = 1.0) -> tuple[dict, dict, dict]:
    """(values, pixels, missing) of one view: masked PSNR per REGION_PSNR metric over its (H,W) mask.

    pred, gt: (H,W,C) as scored. values: metric -> dB, or None for a region under MIN_REGION_PX
    pixels; pixels: region -> count (recorded whatever it is); missing: metric -> reason, for the
    metrics that are None.
    """
    values, pixels, missing = {}, {}, {}
    for metric, region in REGION_PSNR.items():
        mask = masks[region]
        pixels[region] = int(mask.sum())
        why = too_few(pixels[region])
        values[metric] = None if why else im.masked_psnr(pred, gt, mask.astype(np.float32), data_range)
        if why:
            missing[metric] = f"{why}: {pixels[region]} {_REGION_TEXT[region]} pixels in this view"
    return values, pixels, missing


def score_view(truth: RegionTruth, name: str, pred: np.ndarray, gt: np.ndarray, protocol) -> tuple[dict, dict]:
    """(metric values for per_image, {"pixels", "missing"} for the regions block) of one test view."""
    h, w = pred.shape[:2]
    values, pixels, missing = region_psnrs(pred, gt, view_masks(truth, name, h, w, protocol.mask_resize),
                                           protocol.data_range)
    return values, {"pixels": pixels, "missing": missing}


# ---------------------------------------------------------------- training views: false blur

def kernel_rms_radius(kernels: np.ndarray) -> np.ndarray:
    """(H,W,K,K) kernels -> (H,W) RMS radius in pixels about each kernel's centroid (square root of
    the second moment; a delta gives 0, a uniform disc of radius R about R / sqrt(2))."""
    k = kernels.astype(np.float64)
    k = k / np.clip(k.sum(axis=(-2, -1), keepdims=True), 1e-12, None)
    off = np.arange(k.shape[-1]) - (k.shape[-1] - 1) / 2
    rows, cols = k.sum(-1), k.sum(-2)  # marginals over x and over y: (H,W,K)
    my, mx = (rows * off).sum(-1), (cols * off).sum(-1)
    var = (rows * off**2).sum(-1) - my**2 + (cols * off**2).sum(-1) - mx**2
    return np.sqrt(np.clip(var, 0, None))


def false_blur_share(pred_rms: np.ndarray, sharp: np.ndarray) -> float | None:
    """Percentage of the sharp pixels whose predicted RMS radius exceeds FALSE_BLUR_PX; None under
    MIN_REGION_PX sharp pixels (too_few).

    pred_rms, sharp: (H,W) float px and bool.
    """
    n = int(sharp.sum())
    return None if too_few(n) else float(100.0 * (pred_rms[sharp] > FALSE_BLUR_PX).sum() / n)


def train_view_false_blur(truth: RegionTruth, name: str, kernels: np.ndarray, interpolation: str) -> dict:
    """{"false_blur", "pixels": {"sharp"}, "missing"} of training view ``name`` from its (H,W,K,K) kernels."""
    pred_rms = kernel_rms_radius(kernels)
    h, w = pred_rms.shape
    sharp = resized_radius(truth.maps["train_blur_rms"][truth.train_frame[name]], h, w, interpolation) < SHARP_PX
    n = int(sharp.sum())
    value = false_blur_share(pred_rms, sharp)
    missing = {} if value is not None else {FALSE_BLUR: f"{too_few(n)}: {n} {_REGION_TEXT['sharp']} pixels"}
    return {FALSE_BLUR: value, "pixels": {"sharp": n}, "missing": missing}


def _read_kernels(path: Path) -> np.ndarray:
    """(H,W,K,K) kernels of a ``*_kernels.npz``; BenchError naming the file and key otherwise."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if "kernels" not in z.files:
                raise BenchError(f"{path}: missing key 'kernels'; expected (H,W,K,K) predicted kernels")
            kernels = z["kernels"]
    except (OSError, ValueError) as err:
        raise BenchError(f"{path}: not a readable .npz archive ({err})") from None
    if kernels.ndim != 4 or kernels.shape[2] != kernels.shape[3]:
        raise BenchError(f"{path}: key 'kernels' expected (H,W,K,K), got shape {kernels.shape}")
    return kernels


def no_kernels_reason(config: dict) -> str:
    """Why a run saved no training kernels; a model without blur kernels is recorded as missing, not 0:
    "predicts no blur" would flatter it on a metric that counts wrongly predicted blur."""
    blur = ((config or {}).get("config") or {}).get("blur") or {}
    if blur.get("enabled") is False:
        return "no blur model (blur.enabled=false): it predicts no kernels"
    if blur.get("ground_truth"):
        return "no blur model predicting kernels (blur.ground_truth=true trains through the true blur)"
    return "no saved training kernels (renders/train/*_kernels.npz)"


def train_views_false_blur(run_dir, truth: RegionTruth, interpolation: str) -> dict[str, dict]:
    """training view name -> train_view_false_blur, for every ``renders/train/*_kernels.npz`` of the run."""
    from bench import rundir

    out = {}
    for path in sorted((Path(run_dir) / rundir.TRAIN_RENDERS).glob("*_kernels.npz")):
        name = path.name[: -len("_kernels.npz")]
        if name not in truth.train_frame:
            raise BenchError(f"{path}: names no training view of {truth.scene}")
        out[name] = train_view_false_blur(truth, name, _read_kernels(path), interpolation)
    return out


def add_false_blur(block: dict, run_dir, truth: RegionTruth, interpolation: str, config: dict | None = None) -> dict:
    """Put false_blur (mean over training views with a value) and its per-view entries into a
    metrics block that evaluate_images built with region ground truth; returns the block."""
    views = train_views_false_blur(run_dir, truth, interpolation)
    block["regions"]["per_train_view"] = views
    kept = [v[FALSE_BLUR] for v in views.values() if v[FALSE_BLUR] is not None]
    block["aggregate"][FALSE_BLUR] = float(np.mean(kept)) if kept else None
    block["missing"].pop(FALSE_BLUR, None)
    if not views:
        block["missing"][FALSE_BLUR] = no_kernels_reason(config)
    elif not kept:
        block["missing"][FALSE_BLUR] = NO_VIEW_SCORED
    return block


def thresholds() -> dict[str, float]:
    """The pixel thresholds behind the regions, recorded in results.json (min_region: a pixel count)."""
    return {"sharp": SHARP_PX, "blurred": BLURRED_PX, "false_blur": FALSE_BLUR_PX, "min_region": MIN_REGION_PX}
