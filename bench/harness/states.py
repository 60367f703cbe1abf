"""Every vocabulary of a run's state in one place, and how one maps to the next.

Three questions get three vocabularies, because their answers differ:

- **stored** (:class:`Stored`): what a run's ``status.json`` says, written by the harness and the
  job (``pending`` when submitted, ``running``, ``requeued`` by SLURM preemption, ``done``,
  ``failed``, ``cancelled`` by ``bench cancel``);
- **planned** (:class:`Planned`): what ``bench sweep`` makes of a run directory against the planned
  hash (:func:`planned`; the decisions per state are tabled in :mod:`bench.harness.plan`);
- **shown** (:class:`Shown`): what ``bench status`` and the live view print (:func:`shown`).

Beside them: the outcome of one job call (:data:`BUSY` when another process holds the run) and the
state of a submission record in the manifest (:class:`SubmissionState`).
"""

from __future__ import annotations

from typing import Callable


class Stored:
    """``status.json`` ``state`` values."""

    PENDING = "pending"
    RUNNING = "running"
    REQUEUED = "requeued"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


# A job was submitted for the run or runs it: it is in flight if some process or job still has it.
IN_FLIGHT = frozenset({Stored.PENDING, Stored.RUNNING, Stored.REQUEUED})
# Submitted but not started (again): shown pending unless a job or the lock says it runs.
WAITING = frozenset({Stored.PENDING, Stored.REQUEUED})

# run_job's answer when another process holds the run's lock (never stored: that process decides).
BUSY = "busy"


class Planned:
    """What the planner decides for a run directory (bench.harness.plan)."""

    FINISHED = "finished"  # results.json with the planned hash
    FAILED = Stored.FAILED  # status.json says failed
    ACTIVE = "active"  # in flight, and a process or job still has it
    INTERRUPTED = "interrupted"  # started or submitted, nobody has it any more: resume
    NEW = "new"  # no run directory yet
    STALE = "stale"  # the directory holds another configuration


class Shown:
    """What the monitor prints for a run."""

    PENDING = Stored.PENDING
    RUNNING = Stored.RUNNING
    DONE = Stored.DONE
    FAILED = Stored.FAILED
    INTERRUPTED = Planned.INTERRUPTED
    NOT_SUBMITTED = "not submitted"


SHOWN_ORDER = (Shown.PENDING, Shown.RUNNING, Shown.DONE, Shown.FAILED, Shown.INTERRUPTED, Shown.NOT_SUBMITTED)


class SubmissionState:
    """A submission record's ``state`` in manifest.json."""

    SUBMITTING = "submitting"  # written first, with the submitter's pid
    SUBMITTED = "submitted"  # written last
    INCOMPLETE = "incomplete"  # submitting raised; what was accepted is recorded


def planned(stored: str | None, held: Callable[[], bool]) -> str:
    """The planner's state of a run directory with status.json state ``stored`` and no finished
    results; ``held()`` (asked only for a run in flight: it probes the lock and the scheduler)
    says whether its lock is held or a job still has it."""
    if stored == Stored.FAILED:
        return Planned.FAILED
    if stored in IN_FLIGHT and held():
        return Planned.ACTIVE
    return Planned.INTERRUPTED


def shown(state: str, stored: str | None, runs_now: Callable[[], bool]) -> str:
    """The monitor's state of a run the planner calls ``state`` (status.json: ``stored``). An active
    run still waiting is pending until ``runs_now()`` (asked only then: it calls the scheduler and
    probes the lock) says its job runs or a process holds its lock."""
    if state == Planned.ACTIVE:
        return Shown.PENDING if stored in WAITING and not runs_now() else Shown.RUNNING
    return {Planned.FINISHED: Shown.DONE, Planned.FAILED: Shown.FAILED,
            Planned.NEW: Shown.NOT_SUBMITTED}.get(state, Shown.INTERRUPTED)
