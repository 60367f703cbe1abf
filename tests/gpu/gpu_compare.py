"""Helpers of the GPU suite (tests/gpu) and of tests/perf/bench_gpu.py.

Importing this module touches no GPU: the suite must collect (and skip) on CPU-only machines.
Contents: loading gsplat's CUDA extension once and saying why it failed; the device and toolchain
facts worth a report line; float32 test scenes with the hard cases; error measures between two
renders (images, projection, gradients) and between two densification decisions; a context
manager that counts, times and interrupts the renders of a training run without depending on
the trainer's internals.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from render_reference import random_scene  # noqa: E402

# Image size of the comparison scenes: a multiple neither of gsplat's 16-pixel tiles nor of the
# torch backend's 8-pixel tiles, so both have partial tiles on the right and at the bottom.
WIDTH, HEIGHT = 250, 141

# -- gsplat's CUDA extension -----------------------------------------------------------------------

_EXTENSION: dict | None = None


def gsplat_build_dir() -> str | None:
    """The folder torch's JIT builder uses for gsplat ("gsplat_cuda" under TORCH_EXTENSIONS_DIR or
    ~/.cache/torch_extensions/py3XX_cuXXX), as gsplat 1.5.3 computes it; None if torch cannot say."""
    try:
        from torch.utils.cpp_extension import _get_build_directory

        return _get_build_directory("gsplat_cuda", verbose=False)
    except Exception:  # private torch API: a missing or changed helper only loses the "cached" fact
        return None


def _summarise_build_error(text: str, limit: int = 1500) -> str:
    """The informative part of a (possibly very long) ninja/nvcc failure: error lines and the end."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"\berror\b", line, re.IGNORECASE)]
    picked = errors[:6] + [line for line in lines[-2:] if line not in errors[:6]]
    out = " | ".join(picked or lines[:3])
    return out[:limit]


def load_gsplat_extension() -> dict:
    """Load (JIT-building on first use) gsplat's CUDA extension once per process.

    Returns {"ok", "seconds", "source", "build_dir", "error"}: source says whether the load used
    a precompiled module, a cached JIT build or built from source (minutes). A failure is
    remembered, so later callers do not start a second multi-minute build that fails the same way.
    """
    global _EXTENSION
    if _EXTENSION is not None:
        return _EXTENSION
    import importlib.util

    try:
        precompiled = importlib.util.find_spec("gsplat.csrc") is not None
    except Exception:
        precompiled = False
    build_dir = None if precompiled else gsplat_build_dir()
    cached = bool(build_dir) and os.path.exists(os.path.join(build_dir, "gsplat_cuda.so"))
    source = "precompiled module" if precompiled else ("cached JIT build" if cached else "JIT build from source")
    info = {"ok": False, "seconds": None, "source": source, "build_dir": build_dir, "error": None}
    start = time.perf_counter()
    try:
        from gsplat.cuda._backend import _C
    except Exception as err:  # ninja/nvcc failures arrive as RuntimeError with the whole build log
        info["error"] = f"{type(err).__name__}: {_summarise_build_error(str(err))}"
        _C = None
    info["seconds"] = time.perf_counter() - start
    if _C is None and info["error"] is None:
        from torch.utils.cpp_extension import CUDA_HOME

        info["error"] = ("gsplat found no CUDA toolkit and disabled its CUDA backend: nvcc not found "
                         f"(CUDA_HOME={CUDA_HOME}, nvcc on PATH: {shutil.which('nvcc')}); install the "
                         "CUDA toolkit matching torch's CUDA or set CUDA_HOME")
    elif _C is not None and not hasattr(_C, "projection_ewa_3dgs_fused_fwd"):
        info["error"] = f"gsplat's extension loaded from {getattr(_C, '__file__', '?')} but lacks its kernels"
    info["ok"] = info["error"] is None
    _EXTENSION = info
    return info


def _command_line(cmd: list[str], pattern: str | None = None) -> str | None:
    """A line of a command's output (the first matching ``pattern``, else the first), or None."""
    if shutil.which(cmd[0]) is None:
        return None
    try:
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line.strip() for line in (res.stdout + res.stderr).splitlines() if line.strip()]
    if pattern:
        lines = [line for line in lines if re.search(pattern, line)] or lines
    return lines[0] if lines else None


