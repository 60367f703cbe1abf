"""How long a sweep's runs take and how much disk they fill, from runs measured on this machine.

A run's cost is what its job took (``provenance.wall_time_s`` of results.json: training, evaluation
and results) and the size of its directory, read from finished runs: those of the sweep itself
and of the other sweeps this user submitted here (:mod:`bench.harness.sweep_index`). A run is
estimated from measured runs of its resource class (device, CPUs per task, GPUs per node,
partition), the closest first: the same variant, dataset and step count; else the same step count;
else any step count, scaled by the steps. A run with nothing of its class measured has no
estimate, and the text says so rather than guess.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from bench import rundir
from bench.harness import sweep_index
from bench.harness.manifest import read_manifest
from bench.rundir import read_json
from bench.sweepdir import runs_dir


@dataclass(frozen=True)
class Measured:
    """One finished run: what it was, its resource class, its job's wall time and its size on disk."""

    variant: str
    dataset: str
    steps: int
    klass: str
    wall_s: float
    bytes: int | None  # None: not measured (measure(sized=False))


@dataclass(frozen=True)
class Cost:
    """The estimate of one run: seconds and bytes (None: nothing comparable measured), and on what
    it rests (``basis``: how many measured runs, matched how)."""

    seconds: float | None
    bytes: int | None
    basis: str


def resource_class(resources: dict[str, Any], device: str) -> str:
    """The resource class of a run (its job.json ``resources`` and ``device``), as one string."""
    return json.dumps({"device": device, **{k: resources.get(k) for k in
                                            ("cpus_per_task", "gpus_per_node", "partition")}}, sort_keys=True)


def _size(run_dir: Path) -> int:
    return sum(p.stat().st_size for p in run_dir.rglob("*") if p.is_file())


def measure(run_dir: Path, sized: bool = True) -> Measured | None:
    """The cost of a finished run of a sweep (None: unfinished, or its files lack the figures).
    ``sized=False`` leaves out its size on disk (a walk of every file, needed for the dry run's disk
    estimate only, not for an ETA)."""
    results, job = read_json(run_dir / rundir.RESULTS), read_json(run_dir / rundir.JOB)
    if not results or not job:
        return None
    wall = (results.get("provenance") or {}).get("wall_time_s")
    steps = (results.get("train") or {}).get("steps")
    if not wall or not steps:
        return None
    return Measured(str(results.get("method")), str(results.get("dataset")), int(steps),
                    resource_class(job.get("resources") or {}, str(job.get("device"))), float(wall),
                    _size(run_dir) if sized else None)


def measured_runs(sweep_dirs: Iterable[Path]) -> list[Measured]:
    """The finished runs of ``sweep_dirs`` and of every sweep recorded in the index, each once."""
    return measured_runs_of({Path(d).absolute() for d in sweep_dirs} | set(sweep_index.all_outputs()))


def measured_runs_of(sweep_dirs: Iterable[Path], sized: bool = True) -> list[Measured]:
    """The finished runs of ``sweep_dirs`` (``sized``: as for :func:`measure`)."""
    found = []
    for sweep_dir in sorted(sweep_dirs):
        manifest = read_manifest(sweep_dir)
        for run_id in (manifest or {}).get("runs", {}):
            run = measure(runs_dir(sweep_dir) / run_id, sized)
            if run is not None:
                found.append(run)
    return found


@lru_cache(maxsize=256)
def _steps(method: str, profile: str | None, overrides: str) -> int:
    from bench.method.config import resolve_config

    return resolve_config(method, profile, json.loads(overrides)).train.steps


def planned_steps(job: dict[str, Any]) -> int | None:
    """The training steps of a planned run (job.json: method, profile, overrides); None when its
    configuration no longer resolves (the run is then stale, and re-planned on submission)."""
    from bench.errors import BenchError

    try:
        return _steps(str(job.get("method")), job.get("profile"), json.dumps(job.get("overrides") or {},
                                                                            sort_keys=True))
    except BenchError:
        return None


def run_cost(variant: str, dataset: str, steps: int, klass: str, measured: list[Measured]) -> Cost:
    """The estimate of one run from ``measured`` (module docstring: how runs are matched)."""
    same = [m for m in measured if m.klass == klass]
    for label, pool, scale in (
            ("same variant, dataset and steps", [m for m in same if (m.variant, m.dataset, m.steps) ==
                                                  (variant, dataset, steps)], False),
            (f"{steps} steps, any variant", [m for m in same if m.steps == steps], False),
            ("scaled by steps", same, True)):
        if pool:
            seconds = [m.wall_s * (steps / m.steps if scale else 1.0) for m in pool]
            sizes = [m.bytes for m in pool if m.bytes is not None]
            return Cost(statistics.median(seconds), int(statistics.median(sizes)) if sizes else None,
                        f"{len(pool)} measured run(s), {label}")
    return Cost(None, None, "no run of its resource class measured on this machine")


@dataclass(frozen=True)
class Estimate:
    """A set of runs: summed seconds and bytes of those with an estimate, how many lack one, the
    wall-clock duration at ``parallel`` runs at once, and the bases used."""

    seconds: float
    bytes: int
    estimated: int
    unestimated: int
    parallel: int | None
    bases: tuple[str, ...]

    @property
    def duration_s(self) -> float:
        """Wall-clock time at ``parallel`` runs at once (one at a time when unknown)."""
        return self.seconds / max(1, self.parallel or 1)

    def lines(self) -> list[str]:
        """The estimate as the dry run prints it."""
        if not self.estimated:
            return ["estimate: none yet: no run of this resource class has finished on this machine (one "
                    "finished run is enough: e.g. the README's two-minute path)"]
        at_once = (f"{self.parallel} at once" if self.parallel else "one at a time (parallelism unknown)")
        lines = [f"estimate: {format_duration(self.duration_s)} wall clock ({format_duration(self.seconds)} "
                 f"of runs, {at_once}), {format_bytes(self.bytes)} on disk, for {self.estimated} runs"]
        lines.append("  from " + "; ".join(self.bases))
        if self.unestimated:
            lines.append(f"  {self.unestimated} more run(s) without an estimate (nothing of their resource "
                         "class measured here)")
        return lines


def estimate(costs: list[Cost], parallel: int | None) -> Estimate:
    """Sum the runs' costs; ``parallel``: how many run at once (Executor.concurrency)."""
    known = [c for c in costs if c.seconds is not None]
    bases = tuple(sorted({c.basis for c in known}))
    return Estimate(sum(c.seconds for c in known), sum(c.bytes or 0 for c in known), len(known),
                    len(costs) - len(known), parallel, bases)


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3.4 h``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_bytes(n: float) -> str:
    """``512 B``, ``3.4 MB``, ``1.3 GB`` (powers of 1000)."""
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
