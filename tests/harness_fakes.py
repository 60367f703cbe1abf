"""Stand-ins for harness tests: prepared run directories and a fake training pipeline."""

from __future__ import annotations

import json
from pathlib import Path

from bench import rundir
from bench.harness.runs import write_job
from bench.rundir import write_status
from bench.sweepdir import runs_dir


def prepare_run(sweep_dir, run, **status):
    d = runs_dir(sweep_dir) / run.run_id
    d.mkdir(parents=True, exist_ok=True)
    write_job(d, run)
    if status:
        write_status(d, **status)
    return d


def finish_run(d, run, chash=None):
    (d / rundir.RESULTS).write_text(json.dumps({"config_hash": chash or run.config_hash}))


def fake_pipeline(fail_scenes=(), calls=None):
    """A training stand-in: checkpoints every 10 steps from the latest one; fails on some scenes."""
    from bench.metrics.results import write_results

    def train(run_dir, identity, config, *, profile, overrides, data_root, device, progress):
        run_dir = Path(run_dir)
        if calls is not None:
            calls.append(run_dir.name)
        if identity.scene in fail_scenes:
            raise FileNotFoundError(f"{data_root}/{identity.scene}: no such scene directory")
        latest = rundir.latest_checkpoint(run_dir)
        start = int(latest.stem.split("_")[1]) if latest else 0
        for step in range(start + 10, overrides["train.steps"] + 1, 10):
            rundir.checkpoint_path(run_dir, step).parent.mkdir(parents=True, exist_ok=True)
            rundir.checkpoint_path(run_dir, step).write_bytes(b"x")
        return {"steps": overrides["train.steps"], "start_step": start}

    def evaluate_modes(run_dir):
        return {"protocol": {"name": "fake"}, "aggregate": {"psnr": 20.0}, "per_image": {}, "missing": {}}, {}

    return lambda: (train, evaluate_modes, write_results)
