"""Hand-made sweep folders for the report tests: results.json files with chosen metric values."""

import json
from pathlib import Path

METRIC_NAMES = ("psnr", "ssim", "ssim_gauss", "lpips", "psnr_dyn", "ssim_dyn", "lpips_dyn")


def write_run(sweep: Path, variant: str, dataset: str, scene: str, seed: int, values: dict,
              protocol: str = "synthetic", blur_type: str = "motion") -> Path:
    """One run directory with a results.json whose aggregate holds ``values`` (others None)."""
    run_id = f"{variant}-{dataset}-{scene}-s{seed}"
    run = sweep / "runs" / run_id
    run.mkdir(parents=True)
    aggregate = {m: values.get(m) for m in METRIC_NAMES}
    doc = {
        "schema": 1, "run_id": run_id, "sweep": sweep.name, "method": variant, "base_method": "dydeblur",
        "dataset": dataset, "scene": scene, "blur_type": blur_type, "seed": seed, "config_hash": "abc",
        "metrics": {"protocol": {"name": protocol, "lpips_input": "scaled"}, "aggregate": aggregate,
                    "per_image": {"00000": aggregate},
                    "missing": {m: "not computed in this fixture" for m, v in aggregate.items() if v is None}},
        "train": {"steps": 10, "wall_time_s": 12.5, "peak_memory_bytes": 1000, "device": "cpu"},
        "provenance": {"git_commit": "deadbeef", "git_dirty": False,
                       "packages": {"dydeblur-bench": "0.1.0", "torch": "2.14.1", "gsplat": "1.5.3"},
                       "device": "Test CPU", "hostname": "node1", "slurm": {"job_id": "42"},
                       "wall_time_s": 13.0, "peak_memory": {"cpu_rss": 2048, "gpu_allocated": None}},
    }
    (run / "results.json").write_text(json.dumps(doc))
    return run


def make_sweep(root: Path, table: dict, seeds=(0,), dataset="toy", protocol="synthetic") -> Path:
    """table: {variant: {scene: {metric: value}}}; a seed offset of +0.01*seed is added to psnr."""
    sweep = root / "demo"
    for variant, scenes in table.items():
        for scene, values in scenes.items():
            for seed in seeds:
                vals = dict(values)
                if "psnr" in vals:
                    vals["psnr"] += 0.01 * seed
                write_run(sweep, variant, dataset, scene, seed, vals, protocol,
                          blur_type="defocus" if scene.startswith("defocus") else "motion")
    return sweep
