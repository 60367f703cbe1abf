"""A sweep's progress as the user reads it: done of total, elapsed, rate, ETA, and each running
run's ``step k/N``.

Elapsed time counts from the sweep's latest submission; the rate is the runs finished since then
per hour. The ETA is for the runs in flight (pending or running): the estimated work left (:mod:`bench.harness.estimate`: each unfinished run
from measured runs of its resource class, a running run less the share of its steps done) over the
runs running now; without measured runs it is the runs left over the rate, and without either it
is unknown until a run finishes. Finished runs are read once and kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import yaml

from bench import rundir
from bench.errors import BenchError
from bench.harness import estimate
from bench.harness.states import Shown
from bench.rundir import read_json
from bench.sweepdir import runs_dir


@dataclass(frozen=True)
class Progress:
    """One reading: runs done / failed of ``total``, seconds since the submission, runs per hour,
    seconds left (None: unknown) and on what the ETA rests."""

    done: int
    failed: int
    total: int
    elapsed_s: float | None
    rate_per_h: float | None
    eta_s: float | None
    eta_basis: str

    def line(self) -> str:
        """``42/108 done, 0 failed · 31 min elapsed · 81 runs/h · ETA 49 min (measured runs)``"""
        parts = [f"{self.done}/{self.total} done, {self.failed} failed"]
        if self.elapsed_s is not None:
            parts.append(f"{estimate.format_duration(self.elapsed_s)} elapsed")
        if self.rate_per_h:
            parts.append(f"{self.rate_per_h:.1f} runs/h")
        if self.done + self.failed < self.total:
            parts.append(f"ETA {estimate.format_duration(self.eta_s)} ({self.eta_basis})" if self.eta_s is not None
                         else f"no ETA ({self.eta_basis})")
        return " · ".join(parts)


class SweepProgress:
    """Reads the progress of a sweep's runs from their directories; keeps what cannot change."""

    def __init__(self, sweep_dir: Path, manifest: dict):
        self.sweep_dir = Path(sweep_dir)
        self.manifest = manifest
        self._measured: dict[str, estimate.Measured | None] = {}
        self._others: list[estimate.Measured] | None = None
        self._jobs: dict[str, dict] = {}
        self._steps: dict[str, int | None] = {}
        self._ends: dict[str, float | None] = {}
        self._peak = 0  # the most runs seen running at once

    def steps(self, run_id: str) -> tuple[int | None, int | None]:
        """(last logged step, steps planned) of a run; either None when not known yet."""
        run_dir = runs_dir(self.sweep_dir) / run_id
        if self._steps.get(run_id) is None:
            config = _config(run_dir)
            self._steps[run_id] = ((config.get("config") or {}).get("train") or {}).get("steps")
        return rundir.last_curve_step(run_dir), self._steps[run_id]

    def reading(self, snap: dict[str, tuple[str, dict]]) -> Progress:
        """The progress of the runs of ``snap`` ({run id: (shown state, status.json)})."""
        states = {rid: state for rid, (state, _) in snap.items()}
        since = self._submitted_at()
        left = [rid for rid, s in states.items() if s not in (Shown.DONE, Shown.FAILED)]
        done = [rid for rid, s in states.items() if s == Shown.DONE]
        ends = {rid: self._end(rid) for rid in done}
        # a sweep that has ended: its elapsed time stops at its last run's end
        until = time.time() if left else max([e for e in ends.values() if e is not None], default=time.time())
        elapsed = None if since is None else max(0.0, until - since)
        recent = [rid for rid in done if since is not None and (ends[rid] or 0.0) >= since]
        rate = len(recent) / (elapsed / 3600) if recent and elapsed else None
        flight = [rid for rid in left if states[rid] in (Shown.PENDING, Shown.RUNNING)]
        running = [rid for rid in flight if states[rid] == Shown.RUNNING]
        eta, basis = self._eta(flight, running, rate) if flight else (
            None, f"none in flight; {len(left)} not submitted or interrupted")
        return Progress(len(done), sum(s == Shown.FAILED for s in states.values()), len(states), elapsed, rate,
                        eta, basis)

    def _eta(self, left: list[str], running: list[str], rate: float | None) -> tuple[float | None, str]:
        """Seconds until the runs in flight (``left``) end, and on what that rests."""
        measured = self._measured_runs()
        costs = {rid: self._cost(rid, measured) for rid in left}
        if all(c.seconds is not None for c in costs.values()):
            work = 0.0
            for rid, cost in costs.items():
                step, total = self.steps(rid) if rid in running else (None, None)
                share = min(1.0, step / total) if step and total else 0.0
                work += cost.seconds * (1.0 - share)
            # runs at once: the most seen running together while following (bounded by those left), so
            # the ETA does not double for the moment between one run's end and the next one's start
            self._peak = max(self._peak, len(running))
            at_once = max(1, min(self._peak, len(left)))
            return work / at_once, f"from {len(measured)} measured runs, {at_once} at once"
        if rate:
            return len(left) / rate * 3600, "at the rate so far"
        return None, "until a run of each resource class finishes"

    def _cost(self, run_id: str, measured: list[estimate.Measured]) -> estimate.Cost:
        job = self._job(run_id)
        steps = self.steps(run_id)[1] or job.get("steps")
        if not job or not steps:
            return estimate.Cost(None, None, "no job.json or steps")
        klass = estimate.resource_class(job.get("resources") or {}, str(job.get("device")))
        return estimate.run_cost(str(job.get("method")), str(job.get("dataset")), int(steps), klass, measured)

    def _job(self, run_id: str) -> dict:
        if run_id not in self._jobs:
            job = read_json(runs_dir(self.sweep_dir) / run_id / rundir.JOB) or {}
            if job and "steps" not in job:
                job["steps"] = estimate.planned_steps(job)
            self._jobs[run_id] = job
        return self._jobs[run_id]

    def _measured_runs(self) -> list[estimate.Measured]:
        """Finished runs of this sweep (each read once) and of the other recorded sweeps (read once)."""
        for run_id in self.manifest.get("runs", {}):
            if self._measured.get(run_id) is None:
                self._measured[run_id] = estimate.measure(runs_dir(self.sweep_dir) / run_id, sized=False)
        if self._others is None:
            others = [d for d in estimate.sweep_index.all_outputs() if d != self.sweep_dir.absolute()]
            self._others = estimate.measured_runs_of(others, sized=False)
        return [m for m in self._measured.values() if m is not None] + self._others

    def _end(self, run_id: str) -> float | None:
        """When a finished run's job ended (status.json), read once."""
        if self._ends.get(run_id) is None:  # status.json's end time lands just after results.json
            status = read_json(runs_dir(self.sweep_dir) / run_id / rundir.STATUS) or {}
            self._ends[run_id] = _epoch(status.get("end_time"))
        return self._ends[run_id]

    def _submitted_at(self) -> float | None:
        subs = self.manifest.get("submissions") or []
        return _epoch(subs[-1].get("time")) if subs else None


def _config(run_dir: Path) -> dict:
    """The run's config.yaml, {} while training has not written it yet (or it is unreadable)."""
    try:
        return rundir.read_config(run_dir)
    except (BenchError, OSError, yaml.YAMLError):  # a live view reads on while training writes
        return {}


def _epoch(stamp: str | None) -> float | None:
    """Seconds since the epoch of a stored time stamp (ISO 8601 with an offset), None if unreadable."""
    try:
        return datetime.fromisoformat(stamp).timestamp() if stamp else None
    except ValueError:
        return None
