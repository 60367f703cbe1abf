"""Following a sweep: each run's state from its directory plus the scheduler, and a live view.

A run's displayed state:

* ``done``: results.json with the planned hash;
* ``failed``: status.json says failed (error and log path shown);
* ``running``: its lock is held (a process trains it, whichever submission started it; ``bench
  status`` names the holder: pid and host, SLURM task, submission), or SLURM lists its task as
  running;
* ``pending``: submitted, and a job of some submission still has it queued (squeue, a live local
  supervisor, or a submission being made right now);
* ``interrupted``: submitted or started, but no process or job holds it any more (killed,
  cancelled, node lost): re-running the sweep resumes it from its latest checkpoint;
* ``not submitted``: in the sweep, never started.
"""

from __future__ import annotations

import socket
import sys
import time
from collections import Counter
from pathlib import Path

from bench.harness import plan
from bench.harness.executors import Executor, executor_names, known_executor
from bench.harness.manifest import read_manifest, submission_in_progress, submissions_by_id
from bench.harness.procs import same_process
from bench.harness.progress import SweepProgress
from bench.harness.runs import describe_holder, holder_alive, lock_held, lock_holder
from bench.harness.states import SHOWN_ORDER, Planned, Shown, Stored, SubmissionState, shown
from bench.sweepdir import runs_dir

# The shown states (bench.harness.states.Shown), under the names this module's users know.
DONE, FAILED, RUNNING, PENDING, INTERRUPTED, NOT_SUBMITTED = (
    Shown.DONE, Shown.FAILED, Shown.RUNNING, Shown.PENDING, Shown.INTERRUPTED, Shown.NOT_SUBMITTED)
ORDER = SHOWN_ORDER
SUBMITTING_JOB = "SUBMITTING"  # job_state of a run whose submission is being made right now


class Liveness:
    """Answers "is a job that should run this run still there?" from the manifest.

    A run is alive while any submission that lists it still has it: a job its executor still lists
    (:meth:`bench.harness.executors.base.Executor.job_state`), or a submission still being
    submitted (its record says "submitting" while ``bench sweep`` holds the sweep's submission
    lock). Not only the run's latest submission counts: two submissions of one sweep may both hold
    a run, and the one whose child got the run's lock trains it. With ``sweep_dir``,
    :meth:`refresh` re-reads the manifest, so submissions made by other processes meanwhile are seen.

    Each executor is asked once per :meth:`refresh` about all of its submissions.
    """

    def __init__(self, manifest: dict | None, sweep_dir: Path | None = None):
        self.sweep_dir = Path(sweep_dir) if sweep_dir is not None else None
        self.manifest = manifest or {"runs": {}, "submissions": []}
        self.host = socket.gethostname()
        self.executors: dict[str, Executor] = {}  # kind -> executor, kept across refreshes
        self.refresh()

    def refresh(self) -> None:
        if self.sweep_dir is not None:
            self.manifest = read_manifest(self.sweep_dir) or self.manifest
        self.subs = submissions_by_id(self.manifest)
        # run id -> ids of the submissions listing it, newest first
        self.by_run: dict[str, list[int]] = {}
        for sid in sorted(self.subs, reverse=True):
            for rid in self.subs[sid].get("run_ids") or ():
                self.by_run.setdefault(rid, []).append(sid)
        for kind, subs in self._by_kind().items():
            self.executor(kind).refresh(subs)
        self.submitting = any(s.get("state") == SubmissionState.SUBMITTING for s in self.subs.values()) and (
            self.sweep_dir is None or submission_in_progress(self.sweep_dir))

    def _by_kind(self) -> dict[str, list[dict]]:
        """The submissions of each executor kind, registered kinds first in registry order."""
        kinds: dict[str, list[dict]] = {k: [] for k in executor_names()}
        for sid in sorted(self.subs):
            kinds.setdefault(str(self.subs[sid].get("executor")), []).append(self.subs[sid])
        return {k: subs for k, subs in kinds.items() if subs}

    def executor(self, kind: str | None) -> Executor:
        """The executor of a stored kind, created once and kept (it remembers scheduler answers)."""
        if str(kind) not in self.executors:
            self.executors[str(kind)] = known_executor(kind)
        return self.executors[str(kind)]

    def executor_of(self, sub: dict) -> Executor:
        return self.executor(sub.get("executor"))

    def _submissions_of(self, run_id: str) -> list[dict]:
        sids = list(self.by_run.get(run_id, []))
        latest = (self.manifest["runs"].get(run_id) or {}).get("submission")
        if latest is not None and latest not in sids:  # records written before run_ids existed
            sids.insert(0, latest)
        return [self.subs[i] for i in sids if i in self.subs]

    def _state_in(self, sub: dict, run_id: str) -> str | None:
        executor, runs = self.executor_of(sub), self.manifest["runs"]
        if executor.tracks(sub, run_id, runs):
            return executor.job_state(sub, run_id, runs)
        if sub.get("state") == SubmissionState.SUBMITTING and self._submitter_alive(sub):
            return SUBMITTING_JOB
        return None

    def _submitter_alive(self, sub: dict) -> bool:
        who = sub.get("submitter")
        if who and who.get("host") == self.host:
            return same_process(who)
        return self.submitting

    def is_running(self, job_state: str | None) -> bool:
        """Whether a job state (as :meth:`job_state` gives it) means the job runs now."""
        return any(job_state in e.running_states for e in self.executors.values())

    def job_state(self, run_id: str) -> str | None:
        """The executor's state of a job holding the run (SLURM state name, LOCAL, SUBMITTING or
        UNKNOWN when squeue has not answered yet), None when no submission holds it any more."""
        found = [state for sub in self._submissions_of(run_id) if (state := self._state_in(sub, run_id))]
        return next((s for s in found if self.is_running(s)), found[0] if found else None)

    def holding_submission(self, run_id: str) -> dict | None:
        """The newest submission that still holds the run, None if none does."""
        return next((sub for sub in self._submissions_of(run_id) if self._state_in(sub, run_id)), None)

    def owner(self, holder: dict) -> dict | None:
        """The newest submission that started the process in a lock holder record."""
        return next((self.subs[sid] for sid in sorted(self.subs, reverse=True)
                     if self.executor_of(self.subs[sid]).owns(self.subs[sid], holder)), None)

    def holds(self, holder: dict) -> bool:
        """Whether some executor still lists the job of a lock holder on another host."""
        return any(e.holds(holder) for e in self.executors.values())

    def alive(self, run_id: str, status: dict) -> bool:
        if self.job_state(run_id) is not None:
            return True
        if self.sweep_dir is not None:
            return holder_alive(lock_holder(runs_dir(self.sweep_dir) / run_id), self.holds)
        return False

    def cancel(self, say) -> None:
        """Ask every executor to stop its submissions' jobs (registry order)."""
        for kind, subs in self._by_kind().items():
            self.executor(kind).cancel(subs, say)


