"""Renderer benchmark: forward and forward+backward time of the torch backend on CPU.

Run: python tests/perf/bench_render.py [--repeats 5] [--threads N] [--skip-reference]
Prints, for (5k Gaussians, 128x72) and (20k Gaussians, 256x144), the median forward and
forward+backward milliseconds, the Gaussian-pixel evaluations the backend performed per second,
and the same figures for the brute-force reference (tests/render_reference.py) at the small size,
with the speed-up measured in the same run. Other processes on the machine make figures fluctuate.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from render_reference import reference_render  # noqa: E402

from bench.render import rasterize  # noqa: E402
from bench.render.composite import TILE, plan_tiles  # noqa: E402
from bench.render.projection import project, quat_scale_to_factor  # noqa: E402

SIZES = [(5_000, 128, 72), (20_000, 256, 144)]


def bench_scene(n: int, width: int, height: int, seed: int = 0, dtype=torch.float32):
    """A mid-training-like scene: Gaussians filling the view frustum at depths 2..6, a few pixels
    wide on screen, mixed opacities. Returns the rasterize positional arguments."""
    g = torch.Generator().manual_seed(seed)
    f = 0.8 * width
    z = 2.0 + 4.0 * torch.rand(n, generator=g)
    u = (torch.rand(n, generator=g) * 1.2 - 0.1) * width
    v = (torch.rand(n, generator=g) * 1.2 - 0.1) * height
    means = torch.stack([(u - width / 2) * z / f, (v - height / 2) * z / f, z], -1)
    # world scale ~ 1.5 px at depth 4 for 128 px wide images, halved for 256 px wide ones
    base = 1.5 * 4.0 / f * (128 / width) ** 0.5
    log_scales = math.log(base) + 0.6 * torch.randn(n, 3, generator=g)
    quats = torch.randn(n, 4, generator=g)
    opacity_logits = torch.randn(n, generator=g)
    colors = torch.rand(n, 3, generator=g)
    viewmats = torch.eye(4)[None]
    Ks = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])[None]
    args = [means, quats, log_scales, opacity_logits, colors, viewmats, Ks]
    return [a.to(dtype) for a in args]


def time_it(fn, repeats: int) -> float:
    """Median wall time of fn() in milliseconds after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def measure(render, args, width, height, repeats):
    """(forward ms, forward+backward ms) for a render(args) -> (rgb, depth, alpha) callable."""
    params = [a.clone().requires_grad_(i < 5) for i, a in enumerate(args)]

    def forward():
        with torch.no_grad():
            render(params, width, height)

    def forward_backward():
        rgb, depth, alpha = render(params, width, height)
        (rgb.sum() + 0.1 * depth.sum() + alpha.sum()).backward()

    return time_it(forward, repeats), time_it(forward_backward, repeats)


def torch_backend(params, width, height):
    out = rasterize(*params, width, height, backend="torch")
    return out.rgb, out.depth, out.alpha


def reference(params, width, height):
    out = reference_render(*params, width, height)
    return out["rgb"], out["depth"], out["alpha"]


def evaluations(args, width, height) -> tuple[int, int]:
    """(evaluations the torch backend performs, Gaussian-pixel pairs inside the boxes)."""
    means, quats, log_scales, opacity_logits, _, viewmats, Ks = args
    opacities = torch.sigmoid(opacity_logits)
    factors = quat_scale_to_factor(quats, torch.exp(log_scales))
    proj = project(means, factors, opacities, viewmats, Ks, width, height, 0.01, 1e10)
    plan = plan_tiles(proj.means2d, proj.conics, proj.opacities, proj.radii, proj.depths, width, height)
    out = proj
    boxes = int(((2 * out.radii[..., 0] + 1) * (2 * out.radii[..., 1] + 1)).sum())
    return plan.evaluations(), boxes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    parser.add_argument("--skip-reference", action="store_true")
    ns = parser.parse_args()
    if ns.threads:
        torch.set_num_threads(ns.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, tile {TILE}px, float32, CPU")
    print(f"{'renderer':<10} {'N':>6} {'size':>8} {'fwd ms':>9} {'fwd+bwd ms':>11} "
          f"{'evals':>11} {'Geval/s fwd':>12} {'box pairs':>10}")
    small = None
    for n, width, height in SIZES:
        args = bench_scene(n, width, height)
        fwd, fb = measure(torch_backend, args, width, height, ns.repeats)
        evals, boxes = evaluations(args, width, height)
        print(f"{'torch':<10} {n:>6} {f'{width}x{height}':>8} {fwd:>9.1f} {fb:>11.1f} "
              f"{evals:>11,} {evals / fwd / 1e6:>12.3f} {boxes:>10,}")
        if small is None:
            small = (args, width, height, fwd, fb, boxes)
    if not ns.skip_reference:
        args, width, height, fwd_t, fb_t, boxes = small
        fwd, fb = measure(reference, [a.double() for a in args], width, height, max(1, ns.repeats // 3))
        print(f"{'reference':<10} {len(args[0]):>6} {f'{width}x{height}':>8} {fwd:>9.1f} {fb:>11.1f} "
              f"{boxes:>11,} {boxes / fwd / 1e6:>12.3f} {boxes:>10,}")
        print(f"speed-up of torch backend over brute force: forward {fwd / fwd_t:.1f}x, "
              f"forward+backward {fb / fb_t:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