def device_info() -> dict[str, object]:
    """Versions, GPU and JIT toolchain facts (what a failed gsplat build depends on)."""
    import gsplat
    from torch.utils.cpp_extension import CUDA_HOME, is_ninja_available

    info: dict[str, object] = {
        "python": sys.version.split()[0], "torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "gsplat": gsplat.__version__, "cuda_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpus=torch.cuda.device_count(),
                    capability=".".join(map(str, torch.cuda.get_device_capability(0))),
                    gpu_mem_gib=round(props.total_memory / 2 ** 30, 1))
    nvcc = shutil.which("nvcc") or (os.path.join(CUDA_HOME, "bin", "nvcc") if CUDA_HOME else None)
    nvcc_line = _command_line([nvcc, "--version"], r"release") if nvcc and os.path.exists(nvcc) else None
    match = re.search(r"release ([\d.]+)", nvcc_line or "")
    info.update(
        nvcc=nvcc if nvcc and os.path.exists(nvcc) else None,
        nvcc_release=match.group(1) if match else None,
        cuda_home=CUDA_HOME, ninja=is_ninja_available(),
        cxx=_command_line([os.environ.get("CXX", "c++"), "--version"]),
        driver=_command_line(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]),
        MAX_JOBS=os.environ.get("MAX_JOBS"), TORCH_CUDA_ARCH_LIST=os.environ.get("TORCH_CUDA_ARCH_LIST"),
        TORCH_EXTENSIONS_DIR=os.environ.get("TORCH_EXTENSIONS_DIR"), gsplat_build_dir=gsplat_build_dir(),
    )
    return info


# -- scenes ----------------------------------------------------------------------------------------


