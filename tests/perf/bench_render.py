"""Renderer benchmark: forward and forward+backward time of the torch backend on CPU.

Run: python tests/perf/bench_render.py [--repeats 7] [--threads 1] [--skip-reference]
Prints, for (5k Gaussians, 128x72) and (20k Gaussians, 256x144), forward and forward+backward
milliseconds of the torch backend with the pure-PyTorch compositor ("torch") and with the compiled
CPU kernels ("compiled"), side by side in the same run (median wall clock, and the minimum process
CPU time, which other processes on a shared machine disturb less), the Gaussian-pixel evaluations
per second of the forward pass and of forward+backward (evaluations / (forward+backward time)),
and the same figures for the brute-force reference (tests/render_reference.py) at the small size.
Evaluations are the pure-PyTorch path's padded block size for the scene, the same count for both
paths, so their M eval/s compare as speeds and with earlier figures. The compiled rows add the
kernel's real work: the pixel lanes its forward pass sends through exp() (whole vectors, padding
lanes included; plan.exp_lanes), and those per second of forward+backward time. One thread by
default: on a machine shared with other jobs, torch's multi-threaded kernels lose more to
contention than they gain. --isa runs the compiled rows with one instruction set of the float32
kernels (default: the best this CPU runs).
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

from bench.render import cpu_ext, rasterize  # noqa: E402
from bench.render.composite import TILE, plan_tiles  # noqa: E402
from bench.render.projection import project, quat_scale_to_factor  # noqa: E402

# (Gaussians, width, height, opacity-logit shift): the two sizes asked for, then opaque scenes at
# the CPU training resolution where most pixels reach the stopping transmittance
CASES = [(5_000, 128, 72, 0.0), (20_000, 256, 144, 0.0), (5_000, 128, 72, 2.5), (20_000, 128, 72, 2.5)]


def bench_scene(n: int, width: int, height: int, seed: int = 0, dtype=torch.float32,
                opacity_shift: float = 0.0):
    """A mid-training-like scene: Gaussians filling the view frustum at depths 2..6, a few pixels
    wide on screen, opacity logits N(opacity_shift, 1). Returns the rasterize positional arguments."""
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
    opacity_logits = torch.randn(n, generator=g) + opacity_shift
    colors = torch.rand(n, 3, generator=g)
    viewmats = torch.eye(4)[None]
    Ks = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]])[None]
    args = [means, quats, log_scales, opacity_logits, colors, viewmats, Ks]
    return [a.to(dtype) for a in args]


def time_it(fn, repeats: int) -> tuple[float, float]:
    """(median wall ms, minimum process CPU ms) of fn() after one warm-up call."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t0) * 1e3)
        cpu.append((time.process_time() - c0) * 1e3)
    return statistics.median(wall), min(cpu)


def measure(render, args, width, height, repeats):
    """((wall, cpu) forward ms, (wall, cpu) forward+backward ms) for a render(args) -> (rgb, depth,
    alpha) callable."""
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


def on_path(compiled: bool):
    """The torch backend with the compiled CPU kernels switched on or off."""
    def render(params, width, height):
        cpu_ext.use_compiled(compiled)
        try:
            return torch_backend(params, width, height)
        finally:
            cpu_ext.use_compiled(None)
    return render


class LaneCounter:
    """Counts the compiled forward passes' exp() lanes of the renders made inside `with`."""

    def __enter__(self):
        rast = sys.modules["bench.render.rasterize"]  # bench.render's `rasterize` is the function
        self.rast, self.original, self.lanes = rast, rast.composite_compiled, []

        def counted(module, *args):
            out = self.original(module, *args)
            self.lanes.append(args[4])  # the plan; its count is set once the kernel has run
            return out

        rast.composite_compiled = counted
        return self

    def __exit__(self, *exc):
        self.rast.composite_compiled = self.original

    def per_render(self) -> int:
        counts = {int(plan.exp_lanes) for plan in self.lanes}
        assert len(counts) == 1, counts  # the same scene every time
        return counts.pop()


def reference(params, width, height):
    out = reference_render(*params, width, height)
    return out["rgb"], out["depth"], out["alpha"]


