"""Quality bar of issue 4 on the synthetic benchmark (prints figures; not a test).

Trains the variants that the bar compares (full, no_blur, defocus_kernel, motion_kernel) and the
ceiling ``true_blur`` (no_blur trained through the ground-truth blur) on the four synthetic scenes
with the ``cpu`` profile, then prints test-view PSNR per run, the averages per blur type, the
bar's differences, how much of the ceiling ``full`` reaches and the wall time per run::

    python tests/perf/quality_bar.py --out /tmp/quality_bar --jobs 2

Bar: full - no_blur >= 1.0 dB averaged over the motion scenes and over the defocus scenes;
defocus_kernel > motion_kernel on the defocus scenes and < on the motion scenes. Finished runs
in --out are reused (train() resumes from their final checkpoint). PSNR is full-image PSNR of the
8-bit test renders against the sharp right-camera frames, averaged over the test views.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

MOTION = ("motion_0", "motion_1")
DEFOCUS = ("defocus_0", "defocus_1")
VARIANTS = ("full", "no_blur", "defocus_kernel", "motion_kernel", "true_blur")
# Pseudo-variant: no_blur trained through the scene's ground-truth blur (bench/method/true_blur.py),
# the ceiling of any blur module at this profile; "full - no_blur" can only approach
# "true_blur - no_blur".
PSEUDO = {"true_blur": ("no_blur", {"blur.ground_truth": True})}


def _train_one(job: tuple) -> tuple:
    """Train one (variant, scene) run in a worker process; returns (variant, scene, wall s, summary)."""
    variant, scene, out, profile, overrides, seed, data_root = job
    from bench.method.train import train

    method, extra = PSEUDO.get(variant, (variant, {}))
    start = time.perf_counter()
    summary = train(Path(out) / f"{variant}__{scene}", method=method, dataset="synthetic", scene=scene,
                    seed=seed, profile=profile, overrides={**overrides, **extra}, data_root=data_root,
                    progress=False)
    return variant, scene, time.perf_counter() - start, summary


def test_psnr(run_dir: Path, scene_name: str, data_root=None) -> float:
    """Mean PSNR (dB) of renders/test/*.png against the scene's sharp test images."""
    import numpy as np

    from bench.data.registry import load_scene
    from bench.metrics.evaluate import read_image
    from bench.metrics.image import psnr

    scene = load_scene("synthetic", scene_name, data_root)
    return float(np.mean([psnr(read_image(run_dir / "renders" / "test" / f"{name}.png"),
                               scene.test.images[i].numpy())
                          for i, name in enumerate(scene.test.names)]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/quality_bar")
    parser.add_argument("--jobs", type=int, default=2, help="parallel runs (one torch thread each)")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--scenes", default=",".join(MOTION + DEFOCUS))
    parser.add_argument("--data-root", default=None, help="synthetic data root (default: the registry's)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    from bench.data.registry import load_scene
    from bench.method.config import parse_overrides

    overrides = parse_overrides(args.overrides)
    variants, scenes = args.variants.split(","), args.scenes.split(",")
    for scene in scenes:  # generate the synthetic scenes once, before the workers race for them
        load_scene("synthetic", scene, args.data_root)
    os.environ.setdefault("BENCH_TORCH_THREADS", "1")
    jobs = [(v, s, args.out, args.profile, overrides, args.seed, args.data_root) for s in scenes for v in variants]
    start = time.perf_counter()
    walls, summaries = {}, {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for variant, scene, wall, summary in pool.map(_train_one, jobs):
            walls[variant, scene], summaries[variant, scene] = wall, summary
            print(f"done {variant:15s} {scene:10s} {wall:6.1f} s  train {summary['wall_time_s']:6.1f} s  "
                  f"N {summary['num_gaussians']}", flush=True)
    total = time.perf_counter() - start
    psnr = {(v, s): test_psnr(Path(args.out) / f"{v}__{s}", s, args.data_root) for v in variants for s in scenes}
    print()
    print(f"{'variant':16s}" + "".join(f"{s:>11s}" for s in scenes) + f"{'motion':>9s}{'defocus':>9s}")
    avg = {}
    for v in variants:
        row = [psnr[v, s] for s in scenes]
        avg[v, "motion"] = _mean([psnr[v, s] for s in scenes if s in MOTION])
        avg[v, "defocus"] = _mean([psnr[v, s] for s in scenes if s in DEFOCUS])
        print(f"{v:16s}" + "".join(f"{x:11.2f}" for x in row) + f"{avg[v, 'motion']:9.2f}{avg[v, 'defocus']:9.2f}")
    print()
    _bar(avg)
    runs = list(walls.values())
    print(f"\nwall time per run: mean {sum(runs) / len(runs):.1f} s, max {max(runs):.1f} s "
          f"({len(runs)} runs, {args.jobs} in parallel, {total:.0f} s in all)")
    print(json.dumps({"psnr": {f"{v}/{s}": round(x, 3) for (v, s), x in psnr.items()},
                      "wall_s": {f"{v}/{s}": round(x, 1) for (v, s), x in walls.items()}}))


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def _bar(avg: dict) -> None:
    """Print each criterion of the bar with its margin (positive = met)."""
    checks = []
    if ("full", "motion") in avg and ("no_blur", "motion") in avg:
        for kind in ("motion", "defocus"):
            gain = avg["full", kind] - avg["no_blur", kind]
            checks.append((f"full - no_blur on {kind} scenes >= 1.0 dB", gain, gain - 1.0))
            if ("true_blur", kind) in avg:
                ceiling = avg["true_blur", kind] - avg["no_blur", kind]
                print(f"ceiling (true blur - no_blur) on {kind} scenes: {ceiling:+.2f} dB; "
                      f"full reaches {gain / ceiling:.0%} of it")
    if ("defocus_kernel", "motion") in avg and ("motion_kernel", "motion") in avg:
        d = avg["defocus_kernel", "defocus"] - avg["motion_kernel", "defocus"]
        m = avg["motion_kernel", "motion"] - avg["defocus_kernel", "motion"]
        checks.append(("defocus_kernel - motion_kernel on defocus scenes > 0", d, d))
        checks.append(("motion_kernel - defocus_kernel on motion scenes > 0", m, m))
    for text, value, margin in checks:
        print(f"{'MET ' if margin > 0 or (margin == 0 and 'dB' in text) else 'MISSED'} {text}: "
              f"{value:+.2f} dB (margin {margin:+.2f})")


if __name__ == "__main__":
    main()