def gpu_scene(seed: int, n: int = 20_000, num_cameras: int = 2, width: int = WIDTH, height: int = HEIGHT,
              device="cuda", dtype=torch.float32) -> tuple[list[torch.Tensor], dict[str, slice]]:
    """Random Gaussians (tests/render_reference.random_scene) plus the hard cases, as ``dtype`` on
    ``device``: behind camera 0 or inside its near plane, opacity under 1/255 and just above it,
    far off-screen and straddling the borders, centred on 16- and 8-pixel tile corners, huge and
    faint, and needle-like. Returns (the 7 rasterize arguments, {case: slice of its Gaussians})."""
    means, quats, log_scales, logits, colors, viewmats, Ks = random_scene(
        n, num_cameras=num_cameras, width=width, height=height, seed=seed, dtype=torch.float64,
        spread=1.6, scale_range=(-5.0, -3.0))
    g = torch.Generator().manual_seed(1000 + seed)
    f = Ks[0, 0, 0].item()
    cx, cy = width / 2, height / 2
    # opacity ramp across camera 0: opaque on the left (pixels saturate, the 1e-4 transmittance
    # stop matters), faint on the right (alpha well below 1, deep Gaussians contribute)
    u0 = (f * means[:, 0] / means[:, 2].clamp_min(0.1) + cx) / width
    logits += 2.0 - 6.0 * u0.clamp(0.0, 1.0)
    groups: dict[str, slice] = {}
    start = 0

    def take(name: str, k: int) -> slice:
        nonlocal start
        assert start + k <= n, "scene too small for its hard cases"
        groups[name] = slice(start, start + k)
        start += k
        return groups[name]

    def uniform(k: int, lo: float, hi: float, cols: int | None = None) -> torch.Tensor:
        shape = (k,) if cols is None else (k, cols)
        return torch.empty(shape, dtype=torch.float64).uniform_(lo, hi, generator=g)

    def at_pixels(s: slice, u: torch.Tensor, v: torch.Tensor, z: torch.Tensor) -> None:
        """Put Gaussians s at pixel (u, v) of camera 0 (identity pose) at depth z."""
        means[s, 0] = (u - cx) * z / f
        means[s, 1] = (v - cy) * z / f
        means[s, 2] = z

    s = take("behind_or_near", 300)  # behind camera 0, on its plane, or closer than near=0.01
    means[s, 2] = uniform(300, -3.0, 0.0099)
    s = take("faint_culled", 400)  # sigmoid(-5.6) = 0.0037 < 1/255 = 0.00392
    logits[s] = uniform(400, -12.0, -5.6)
    s = take("faint_visible", 200)  # sigmoid(-5.45) = 0.0043: tiny opacity-aware boxes
    logits[s] = uniform(200, -5.45, -4.0)
    s = take("off_screen", 400)  # centres 60..300 px outside the image: culled (or nearly)
    side = torch.randint(0, 4, (400,), generator=g)
    off = uniform(400, 60.0, 300.0)
    u, v = uniform(400, 0.0, width), uniform(400, 0.0, height)
    u = torch.where(side == 0, -off, torch.where(side == 1, width + off, u))
    v = torch.where(side == 2, -off, torch.where(side == 3, height + off, v))
    at_pixels(s, u, v, uniform(400, 1.5, 6.0))
    s = take("straddling", 400)  # centres within 8 px of a border: boxes partly off-screen
    edge = torch.randint(0, 4, (400,), generator=g)
    d = uniform(400, -8.0, 8.0)
    u, v = uniform(400, 0.0, width), uniform(400, 0.0, height)
    u = torch.where(edge == 0, d, torch.where(edge == 1, width + d, u))
    v = torch.where(edge == 2, d, torch.where(edge == 3, height + d, v))
    at_pixels(s, u, v, uniform(400, 1.5, 6.0))
    s = take("tile_corners", 200)  # exactly on 16-px (gsplat) and 8-px (torch backend) tile corners
    step = torch.where(torch.rand(200, generator=g) < 0.5, 16.0, 8.0).double()
    u = step * torch.floor(uniform(200, 0.0, width) / step)
    v = step * torch.floor(uniform(200, 0.0, height) / step)
    at_pixels(s, u, v, uniform(200, 2.0, 5.0))
    s = take("huge", 8)  # world scales 1..4.5 at depth 2..6, faint: boxes cover most or all of the image
    log_scales[s] = uniform(8, 0.0, 1.5, 3)
    logits[s] = uniform(8, -5.0, -3.5)
    at_pixels(s, uniform(8, 0.0, width), uniform(8, 0.0, height), uniform(8, 2.0, 6.0))
    s = take("needles", 200)  # one long axis (~15 px on screen), two thin ones
    log_scales[s, 0] = uniform(200, -2.0, -1.5)
    log_scales[s, 1:] = uniform(200, -6.0, -5.0, 2)
    args = [means, quats, log_scales, logits, colors, viewmats, Ks]
    return [a.to(device=device, dtype=dtype) for a in args], groups


def sh_coeffs(n: int, seed: int, device="cuda", k: int = 16) -> torch.Tensor:
    """(n,k,3) SH coefficients like a trained scene's (DC and rest ~ N(0, 0.4))."""
    g = torch.Generator().manual_seed(5000 + seed)
    return (0.4 * torch.randn(n, k, 3, generator=g)).to(device)


def features_for(n: int, f: int, seed: int, device="cuda") -> torch.Tensor:
    g = torch.Generator().manual_seed(6000 + seed)
    return torch.rand(n, f, generator=g).to(device)


N = 20_000  # Gaussians of the comparison scenes
# Comparison cases of the render and gradient tests: (case id, sh_degree, feature channels, background)
CASES = [
    ("rgb", None, 0, False),
    ("rgb_features_background", None, 2, True),
    ("sh0_background", 0, 0, True),
    ("sh3", 3, 0, False),
    ("sh3_features_background", 3, 3, True),  # SH evaluated by the adapter (features need RGB input)
]
BACKGROUND = (0.3, 0.6, 0.9)