def run_display_state(run_dir: Path, chash: str, live: Liveness) -> tuple[str, dict]:
    state, status = plan.run_state(run_dir, chash, live.alive)
    if state == Planned.STALE:
        status = {**status, "error": "run directory holds a different configuration"}
    runs_now = lambda: live.is_running(live.job_state(run_dir.name)) or lock_held(run_dir)  # noqa: E731
    return shown(state, status.get("state"), runs_now), status


def held_by(sweep_dir: Path, run_id: str, live: Liveness) -> str | None:
    """Who holds a run in flight: the lock holder (pid and host, SLURM task) and its submission."""
    holder = lock_holder(runs_dir(sweep_dir) / run_id)
    sub = (live.owner(holder) if holder else None) or live.holding_submission(run_id)
    parts = [describe_holder(holder)] if holder else []
    if sub:
        parts.append(f"submission {sub['id']} ({sub.get('executor')}, from {sub.get('host', '?')})")
    return ", ".join(parts) or None


def in_flight_lines(sweep_dir: Path, live: Liveness, run_ids: list[str]) -> list[str]:
    """One line per submission holding some of ``run_ids`` in flight: which, from where, how many."""
    held: Counter = Counter()
    for rid in run_ids:
        sub = live.holding_submission(rid)
        if sub is not None:
            held[sub["id"]] += 1
        elif lock_held(runs_dir(sweep_dir) / rid):
            held[None] += 1
    lines = []
    for sid, n in sorted(held.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        sub = live.subs.get(sid) or {}
        if sid is None:
            lines.append(f"  in flight: {n} run(s) locked by a process of no recorded submission")
            continue
        where = live.executor_of(sub).describe(sub)
        lines.append(f"  in flight: {n} run(s) of submission {sid} ({sub.get('executor')}, {where}, "
                     f"{sub.get('time', '?')}); following them")
    return lines


def snapshot(sweep_dir: Path, manifest: dict, live: Liveness, run_ids: list[str] | None = None
             ) -> dict[str, tuple[str, dict]]:
    """{run_id: (display state, status.json)} for ``run_ids`` (default: every run of the manifest)."""
    runs = manifest.get("runs", {})
    root = runs_dir(sweep_dir)
    return {rid: run_display_state(root / rid, runs[rid]["config_hash"], live)
            for rid in (run_ids if run_ids is not None else list(runs))}


def counts(snap: dict[str, tuple[str, dict]]) -> Counter:
    return Counter(state for state, _ in snap.values())


def log_hint(sweep_dir: Path, manifest: dict, run_id: str, status: dict) -> str | None:
    """The most useful log of a run: its job log (status or submitit's), else its log.txt."""
    if status.get("job_log"):
        return status["job_log"]
    info = manifest.get("runs", {}).get(run_id) or {}
    sub = submissions_by_id(manifest).get(info.get("submission"))
    hint = known_executor(sub.get("executor")).log_hint(sweep_dir, run_id, info) if sub else None
    return hint or status.get("log")


def step_text(progress: SweepProgress, run_id: str) -> str:
    """``step 520/800`` of a running run (``-`` for what is not known yet)."""
    step, total = progress.steps(run_id)
    return f"{'-' if step is None else step}/{'-' if total is None else total}"


def _table(sweep: str, snap: dict, progress: SweepProgress, max_rows: int = 12):
    from rich.console import Group
    from rich.table import Table

    c = counts(snap)
    table = Table(title=f"sweep {sweep}: {progress.reading(snap).line()}", title_justify="left")
    for state in ORDER[:5]:
        table.add_column(state, justify="right")
    table.add_row(*(str(c.get(s, 0)) for s in ORDER[:5]))
    active = [rid for rid, (st, _) in snap.items() if st == RUNNING][:max_rows]
    if not active:
        return table
    runs = Table(show_header=True, box=None)
    runs.add_column(RUNNING)
    runs.add_column("step", justify="right")
    for rid in active:
        runs.add_row(rid, step_text(progress, rid))
    return Group(table, runs)


def follow(sweep_dir: Path, manifest: dict, run_ids: list[str], *, poll_s: float = 3.0,
           console=None) -> dict[str, tuple[str, dict]]:
    """Show a live view until none of ``run_ids`` is pending or running; returns the last snapshot.

    On a terminal the view updates in place; elsewhere (CI logs) one line per change of counts,
    with the progress (done/total, elapsed, rate, ETA: bench.harness.progress).
    """
    from rich.console import Console
    from rich.live import Live

    console = console or Console(stderr=True)
    live = Liveness(manifest, sweep_dir)
    progress = SweepProgress(sweep_dir, live.manifest)
    snap = snapshot(sweep_dir, manifest, live, run_ids)
    name = manifest.get("sweep", Path(sweep_dir).name)
    if console.is_terminal:
        with Live(_table(name, snap, progress), console=console, refresh_per_second=1) as view:
            while _in_flight(snap):
                time.sleep(poll_s)
                live.refresh()
                progress.manifest = live.manifest
                snap = snapshot(sweep_dir, manifest, live, run_ids)
                view.update(_table(name, snap, progress))
        return snap
    last = None
    while True:
        c = counts(snap)
        line = ", ".join(f"{c.get(s, 0)} {s}" for s in ORDER[:5])
        if line != last:
            print(f"{name}: {line} | {progress.reading(snap).line()}", file=sys.stderr, flush=True)
            last = line
        if not _in_flight(snap):
            return snap
        time.sleep(poll_s)
        live.refresh()
        progress.manifest = live.manifest
        snap = snapshot(sweep_dir, manifest, live, run_ids)


def _in_flight(snap: dict) -> bool:
    return any(state in (PENDING, RUNNING) for state, _ in snap.values())


def print_summary(sweep_dir: Path, manifest: dict, snap: dict, console=None) -> int:
    """Counts, then every failed or interrupted run with its error and log. Returns the exit code
    (1 when any run failed or was interrupted)."""
    from rich.console import Console

    console = console or Console()
    c = counts(snap)
    console.print("summary: " + ", ".join(f"{c.get(s, 0)} {s}" for s in ORDER if c.get(s, 0) or s in
                                          (DONE, FAILED)), soft_wrap=True)
    bad = [(rid, st, status) for rid, (st, status) in snap.items() if st in (FAILED, INTERRUPTED)]
    for rid, st, status in bad:
        what = status.get("error") or (Stored.CANCELLED if status.get("state") == Stored.CANCELLED else
                                       "no job holds it any more (killed or cancelled); re-run the sweep "
                                       "to resume it")
        console.print(f"  {st}: {rid}: {what}", markup=False, highlight=False, soft_wrap=True)
        hint = log_hint(sweep_dir, manifest, rid, status)
        if hint:
            console.print(f"    log: {hint}", markup=False, highlight=False, soft_wrap=True)
    return 1 if bad else 0
