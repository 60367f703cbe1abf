"""Ground-truth regions of a synthetic scene: the pixels each method component addresses.

All arrays are at the training resolution (H,W), one per frame k of N, written to
``<scene>/synthetic_gt/regions.npz``:

- ``unseen`` (N,H,W) bool: right (test) view k pixels whose surface point, at t_k, is visible in no
  left (training) frame j at its mid-exposure instant t_j.
- ``emerging`` (N,H,W) bool: dynamic test pixels of view k whose surface point is not visible in
  the canonical left frame (index N // 2, the method's canonical frame) at its instant.
- ``test_blur_rms`` (N,H,W) float32: the right (test) camera's own RMS blur radius (px) under
  frame k's exposure and focus: the right camera moving with the left one through frame k's
  sub-frame times, at frame k's focus distance and lens constant. It stands in for the issue's
  "blurred in the same-instant training frame": the training frame shows the same instant from
  another pose, so its pixels do not line up with the test view's.
- ``train_blur_rms`` (N,H,W) float32: the RMS blur radius of each training pixel.

Visibility is the generator's one visibility test (``render.seen_at``, also behind the flow
validity and the tracks' occlusion): the point, moved to t_j, projects inside frame j and its
depth there is within 2 % of the depth map's value at that pixel. Rays go through pixel centres;
pixels whose ray hits nothing are in no mask.
Latent case (no generated scene has such a pixel today: every scene is closed by a backdrop): a
test ray that hits nothing gets ``test_blur_rms`` 0, so a region metric would count it as sharp,
and a training pixel without a hit gets ``train_blur_rms`` from depth 0. The arrays are left as
they are (changing them would change the generated data); a scene that opens onto empty sky
must keep such pixels out of the sharp and blurred regions.
RMS radius: sqrt(coc^2 / 2 + mean_s |d_s - mean_s d|^2), the second moment of a uniform disc
of radius coc plus the spread of the sub-frame displacements d_s (as the report's ground truth).
"""

from __future__ import annotations

import numpy as np

from bench.data.synth.raycast import Hits, project, world_points
from bench.data.synth.render import Rendered, _dyn, _pix_centres, _signed_coc, seen_at
from bench.data.synth.scenes import TRAIN_SIZE, SceneDef

# The one definition of the region thresholds and keys: bench.data.synthetic (loading),
# bench.metrics.regions and bench.report.scene_figures import them from here.
SHARP_PX = 0.5  # RMS radius below which a pixel counts as sharp (at or above it: blur present)
BLURRED_PX = 2.0  # RMS radius above which a pixel counts as blurred
REGION_DTYPES = {"unseen": np.bool_, "emerging": np.bool_, "test_blur_rms": np.float32,
                 "train_blur_rms": np.float32}  # as written to regions.npz
REGION_KEYS = tuple(REGION_DTYPES)


def visible_in(sd: SceneDef, hit: Hits, tj: float, c2w_j: np.ndarray, depth_j: np.ndarray) -> np.ndarray:
    """(M,) bool: the surface points of ``hit`` (M rays), moved to time ``tj``, are seen by camera
    ``c2w_j`` (4,4) whose training-resolution depth map is ``depth_j`` (H,W); misses are False."""
    uv, z = project(sd.K(), np.linalg.inv(c2w_j), world_points(sd.objects, hit.obj, hit.local, tj))
    return seen_at(uv, z, depth_j) & (hit.obj >= 0)


def rms_radius(coc: np.ndarray | None, disp: np.ndarray | None) -> np.ndarray:
    """RMS blur radius (H,W) float64 from a CoC radius (H,W) and/or sub-frame displacements (S,H,W,2).

    The one implementation: the report's ground-truth radius (bench.report.scene_figures) calls it too.
    """
    shape = coc.shape if coc is not None else disp.shape[1:3]
    var = np.zeros(shape, dtype=np.float64)
    if coc is not None:
        var += coc.astype(np.float64) ** 2 / 2.0
    if disp is not None:
        d = disp.astype(np.float64)
        var += ((d - d.mean(0, keepdims=True)) ** 2).sum(-1).mean(0)
    return np.sqrt(var)