def evaluations(args, width, height) -> tuple[int, int]:
    """(Gaussian-pixel evaluations of the torch backend, those of the brute-force reference: every
    pixel centre inside each visible Gaussian's box)."""
    means, quats, log_scales, opacity_logits, _, viewmats, Ks = args
    factors = quat_scale_to_factor(quats, torch.exp(log_scales))
    proj = project(means, factors, torch.sigmoid(opacity_logits), viewmats, Ks, width, height, 0.01, 1e10)
    plan = plan_tiles(proj.means2d, proj.conics, proj.opacities, proj.radii, proj.depths, width, height)
    m, r = proj.means2d[proj.visible].double(), proj.radii[proj.visible].double()
    lo = torch.ceil(m - r - 0.5).clamp(min=0)
    hi = torch.minimum(torch.floor(m + r - 0.5), m.new_tensor([width - 1, height - 1]))
    boxes = int((hi - lo + 1).clamp(min=0).prod(-1).sum())
    return plan.evaluations(), boxes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--isa", default="auto", help="instruction set of the compiled float32 kernels")
    ns = parser.parse_args()
    torch.set_num_threads(ns.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), tile {TILE}px, float32, CPU")
    print("times in ms: median wall clock / minimum process CPU time")
    compiled = cpu_ext.load() is not None
    if not compiled:
        print(f"compiled CPU kernels unavailable ({cpu_ext.failure()}): torch path only")
    else:
        print(f"compiled kernels' instruction set: {cpu_ext.use_isa(ns.isa)} (this CPU runs: "
              f"{', '.join(cpu_ext.isas())})")
    header = (f"{'renderer':<10} {'N':>6} {'size':>8} {'forward':>15} {'fwd+bwd':>15} "
              f"{'evaluations':>12} {'Meval/s fwd':>12} {'Meval/s f+b':>12} {'exp lanes':>10} "
              f"{'Mlane/s f+b':>12}")
    print(header)

    def row(name, n, width, height, fwd, fb, evals, lanes=None):
        real = f" {lanes:>10,} {lanes / fb[0] / 1e3:>12.1f}" if lanes is not None else ""
        print(f"{name:<10} {n:>6} {f'{width}x{height}':>8} {fwd[0]:>7.1f} /{fwd[1]:>6.1f} "
              f"{fb[0]:>7.1f} /{fb[1]:>6.1f} {evals:>12,} {evals / fwd[0] / 1e3:>12.1f} "
              f"{evals / fb[0] / 1e3:>12.1f}{real}")

    small = None
    for n, width, height, shift in CASES:
        args = bench_scene(n, width, height, opacity_shift=shift)
        evals, boxes = evaluations(args, width, height)
        star = "" if shift == 0 else "*"
        fwd, fb = measure(on_path(False), args, width, height, ns.repeats)
        row("torch" + star, n, width, height, fwd, fb, evals)
        if compiled:
            with LaneCounter() as counter:
                fwd_c, fb_c = measure(on_path(True), args, width, height, ns.repeats)
            row("compiled" + star, n, width, height, fwd_c, fb_c, evals, counter.per_render())
            print(f"{'':<10} compiled over torch (wall): forward {fwd[0] / fwd_c[0]:.1f}x, "
                  f"forward+backward {fb[0] / fb_c[0]:.1f}x")
        if small is None:
            small = (args, width, height, fwd, fb, boxes)
    if not ns.skip_reference:
        args, width, height, fwd_t, fb_t, boxes = small
        fwd, fb = measure(reference, [a.double() for a in args], width, height, max(1, ns.repeats // 3))
        row("reference", len(args[0]), width, height, fwd, fb, boxes)
        print(f"speed-up of the pure-PyTorch path over the brute-force reference (wall): "
              f"forward {fwd[0] / fwd_t[0]:.0f}x, forward+backward {fb[0] / fb_t[0]:.0f}x")
    print("torch = pure-PyTorch compositor, compiled = compiled CPU kernels (BENCH_RENDER_COMPILED); "
          "Meval/s f+b = evaluations / (forward+backward time)")
    print("torch* = opaque scene (opacity logits + 2.5); evaluations = padded block size before "
          "finished tiles are skipped; reference evaluations = pixels inside the boxes")
    print("exp lanes = the compiled forward pass's pixel lanes through exp() per render (its real "
          "work); Mlane/s f+b = exp lanes / (forward+backward time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
