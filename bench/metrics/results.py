"""results.json: the run's "finished" marker, written atomically and last (docs/datasets.md §Results)."""

from __future__ import annotations

import json
from pathlib import Path

from bench import rundir
from bench.errors import BenchError

def write_results(run_dir, identity: rundir.RunIdentity, metrics: dict, extra: dict) -> Path:
    """Write ``<run_dir>/results.json`` (layout and key order: bench.rundir.write_results).

    metrics: the block returned by ``evaluate_run``. extra: train (train_summary.json), provenance,
    evaluations, ...
    """
    for key in ("aggregate", "per_image", "protocol", "missing"):
        if key not in metrics:
            raise BenchError(f"results metrics: missing key {key!r} (expected the evaluate_run block)")
    return rundir.write_results(run_dir, identity, metrics, extra)


def stored_run(run_dir) -> tuple[rundir.RunIdentity, dict, dict]:
    """A finished run's identity, its metrics block, and what its results.json holds beside those and
    the schema (train summary, provenance, evaluations), for ``bench eval`` to write the file again."""
    run_dir = Path(run_dir)
    doc = rundir.read_results(run_dir)
    rest = {k: v for k, v in doc.items() if k not in ("schema", "metrics", *rundir.IDENTITY_KEYS)}
    return rundir.RunIdentity.read(doc, run_dir / rundir.RESULTS), doc.get("metrics") or {}, rest


def identity_from_config(run_dir) -> rundir.RunIdentity:
    """The identity training wrote into a run's config.yaml. A config.yaml of a version that
    recorded the identity without run_id, sweep and blur type gets those three from where the
    directory lies and from the data registry, as that version's results did."""
    from bench.data.registry import blur_type_of

    run_dir = Path(run_dir)
    config = rundir.read_config(run_dir)
    if "run_id" in config:
        return rundir.RunIdentity.read(config, run_dir / rundir.CONFIG)
    kept = ("method", "base_method", "dataset", "scene", "seed", "config_hash")
    return rundir.RunIdentity.of_directory(run_dir, blur_type=blur_type_of(config["dataset"], config["scene"]),
                                           **{k: config.get(k) for k in kept})


def extra_from_run_dir(run_dir) -> dict:
    """Train summary and provenance for a run that has renders but no results.json yet."""
    from bench import provenance

    summary_path = Path(run_dir) / rundir.TRAIN_SUMMARY
    train = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    return {
        "train": train,
        "provenance": {**provenance.collect(), "wall_time_s": train.get("wall_time_s"),
                       "peak_memory": train.get("peak_memory_bytes")},
    }