def _test_rms(sd: SceneDef, k: int, right: Hits, kappa: float) -> np.ndarray:
    """(H,W) RMS blur radius of right view k under frame k's exposure and focus (0 where the ray
    misses: see the module doc's latent case)."""
    w, h = TRAIN_SIZE
    t = k / (sd.frames - 1)
    coc = disp = None
    if sd.blur_type in ("defocus", "mixed"):
        coc = np.abs(_signed_coc(right.depth, sd.focus_at(t), kappa)).reshape(h, w)
    if sd.blur_type in ("motion", "mixed"):
        # the right camera moves with the left one, so it sees the same exposure from its own pose
        subs = []
        for ts in sd.sub_times(k):
            uv, _ = project(sd.K(), np.linalg.inv(sd.c2w(ts, right=True)),
                            world_points(sd.objects, right.obj, right.local, ts))
            subs.append((uv - _pix_centres()).reshape(h, w, 2))
        disp = np.stack(subs)
    return np.where((right.obj >= 0).reshape(h, w), rms_radius(coc, disp), 0.0)


def _train_rms(r: Rendered) -> np.ndarray:
    """(N,H,W) RMS radius of the training pixels from the blur truth at its stored precision
    (motion_disp is written as float16), so it equals what the loaded GroundTruth gives."""
    n, h, w = r.left_depth.shape
    coc = r.coc.astype(np.float32) if r.coc is not None else None
    disp = r.motion_disp.astype(np.float16) if r.motion_disp is not None else None
    return np.stack([rms_radius(None if coc is None else coc[k], None if disp is None else disp[k])
                     for k in range(n)])


def compute_regions(sd: SceneDef, r: Rendered) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Region arrays (see module doc) and their shares (fractions in [0,1]) of scene ``sd``."""
    w, h = TRAIN_SIZE
    n = sd.frames
    times = [k / (n - 1) for k in range(n)]
    left, right = r.left_hits, r.right_hits
    c = n // 2  # the method's canonical frame (bench/method/model.py)
    unseen, emerging, emerging_train, test_rms = [], [], [], []
    for k in range(n):
        seen = np.zeros(h * w, dtype=bool)
        for j in range(n):
            seen |= visible_in(sd, right[k], times[j], r.c2w_left[j], r.left_depth[j])
        hit = right[k].obj >= 0
        unseen.append((hit & ~seen).reshape(h, w))
        in_canon = visible_in(sd, right[k], times[c], r.c2w_left[c], r.left_depth[c])
        emerging.append((hit & _dyn(sd, right[k].obj) & ~in_canon).reshape(h, w))
        train_canon = visible_in(sd, left[k], times[c], r.c2w_left[c], r.left_depth[c])
        emerging_train.append(r.left_mask[k] & ~train_canon.reshape(h, w))
        test_rms.append(_test_rms(sd, k, right[k], r.kappa))
    arrays = {"unseen": np.stack(unseen), "emerging": np.stack(emerging),
              "test_blur_rms": np.stack(test_rms).astype(np.float32),
              "train_blur_rms": _train_rms(r).astype(np.float32)}
    return arrays, _shares(arrays, np.stack(emerging_train), r.left_mask)


def _shares(a: dict[str, np.ndarray], emerging_train: np.ndarray, left_mask: np.ndarray) -> dict[str, float]:
    """Fractions: of all test / training pixels, and of the training frames' dynamic pixels
    (pooled over all frames, and the largest single frame's share)."""
    dyn = left_mask.reshape(len(left_mask), -1).sum(1)
    per_frame = emerging_train.reshape(len(left_mask), -1).sum(1) / np.maximum(dyn, 1)
    out = {
        "unseen_test": a["unseen"].mean(),
        "emerging_train_dynamic": emerging_train.sum() / max(int(left_mask.sum()), 1),
        "emerging_train_dynamic_max_frame": per_frame.max(),
        "emerging_test": a["emerging"].mean(),
        "sharp_train": (a["train_blur_rms"] < SHARP_PX).mean(),
        "blurred_train": (a["train_blur_rms"] > BLURRED_PX).mean(),
        "sharp_test": (a["test_blur_rms"] < SHARP_PX).mean(),
        "blurred_test": (a["test_blur_rms"] > BLURRED_PX).mean(),
    }
    return {k: round(float(v), 5) for k, v in out.items()}