def case_inputs(seed: int, sh_degree, num_features: int, background: bool, device, n: int = N):
    """(rasterize positional args, keyword args, groups) of one comparison case."""
    scene, groups = gpu_scene(seed, n=n, device=device)
    if sh_degree is not None:
        scene[4] = sh_coeffs(n, seed, device)
    kwargs = {"sh_degree": sh_degree,
              "features": features_for(n, num_features, seed, device) if num_features else None,
              "background": torch.tensor(BACKGROUND, device=device) if background else None}
    return scene, kwargs, groups


# -- error measures ----------------------------------------------------------------------------------


def _quantile(x: torch.Tensor, q: float) -> float:
    """Quantile by sorting (torch.quantile refuses large inputs)."""
    s = x.flatten().sort().values
    return float(s[min(len(s) - 1, int(round(q * (len(s) - 1))))])


def image_errors(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None,
                 relative: bool = False) -> dict[str, float]:
    """Mean, 99.9th percentile and max of |a - b| (or |a - b| / |b|) over the pixels where
    ``mask`` (broadcast over channels) holds; zeros when there are none."""
    d = (a.double() - b.double()).abs()
    if relative:
        d = d / b.double().abs().clamp_min(1e-6)
    if mask is not None:
        d = d[mask.expand_as(d)]
    d = d.flatten()
    if d.numel() == 0:
        return {"mean": 0.0, "q999": 0.0, "max": 0.0, "n": 0}
    return {"mean": float(d.mean()), "q999": _quantile(d, 0.999), "max": float(d.max()), "n": int(d.numel())}


def projection_errors(a, b) -> dict[str, float]:
    """Visibility and radii of two RenderOutputs of the same scene: mismatch fractions
    (visibility over Gaussians visible in either, radii over those visible in both), the largest
    radius difference and the largest means2d difference (px) where both see a Gaussian.
    means2d is compared on visible Gaussians only: gsplat leaves culled ones uninitialised."""
    va, vb = a.visible, b.visible
    either, both = va | vb, va & vb
    rd = (a.radii.long() - b.radii.long()).abs().amax(-1)[both]
    md = (a.means2d.detach().double() - b.means2d.detach().double()).abs().amax(-1)[both]
    return {
        "visible_either": int(either.sum()), "visible_both": int(both.sum()),
        "visible_mismatch": float((va != vb).sum()) / max(1, int(either.sum())),
        "radii_mismatch": float((rd > 0).sum()) / max(1, int(both.sum())),
        "radii_max_diff": int(rd.max()) if rd.numel() else 0,
        "means2d_max_diff": float(md.max()) if md.numel() else 0.0,
        "culled_radii_nonzero": int((a.radii[~va] != 0).sum() + (b.radii[~vb] != 0).sum()),
    }


def grad_errors(a: torch.Tensor, b: torch.Tensor, rows: torch.Tensor | None = None,
                bad: float = 0.1) -> dict[str, float]:
    """Gradient ``a`` against reference ``b`` (same shape): rel_l2 = |a-b| / |b| over the selected
    rows (``rows``: bool mask over the leading dims; None = all, a 1-D tensor is one row), and per
    row the relative error |a_i - b_i| / (|b_i| + 1e-3 rms_i |b_i|): its median and the fraction
    of rows above ``bad``."""
    if a is None or b is None:
        raise AssertionError(f"missing gradient: {'a' if a is None else 'b'} is None")
    a, b = a.detach().double(), b.detach().double()
    if rows is not None:
        a, b = a[rows], b[rows]
    if a.dim() <= 1:
        a, b = a.reshape(1, -1), b.reshape(1, -1)
    a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    if a.shape[0] == 0:
        return {"rel_l2": 0.0, "row_median": 0.0, "row_bad_frac": 0.0, "rows": 0}
    diff, ref = (a - b).norm(dim=1), b.norm(dim=1)
    rms = ref.pow(2).mean().sqrt()
    rel_rows = diff / (ref + 1e-3 * rms + 1e-30)
    total = float(b.norm())
    return {
        "rel_l2": float(diff.norm()) / total if total > 0 else (0.0 if float(diff.norm()) == 0 else math.inf),
        "row_median": float(rel_rows.median()), "row_bad_frac": float((rel_rows > bad).double().mean()),
        "rows": int(a.shape[0]), "finite": bool(torch.isfinite(a).all()),
    }


