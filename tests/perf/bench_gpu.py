"""GPU benchmark: gsplat extension load/build time, renderer speed of both backends, training speed.

Run on a machine with a CUDA GPU (after the GPU suite, whose first test builds gsplat's extension):

    python tests/perf/bench_gpu.py [--repeats 15] [--train-steps 300] [--skip-render] [--skip-train]

Prints, each section as soon as it is measured (so a timeout keeps the earlier figures):
1. device, versions and the JIT toolchain;
2. gsplat's CUDA extension: the time of this process's first load and whether it used a cached
   build (plus the GPU suite's first load, from its report, when BENCH_GPU_REPORT names one);
3. forward and forward+backward milliseconds (median after warm-up, with torch.cuda.synchronize)
   and peak GPU memory of the gsplat and torch backends at 100k Gaussians and 512x288, for RGB
   colours and for the training model's inputs (SH degree 3 plus one feature channel);
4. training steps per second and peak GPU memory (torch.cuda.max_memory_allocated) of the
   ``release`` profile with the gsplat backend on the synthetic scene motion_0: its first steps
   as they are (no BP-Net before 3500 steps, no densification before 500), and with every
   component on from step 0; and the projected time of a 40k-step run from the two rates.
Without CUDA it prints one line saying so and exits with status 2. With BENCH_GPU_REPORT set, the
figures are also appended to that file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository (bench), also when not pip-installed
sys.path.insert(0, str(HERE))  # bench_render
sys.path.insert(0, str(HERE.parent / "gpu"))  # gpu_compare (adds tests/ itself)

SCENE = "motion_0"
DEVICE = "cuda"  # where the render section's tensors live (train() is given device="cuda")
RENDER_SIZE = (100_000, 512, 288)  # Gaussians, width, height
RELEASE_STEPS = 40_000
# Overrides that switch every part of the release schedule on from step 0 (BP-Net, virtual views,
# densification every 100 steps, DGD at step 1, the late loss terms): the cost of a later step.
ALL_ON = {"blur.start_frac": 0.0, "unseen.start_frac": 0.0, "densify.start_frac": 0.0,
          "densify.dgd_at_frac": 0.0, "loss.low_frequency_start_frac": 0.0,
          "loss.blur_sparsity_start_frac": 0.0, "loss.mask_sparsity_start_frac": 0.0}


def say(line: str = "") -> None:
    """Print now, and append to $BENCH_GPU_REPORT when set."""
    print(line, flush=True)
    path = os.environ.get("BENCH_GPU_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(f"bench_gpu: {line}\n" if line else "")


def cuda_ms(fn, repeats: int, warmup: int = 3, budget_s: float = 20.0) -> tuple[float, int]:
    """(median ms, timed calls) of fn() after ``warmup`` calls; fewer calls when they are slow."""
    start = time.perf_counter()
    for _ in range(warmup):
        fn()
        torch.cuda.synchronize()
        if time.perf_counter() - start > budget_s / 2:
            break
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
        if len(times) >= 3 and sum(times) / 1e3 > budget_s:
            break
    return statistics.median(times), len(times)


def section_device() -> None:
    from gpu_compare import device_info

    say("== device")
    for key, value in device_info().items():
        say(f"{key}: {value}")


def section_extension() -> bool:
    from gpu_compare import load_gsplat_extension

    say("== gsplat CUDA extension")
    ext = load_gsplat_extension()
    if ext["ok"]:
        say(f"first load in this process: {ext['seconds']:.1f} s ({ext['source']}, build dir {ext['build_dir']})")
    else:
        say(f"FAILED after {ext['seconds']:.1f} s ({ext['source']}): {ext['error']}")
    report = os.environ.get("BENCH_GPU_REPORT")
    if report and os.path.exists(report):
        for line in Path(report).read_text().splitlines():
            if "test_gsplat_extension_builds_and_loads" in line and not line.startswith(("started", "bench_gpu")):
                say(f"the GPU suite's first load: {line.split(' ', 1)[1]}")
    return ext["ok"]


def section_render(repeats: int, gsplat_ok: bool) -> None:
    from bench_render import bench_scene

    from bench.render import rasterize

    n, width, height = RENDER_SIZE
    dev = torch.device(DEVICE)
    base = [a.to(dev) for a in bench_scene(n, width, height)]
    g = torch.Generator().manual_seed(1)
    sh = (0.3 * torch.randn(n, 16, 3, generator=g)).to(dev)
    flag = (torch.rand(n, 1, generator=g) < 0.3).float().to(dev)
    say(f"== render: {n:,} Gaussians, {width}x{height}, 1 camera, float32 (median ms; peak GPU memory of fwd+bwd)")
    say(f"{'inputs':<22} {'backend':<7} {'forward':>10} {'fwd+bwd':>10} {'peak MB':>9}")
    for label, colors, kwargs in (("RGB colours", base[4], {}),
                                  ("SH3 + 1 feature", sh, {"sh_degree": 3, "features": flag})):
        for backend in ("gsplat", "torch"):
            if backend == "gsplat" and not gsplat_ok:
                say(f"{label:<22} {backend:<7} skipped: the extension did not load")
                continue
            params = [t.clone().requires_grad_(i < 5) for i, t in enumerate(base[:4] + [colors] + base[5:])]

            def forward():
                with torch.no_grad():
                    rasterize(*params, width, height, backend=backend, **kwargs)

            def forward_backward():
                out = rasterize(*params, width, height, backend=backend, **kwargs)
                (out.rgb.sum() + 0.1 * out.depth.sum() + out.alpha.sum()).backward()
                for p in params:
                    p.grad = None

            try:
                fwd, nf = cuda_ms(forward, repeats)
                torch.cuda.reset_peak_memory_stats()
                fb, nb = cuda_ms(forward_backward, repeats)
                peak = torch.cuda.max_memory_allocated() / 2 ** 20
                say(f"{label:<22} {backend:<7} {fwd:>10.2f} {fb:>10.2f} {peak:>9.0f}   (n={nf}/{nb})")
            except Exception as err:  # one failing backend must not hide the other's figures
                say(f"{label:<22} {backend:<7} FAILED: {type(err).__name__}: {str(err).splitlines()[0][:300]}")
            params = None  # free the inputs before the next backend
            torch.cuda.empty_cache()


def train_rate(label: str, overrides: dict, steps: int, warmup: int, data_root) -> float | None:
    """Train the release profile with gsplat until ``steps`` renders, then interrupt; print rate
    and memory. Returns steps per second after ``warmup`` steps, or None when it failed."""
    from gpu_compare import RenderTap

    from bench.method.train import train

    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as tmp, RenderTap(limit=steps) as tap:
        start = time.perf_counter()
        try:
            train(Path(tmp) / "run", method="full", dataset="synthetic", scene=SCENE, seed=0, profile="release",
                  overrides={"train.backend": "gsplat", **overrides}, data_root=data_root, device="cuda",
                  progress=False)
        except Exception as err:
            if not tap.interrupted:
                say(f"{label}: FAILED after {tap.calls} steps: {type(err).__name__}: {str(err).splitlines()[0][:300]}")
                return None
    wall = time.perf_counter() - start
    rate = tap.steps_per_second(skip=warmup)
    if rate is None:
        say(f"{label}: only {tap.calls} steps ran; no rate")
        return None
    first = tap.times[0] - start if tap.times else float("nan")
    say(f"{label}: {rate:.1f} steps/s ({1e3 / rate:.1f} ms/step over steps {warmup}-{tap.calls}), "
        f"peak GPU memory {torch.cuda.max_memory_allocated() / 2 ** 20:.0f} MB allocated, "
        f"{torch.cuda.max_memory_reserved() / 2 ** 20:.0f} MB reserved; Gaussians {tap.sizes[0]:,} -> "
        f"{tap.sizes[-1]:,}; setup before step 0 {first:.1f} s, wall {wall:.1f} s")
    return rate


def section_train(steps: int) -> None:
    from gpu_compare import synthetic_data_root

    from bench.method.config import resolve_config

    warmup = min(30, steps // 3)
    say(f"== training: release profile, gsplat, synthetic/{SCENE}, {steps} steps per measurement")
    data_root = synthetic_data_root(SCENE)
    early = train_rate("release as configured (early steps: no BP-Net, no densification)", {}, steps, warmup,
                       data_root)
    full = train_rate("release, every component on from step 0 (BP-Net, virtual views, densify, DGD)", ALL_ON,
                      steps, warmup, data_root)
    if early and full:
        cfg = resolve_config("full", "release", {})
        light = cfg.at(cfg.blur.start_frac)  # steps before BP-Net joins the loss
        seconds = light / early + (RELEASE_STEPS - light) / full
        say(f"projected {RELEASE_STEPS:,}-step release run: {seconds / 60:.1f} min ({light} steps at the early "
            f"rate, {RELEASE_STEPS - light} at the all-on rate; training only, at the initial Gaussian count: "
            f"densification until step {cfg.at(cfg.densify.end_frac)} grows it and slows the later steps)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed calls per render measurement")
    parser.add_argument("--train-steps", type=int, default=300, help="training steps per measurement")
    parser.add_argument("--skip-render", action="store_true")
    parser.add_argument("--skip-train", action="store_true")
    ns = parser.parse_args()
    if not torch.cuda.is_available():
        print(f"bench_gpu: needs a CUDA GPU, and torch.cuda.is_available() is False here (torch "
              f"{torch.__version__}, CUDA build {torch.version.cuda}); nothing measured", file=sys.stderr)
        return 2
    start = time.perf_counter()
    section_device()
    ok = section_extension()
    if not ns.skip_render:
        section_render(ns.repeats, ok)
    if not ns.skip_train:
        if ok:
            section_train(ns.train_steps)
        else:
            say("== training: skipped (gsplat's extension did not load)")
    say(f"== bench_gpu total {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
