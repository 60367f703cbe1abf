"""results.json: the run's "finished" marker, written atomically and last (docs/datasets.md §Results)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import rundir
from bench.errors import BenchError

def write_results(run_dir, metrics: dict, extra: dict) -> Path:
    """Write ``<run_dir>/results.json`` (layout and key order: bench.rundir.write_results).

    metrics: the block returned by ``evaluate_run``. extra: run_id, sweep, method, base_method,
    dataset, scene, blur_type, seed, config_hash, train (train_summary.json), provenance, ...
    """
    for key in ("aggregate", "per_image", "protocol", "missing"):
        if key not in metrics:
            raise BenchError(f"results metrics: missing key {key!r} (expected the evaluate_run block)")
    return rundir.write_results(run_dir, metrics, extra)



def _blur_type(dataset: str, scene: str) -> str | None:
    from bench.data.registry import get_dataset

    spec = get_dataset(dataset)
    for s in spec.scenes:
        if s.name == scene:
            return s.blur_type
    return spec.blur_type


def extra_from_run_dir(run_dir) -> dict:
    """Identity, train summary and provenance for a run that has renders but no results.json yet."""
    from bench import provenance
    from bench.metrics.evaluate import read_config

    run_dir = Path(run_dir)
    config = read_config(run_dir)
    identity = rundir.RunIdentity.from_config(run_dir, config, _blur_type(config["dataset"], config["scene"]))
    summary_path = run_dir / rundir.TRAIN_SUMMARY
    train = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return {
        **identity.to_dict(),
        "train": train,
        "provenance": {**provenance.collect(), "wall_time_s": train.get("wall_time_s"),
                       "peak_memory": train.get("peak_memory_bytes")},
    }
