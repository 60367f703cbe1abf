"""The interface every executor implements, and what a submission hands it.

An executor launches ``bench.harness.job`` on run directories whose ``job.json`` and ``status.json``
(pending) are already written; outcomes are read back from the run directories, never from the
scheduler (SLURM says COMPLETED even when the Python function raised). So an executor only has to
say how jobs start, whether they still run, how to stop them and where their logs are.

Like submitit's ``Executor`` the base class does the shared work and a backend overrides a few
hooks; every hook has a harmless default, so a backend implements only what it has:

- submitting: :meth:`Executor.unavailable`, :meth:`Executor.submit`, :meth:`Executor.run_now`
  (in-process executors), :meth:`Executor.finish`;
- following (:class:`bench.harness.monitor.Liveness`): :meth:`Executor.refresh` (one call for all of
  this executor's submissions, as submitit's ``InfoWatcher``), :meth:`Executor.tracks`,
  :meth:`Executor.job_state`, :meth:`Executor.owns`, :meth:`Executor.holds`,
  :meth:`Executor.alive`;
- telling the user: :meth:`Executor.describe`, :meth:`Executor.log_hint`, :meth:`Executor.concurrency`
  (for time estimates);
- stopping: :meth:`Executor.cancel`.

Submission records (``manifest.json``'s ``submissions``) are plain dicts; a backend keeps its own
fields in them (SLURM: ``jobs``; the local queue: ``local``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterable

from bench.harness import procs

# This module imports nothing of the harness but procs: the sweep schema reaches it through the
# registry, and runs.py imports the schema. Runs are bench.harness.runs.RunSpec, typed Any here.
Say = Callable[[str], None]
OnEnd = Callable[[Any, str], None]  # (RunSpec, final state)


@dataclass
class Submission:
    """One submission being made: the prepared runs and the manifest record to fill."""

    sweep_dir: Path
    sweep: str
    runs: list[Any]  # RunSpec
    record: dict[str, Any]  # the manifest's submission record; submit() adds its backend's fields
    save: Callable[[], None]  # store ``record`` in the manifest now (e.g. after each accepted array)
    max_concurrent: int | None
    device: str
    say: Say


class Executor:
    """A backend running prepared run directories. ``kind`` is its name in the registry
    (:mod:`bench.harness.executors.registry`), stored in the manifest and in status.json."""

    # True when submit/run_now runs every job before returning: nothing is left to follow.
    in_process: ClassVar[bool] = False
    # Scheduler states (as job_state returns them) meaning "the job runs now", not "queued".
    running_states: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, kind: str):
        self.kind = kind

    # ------------------------------------------------------------ submitting

    def unavailable(self) -> str | None:
        """Why this executor cannot be used here (shown as an error), None when it can."""
        return None

    def submit(self, sub: Submission) -> None:
        """Launch ``sub.runs`` without waiting for them; record job ids etc. in ``sub.record``."""

    def run_now(self, sub: Submission, on_end: OnEnd) -> None:
        """Run the jobs here, after the submission lock is released (in-process executors only)."""

    def finish(self) -> None:
        """After following a submission to its end: release what :meth:`submit` holds."""

    def concurrency(self, runs: list[Any], max_concurrent: int | None, device: str) -> int | None:
        """How many of ``runs`` would run at once (an upper bound, for time estimates); None: unknown."""
        return None

    def child_env(self) -> dict[str, str]:
        """The environment of a process this executor starts: this checkout importable."""
        return procs.child_env()

    # ------------------------------------------------------------ following

    def refresh(self, subs: list[dict[str, Any]]) -> None:
        """Ask the scheduler about all of this executor's submissions at once (one call)."""

    def tracks(self, sub: dict[str, Any], run_id: str, runs: dict[str, Any]) -> bool:
        """Whether ``sub`` holds a job record for the run, so that :meth:`job_state` can answer
        (``runs``: the manifest's runs). Else the submission is judged by its own state only."""
        return False

    def job_state(self, sub: dict[str, Any], run_id: str, runs: dict[str, Any]) -> str | None:
        """The scheduler's state of the job holding ``run_id`` in ``sub``; None when it has none."""
        return None

    def owns(self, sub: dict[str, Any], holder: dict[str, Any]) -> bool:
        """Whether the process in a run-lock holder record was started by ``sub``."""
        return False

    def holds(self, holder: dict[str, Any]) -> bool:
        """Whether a lock holder on another host is a job this executor still lists."""
        return False

    def alive(self, sub: dict[str, Any]) -> bool:
        """Whether some process or job of ``sub`` may still start or run a run."""
        return False

    # ------------------------------------------------------------ telling the user

    def describe(self, sub: dict[str, Any]) -> str:
        """Where a submission's jobs are, for "in flight" lines (its host by default)."""
        return str(sub.get("host", "?"))

    def log_hint(self, sweep_dir: Path, run_id: str, info: dict[str, Any]) -> str | None:
        """The log of a run's job when status.json names none (``info``: its manifest entry)."""
        return None

    # ------------------------------------------------------------ stopping

    def cancel(self, subs: Iterable[dict[str, Any]], say: Say) -> None:
        """Stop every job of ``subs`` still queued or running, saying what is done."""
