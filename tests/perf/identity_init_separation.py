"""Identity-basis coefficient starts compared on the two-squares scene (prints figures; not a test).

The scene (tests/test_method_motion.py) has two squares moving in opposite directions and no
tracks or flow, so the motion initialisation takes the identity path. For each start the script
trains ``no_blur`` briefly per seed and prints how well the two objects' motions came apart::

    BENCH_RENDER_COMPILED=0 OMP_NUM_THREADS=1 python tests/perf/identity_init_separation.py \\
        --steps 300 --seeds 0 1 2 --motion-bases-lr 5e-3

Starts: ``cluster:W`` (the method's: k-means clusters, W of the mass on the own cluster's basis),
``random:S`` (logits ~ N(0, S^2)), ``equal`` (all logits 0: the old, symmetric start). Printed per
run: tv (distance between the two objects' mean coefficients), sep = dy_b - dy_a (learned
vertical travel apart; truth 0.6) and the seconds; then the mean of sep and tv per start.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bench.method.motion as motion  # noqa: E402
from test_method_motion import train_two_squares, two_squares_separation  # noqa: E402


def start(spec: str):
    """identity_coefficients replacement for a start spec (module docstring)."""
    kind, _, arg = spec.partition(":")
    if kind == "cluster":
        weight = float(arg)
        return lambda means, B, gen: motion.soft_one_hot(
            motion.kmeans(means.float(), min(B, len(means)), gen), B, weight)
    if kind == "random":
        return lambda means, B, gen: float(arg) * torch.randn(len(means), B, generator=gen)
    if kind == "equal":
        return lambda means, B, gen: torch.zeros(len(means), B)
    raise SystemExit(f"unknown start {spec!r}: expected cluster:W, random:S or equal")


def set_attr(target: str, value) -> None:
    module, _, name = target.rpartition(".")
    setattr(importlib.import_module(module), name, value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--motion-bases-lr", type=float, default=5e-3)
    ap.add_argument("--starts", nargs="+", default=["cluster:0.95", "cluster:0.9", "random:1", "equal"])
    args = ap.parse_args()
    summary: dict[str, list[tuple[float, float]]] = {}
    for spec in args.starts:
        motion.identity_coefficients = start(spec)
        for seed in args.seeds:
            t0 = time.perf_counter()
            model, _ = train_two_squares(Path(tempfile.mkdtemp()), set_attr, steps=args.steps, seed=seed,
                                         **{"optim.motion_bases": args.motion_bases_lr})
            s = two_squares_separation(model)
            sep = s["dy_b"] - s["dy_a"]
            summary.setdefault(spec, []).append((sep, s["tv"]))
            print(f"{spec:13s} seed {seed}: tv {s['tv']:.2f}  dy_a {s['dy_a']:+.3f}  dy_b {s['dy_b']:+.3f}  "
                  f"sep {sep:.3f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    for spec, rows in summary.items():
        print(f"{spec:13s} mean sep {sum(r[0] for r in rows) / len(rows):.3f}  "
              f"mean tv {sum(r[1] for r in rows) / len(rows):.2f}")


if __name__ == "__main__":
    main()