def jaccard(a: torch.Tensor, b: torch.Tensor) -> float:
    """|a & b| / |a | b| of two bool masks; 1.0 when both are empty."""
    union = int((a | b).sum())
    return 1.0 if union == 0 else int((a & b).sum()) / union


def growth_threshold(grads: torch.Tensor, num_gaussians: int, grad_threshold: float, max_gaussians: int) -> float:
    """The trainer's growth rule (bench/method train/densify): the configured threshold, raised to
    the (room+1)-th largest mean gradient when more than ``room`` = max_gaussians - N would grow."""
    if max_gaussians <= 0:
        return grad_threshold
    room = max_gaussians - num_gaussians
    if room <= 0:
        return math.inf
    if int((grads > grad_threshold).sum()) <= room:
        return grad_threshold
    return max(grad_threshold, float(grads.topk(room + 1).values[-1]))


# -- training runs ----------------------------------------------------------------------------------


class Interrupted(Exception):
    """Raised into a training run by :class:`RenderTap` (a stand-in for a preemption)."""


class RenderTap:
    """Counts and timestamps the gsplat renders made while active; raises :class:`Interrupted`
    when a render beyond ``limit`` is asked for (the run stops before that step's render).

    Wraps ``bench.render.gsplat_backend.rasterize_gsplat``, which ``bench.render.rasterize``
    imports at call time, so it sees every gsplat render however the trainer is organised (one
    render per training step). ``times[i]`` is taken at the start of render i after a CUDA sync;
    ``sizes[i]`` is its number of Gaussians.
    """

    def __init__(self, limit: int | None = None, sync: bool = True):
        self.limit, self.sync = limit, sync
        self.calls = 0
        self.times: list[float] = []
        self.sizes: list[int] = []
        self.interrupted = False

    def __enter__(self) -> "RenderTap":
        import bench.render.gsplat_backend as backend

        self._module, self._orig = backend, backend.rasterize_gsplat
        backend.rasterize_gsplat = self._wrapped
        return self

    def __exit__(self, *exc) -> None:
        self._module.rasterize_gsplat = self._orig

    def _wrapped(self, means, *args, **kwargs):
        if self.limit is not None and self.calls >= self.limit:
            self.interrupted = True
            raise Interrupted(f"interrupted before gsplat render {self.calls + 1} (limit {self.limit})")
        if self.sync:
            torch.cuda.synchronize()
        self.times.append(time.perf_counter())
        self.sizes.append(int(means.shape[0]))
        self.calls += 1
        return self._orig(means, *args, **kwargs)

    def steps_per_second(self, skip: int) -> float | None:
        """Render-to-render rate after the first ``skip`` renders (warm-up)."""
        t = self.times[skip:]
        if len(t) < 2:
            return None
        return (len(t) - 1) / (t[-1] - t[0])


def synthetic_data_root(scene: str = "motion_0"):
    """A data root holding synthetic ``scene``: the registry's (None) when it is already there
    and passes the check, else one generated into a temporary folder (tests/data_synth_cache.py)."""
    from bench.data.registry import check_scene

    try:
        if not check_scene("synthetic", scene):
            return None
    except Exception:
        pass
    from data_synth_cache import synthetic_root

    return synthetic_root(scene)


def read_curves(run_dir: Path) -> list[dict[str, str]]:
    import csv

    with open(Path(run_dir) / "curves.csv", newline="") as f:
        return list(csv.DictReader(f))


def psnr_of_test_views(run_dir: Path, scene_name: str, data_root=None) -> float:
    """Mean PSNR (dB) of renders/test/*.png against the synthetic scene's sharp test images."""
    import numpy as np

    from bench.data.registry import load_scene
    from bench.metrics.evaluate import read_image
    from bench.metrics.image import psnr

    scene = load_scene("synthetic", scene_name, data_root)
    return float(np.mean([psnr(read_image(Path(run_dir) / "renders" / "test" / f"{name}.png"),
                               scene.test.images[i].numpy())
                          for i, name in enumerate(scene.test.names)]))

