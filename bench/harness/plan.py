"""The plan of a sweep: which runs are finished, failed, in flight, or still to run.

"Finished" is the run's own results.json carrying the same config hash; a failed run is never
finished. Decisions (default / ``--retry-failed`` / ``--force``):

============  ==============  ===============  ===================
state         default         --retry-failed   --force
============  ==============  ===============  ===================
finished      skip            skip             archive, run again
failed        skip (listed)   retry            retry
active        skip            skip             skip
interrupted   run (resumes)   run (resumes)    run (resumes)
new           run             run              run
stale         error           error            archive, run again
============  ==============  ===============  ===================

``stale`` = the run directory holds a different configuration than planned (its stored job or
results hash differs): never overwritten silently.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench import rundir, sweepdir
from bench.errors import BenchError
from bench.harness.runs import RunSpec, lock_held
from bench.harness.states import Planned, planned
from bench.rundir import JOB, read_json
from bench.sweepdir import runs_dir

# The planner's states (bench.harness.states.Planned), under the names this module's users know.
FINISHED, FAILED, ACTIVE, INTERRUPTED, NEW, STALE = (
    Planned.FINISHED, Planned.FAILED, Planned.ACTIVE, Planned.INTERRUPTED, Planned.NEW, Planned.STALE)

Alive = Callable[[str, dict], bool]


def _never_alive(run_id: str, status: dict) -> bool:
    return False


def run_state(run_dir: Path, chash: str, alive: Alive = _never_alive, exists: bool | None = None
              ) -> tuple[str, dict]:
    """(state, status.json contents) of one run directory for the planned hash ``chash``.

    ``exists`` (optional) says whether the directory exists, saving system calls in big sweeps.
    """
    if exists is False:
        return NEW, {}
    found = rundir.results_config_hash(run_dir)
    if found is not False:
        if found != chash and (read_json(run_dir / rundir.RESULTS) or {}).get("config_hash") == chash:
            found = chash
        return (FINISHED if found == chash else STALE), {}
    status = read_json(run_dir / rundir.STATUS)
    if status is None:
        if not run_dir.is_dir():
            return NEW, {}
        job = read_json(run_dir / JOB)
        return (STALE if job and job.get("config_hash") != chash else INTERRUPTED), {}
    job = read_json(run_dir / JOB)
    if job and job.get("config_hash") != chash:
        return STALE, status
    state = status.get("state")
    held = lambda: lock_held(run_dir) or alive(run_dir.name, status)  # noqa: E731 (asked only in flight)
    return planned(state, held), status


@dataclass
class Plan:
    """Runs grouped by state, and the runs this invocation will submit."""

    runs: list[RunSpec]
    states: dict[str, str]
    statuses: dict[str, dict]
    to_submit: list[RunSpec] = field(default_factory=list)
    to_archive: list[RunSpec] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(1 for s in self.states.values() if s == state)

    def ids(self, state: str) -> list[str]:
        return [r.run_id for r in self.runs if self.states[r.run_id] == state]

    def summary(self) -> str:
        submit_ids = {r.run_id for r in self.to_submit}
        retry = sum(1 for i in submit_ids if self.states[i] == FAILED)
        rerun = sum(1 for i in submit_ids if self.states[i] in (FINISHED, STALE))
        to_run = len(submit_ids) - retry - rerun
        skipped_failed = self.count(FAILED) - retry
        parts = [f"{len(self.runs)} runs", f"{self.count(FINISHED)} finished",
                 f"{to_run} to run ({self.count(INTERRUPTED)} resume)", f"{retry} to retry"]
        if rerun:
            parts.append(f"{rerun} to re-run (--force)")
        if self.count(ACTIVE):
            parts.append(f"{self.count(ACTIVE)} in flight")
        if skipped_failed:
            parts.append(f"{skipped_failed} failed, skipped (use --retry-failed)")
        return ", ".join(parts)


def make_plan(runs: list[RunSpec], sweep_dir: Path, *, retry_failed: bool = False, force: bool = False,
              alive: Alive = _never_alive) -> Plan:
    """Classify every run and decide what to submit (see the module table)."""
    root = runs_dir(sweep_dir)
    states: dict[str, str] = {}
    statuses: dict[str, dict] = {}
    existing = set(os.listdir(root)) if root.is_dir() else set()
    for run in runs:
        states[run.run_id], statuses[run.run_id] = run_state(
            root / run.run_id, run.config_hash, alive, exists=run.run_id in existing)
    plan = Plan(runs, states, statuses)
    stale = plan.ids(STALE)
    if stale and not force:
        raise BenchError(f"{root / stale[0]}: holds a different configuration than planned "
                         f"({len(stale)} such run(s)); use --force to archive and re-run them")
    for run in runs:
        state = states[run.run_id]
        if state in (NEW, INTERRUPTED) or (state == FAILED and (retry_failed or force)):
            plan.to_submit.append(run)
        elif state in (FINISHED, STALE) and force:
            plan.to_submit.append(run)
            plan.to_archive.append(run)
    return plan


def archive_run(sweep_dir: Path, run_id: str) -> Path:
    """Move a run directory to ``<sweep>/archive/<run_id>.<time>`` (never delete results)."""
    src = runs_dir(sweep_dir) / run_id
    dst = Path(sweep_dir) / sweepdir.ARCHIVE / f"{run_id}.{time.strftime('%Y%m%dT%H%M%S')}"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(src), str(dst))
    return dst
