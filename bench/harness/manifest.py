"""``<sweep_dir>/manifest.json``: the sweep's runs and every submission's job ids, for reattaching.

Layout::

    {"schema": 1, "sweep": "demo", "sweep_file": "/abs/sweeps/demo.yaml", "created": ..., "updated": ...,
     "runs": {"<run_id>": {"variant", "dataset", "scene", "seed", "config_hash",
                           "submission": 2, "executor": "slurm", "job_id": "1234_5"}},
     "reference": "full", "variants": ["full", ...], "scenes": {"<dataset>": ["<scene>", ...]},
     "submissions": [{"id": 2, "time", "executor", "host", "argv",
                      "jobs": [{"job_id": "1234", "run_ids": [...], "resources": {...}}],
                      "local": {"queue": ..., "state": ..., "supervisor": {"pid", "start"}}}]}

Read-modify-write happens under an fcntl lock so two ``bench sweep`` calls cannot lose entries.
A second, longer lock (``.submit.lock``, :func:`submitting`) is held by a ``bench sweep`` from its
plan until its submission is recorded: two submissions of one sweep plan one after the other, so
the second sees the first's runs in flight instead of submitting them again. A submission record
is written with ``"state": "submitting"`` and its submitter's pid first, ``"submitted"`` last.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from bench import locks
from bench.atomic import write_json
from bench.harness.states import SubmissionState
from bench.locks import FileLock
from bench.rundir import read_json
from bench.sweepdir import manifest_path

SCHEMA = 1
SUBMIT_LOCK = ".submit.lock"
SUBMITTING, SUBMITTED = SubmissionState.SUBMITTING, SubmissionState.SUBMITTED  # a submission record's state


def read_manifest(sweep_dir: Path) -> dict[str, Any] | None:
    """The manifest, or None when missing or unreadable (bench.sweepdir.read_manifest raises)."""
    return read_json(manifest_path(sweep_dir))


@contextmanager
def updating(sweep_dir: Path, sweep: str, sweep_file: str | None) -> Iterator[dict[str, Any]]:
    """Yield the manifest (a fresh one if none) and write it back atomically on exit."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(sweep_dir / ".manifest.lock"):
        now = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        manifest = read_manifest(sweep_dir) or {
            "schema": SCHEMA, "sweep": sweep, "created": now, "runs": {}, "submissions": []}
        manifest["sweep_file"] = sweep_file
        yield manifest
        manifest["updated"] = now
        write_json(manifest_path(sweep_dir), manifest)


def submissions_by_id(manifest: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {s["id"]: s for s in manifest.get("submissions", [])}


@contextmanager
def submitting(sweep_dir: Path, say=lambda msg: print(msg, file=sys.stderr, flush=True)) -> Iterator[None]:
    """Hold the sweep's submission lock (waiting for another ``bench sweep`` holding it, and
    saying so once with its pid and host)."""
    sweep_dir = Path(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(sweep_dir / SUBMIT_LOCK)
    record = {"pid": os.getpid(), "host": socket.gethostname()}
    if not lock.acquire(1.0, record=record):  # a status probe holds it for microseconds: wait that out
        holder = locks.holder(lock.path)
        who = f"pid {holder.get('pid')} on {holder.get('host')}" if holder else "another process"
        say(f"waiting: {who} is submitting this sweep ({sweep_dir})")
        lock.acquire(record=record)
    try:
        yield
    finally:
        lock.release()


def submission_in_progress(sweep_dir: Path) -> bool:
    """Whether some ``bench sweep`` holds the sweep's submission lock right now."""
    return locks.held(Path(sweep_dir) / SUBMIT_LOCK)