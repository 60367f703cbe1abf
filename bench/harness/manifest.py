"""``<sweep_dir>/manifest.json``: the sweep's runs and every submission's job ids, for reattaching.

Layout::

    {"schema": 1, "sweep": "demo", "sweep_file": "/abs/sweeps/demo.yaml", "created": ..., "updated": ...,
     "runs": {"<run_id>": {"variant", "dataset", "scene", "seed", "config_hash",
                           "submission": 2, "executor": "slurm", "job_id": "1234_5"}},
     "submissions": [{"id": 2, "time", "executor", "host", "argv",
                      "jobs": [{"job_id": "1234", "run_ids": [...], "resources": {...}}],
                      "local": {"queue": ..., "state": ..., "supervisor": {"pid", "start"}}}]}

Read-modify-write happens under an fcntl lock so two ``bench sweep`` calls cannot lose entries.
"""

from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from bench.atomic import write_json
from bench.errors import BenchError
from bench.harness.runs import read_json

MANIFEST = "manifest.json"
SCHEMA = 1


def manifest_path(sweep_dir: Path) -> Path:
    return Path(sweep_dir) / MANIFEST


def read_manifest(sweep_dir: Path) -> dict[str, Any] | None:
    return read_json(manifest_path(sweep_dir))


def require_manifest(sweep_dir: Path) -> dict[str, Any]:
    manifest = read_manifest(sweep_dir)
    if manifest is None:
        raise BenchError(f"{manifest_path(sweep_dir)}: no manifest; submit the sweep first "
                         "(bench sweep FILE)")
    return manifest


@contextmanager
def updating(sweep_dir: Path, sweep: str, sweep_file: str | None) -> Iterator[dict[str, Any]]:
    """Yield the manifest (a fresh one if none) and write it back atomically on exit."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(sweep_dir / ".manifest.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        manifest = read_manifest(sweep_dir) or {
            "schema": SCHEMA, "sweep": sweep, "created": now, "runs": {}, "submissions": []}
        manifest["sweep_file"] = sweep_file
        yield manifest
        manifest["updated"] = now
        write_json(manifest_path(sweep_dir), manifest)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def submissions_by_id(manifest: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {s["id"]: s for s in manifest.get("submissions", [])}
