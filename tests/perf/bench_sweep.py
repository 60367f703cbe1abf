"""Benchmark: expand and plan a large sweep against an output root where half of the runs are finished.

    python tests/perf/bench_sweep.py [--seeds 250]

Every variant in methods/ x the synthetic scenes x 250 seeds (the expected count is read from the
method and data registries, so adding a variant or a scene does not break the check); every other
run gets a realistic results.json (16 test images x 7 metrics, provenance) and status.json. Prints
the time of validation + expansion + planning (the work `bench sweep FILE --dry-run` does before
printing) and checks that planning never imported torch. Target: under 2 s on the 2-core dev machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml


def _results(run) -> dict:
    metrics = ("psnr", "ssim", "ssim_gauss", "lpips", "psnr_dyn", "ssim_dyn", "lpips_dyn")
    per_image = {f"{i:05d}": {m: 0.5 + i / 100 for m in metrics} for i in range(16)}
    return {"schema": 1, "run_id": run.run_id, "sweep": run.sweep, "method": run.variant,
            "base_method": run.base_method, "dataset": run.dataset, "scene": run.scene,
            "blur_type": run.blur_type, "seed": run.seed, "config_hash": run.config_hash,
            "metrics": {"protocol": {"name": "synthetic"}, "aggregate": per_image["00000"],
                        "per_image": per_image, "missing": {}},
            "train": {"steps": 1500, "wall_time_s": 80.0},
            "provenance": {"git_commit": "0" * 40, "hostname": "node", "wall_time_s": 81.0}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=250, help="seeds per variant and scene")
    args = parser.parse_args()
    from bench.harness.plan import make_plan
    from bench.harness.runs import expand
    from bench.sweepdir import runs_dir
    from bench.harness.spec import load_sweep

    with tempfile.TemporaryDirectory() as tmp:
        sweep_file = Path(tmp) / "big.yaml"
        sweep_file.write_text(yaml.safe_dump({
            "name": "big", "output_root": str(Path(tmp) / "out"), "profile": "cpu", "variants": "all",
            "datasets": [{"name": "synthetic"}], "seeds": list(range(args.seeds)),
            "executor": {"kind": "local", "device": "cpu"}}))
        spec = load_sweep(sweep_file)
        runs = expand(spec)
        for run in runs[::2]:
            d = runs_dir(spec.output_dir()) / run.run_id
            d.mkdir(parents=True)
            (d / "results.json").write_text(json.dumps(_results(run), indent=2))
            (d / "status.json").write_text(json.dumps({"state": "done", "run_id": run.run_id}))
        t0 = time.perf_counter()
        spec = load_sweep(sweep_file)
        runs = expand(spec)
        plan = make_plan(runs, spec.output_dir())
        elapsed = time.perf_counter() - t0
        print(f"plan: {plan.summary()}")
        print(f"validate + expand + plan {len(runs)} runs ({plan.count('finished')} finished): "
              f"{elapsed:.3f} s")
        if "torch" in sys.modules:
            print("error: planning imported torch", file=sys.stderr)
            return 1
        expected = _expected_runs(args.seeds)
        if len(runs) != expected:
            print(f"error: expanded {len(runs)} runs, expected {expected} (variants x synthetic scenes x seeds)",
                  file=sys.stderr)
            return 1
        return 0


def _expected_runs(seeds: int) -> int:
    """Runs of ``variants: all`` on every synthetic scene: the registries' counts x ``seeds``."""
    from bench.data.registry import get_dataset
    from bench.method.registry import list_methods

    return len(list_methods()) * len(get_dataset("synthetic").scenes) * seeds


if __name__ == "__main__":
    sys.exit(main())
