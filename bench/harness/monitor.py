"""Following a sweep: each run's state from its directory plus the scheduler, and a live view.

A run's displayed state:

* ``done``: results.json with the planned hash;
* ``failed``: status.json says failed (error and log path shown);
* ``running``: its lock is held (a process trains it), or SLURM lists its task as running;
* ``pending``: submitted, and its job is still queued (squeue) or its local supervisor is alive;
* ``interrupted``: submitted or started, but no process or job holds it any more (killed,
  cancelled, node lost): re-running the sweep resumes it from its latest checkpoint;
* ``not submitted``: in the sweep, never started.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from pathlib import Path

from bench.harness import plan as P
from bench.harness.executors import SUBMITIT_DIR, local_alive, squeue_states
from bench.harness.localq import same_process
from bench.harness.manifest import submissions_by_id
from bench.harness.runs import CANCELLED, PENDING, REQUEUED, read_json, runs_dir

DONE, FAILED, RUNNING, PENDING_, INTERRUPTED, NOT_SUBMITTED = (
    "done", "failed", "running", "pending", "interrupted", "not submitted")
ORDER = (PENDING_, RUNNING, DONE, FAILED, INTERRUPTED, NOT_SUBMITTED)
SLURM_RUNNING = {"RUNNING", "COMPLETING", "CONFIGURING", "STOPPED", "SUSPENDED"}


class Liveness:
    """Answers "is the job that should run this run still there?" from the manifest.

    One squeue call per :meth:`refresh` covers all SLURM jobs; local submissions are alive while
    their supervisor process is.
    """

    def __init__(self, manifest: dict | None):
        self.manifest = manifest or {"runs": {}, "submissions": []}
        self.subs = submissions_by_id(self.manifest)
        self.slurm: dict[str, str] = {}
        self.slurm_known = False
        self.local: dict[int, bool] = {}
        self.refresh()

    def refresh(self) -> None:
        kinds = {s.get("executor") for s in self.subs.values()}
        if "slurm" in kinds:
            states = squeue_states()
            # squeue can time out on a busy cluster: then keep the last answer, and before any
            # answer treat SLURM jobs as alive (never declare a run interrupted on no evidence).
            self.slurm_known = states is not None or self.slurm_known
            self.slurm = states if states is not None else self.slurm
        self.local = {sid: _local_queue(s["local"]) for sid, s in self.subs.items()
                      if s.get("executor") == "local" and s.get("local")}

    def job_state(self, run_id: str) -> str | None:
        """The scheduler's state of the run's job (SLURM state name, or LOCAL), None if gone."""
        info = self.manifest["runs"].get(run_id) or {}
        sub = self.subs.get(info.get("submission"))
        if sub is None:
            return None
        if sub.get("executor") == "slurm" and info.get("job_id"):
            if not self.slurm_known:
                return "UNKNOWN"
            jid = info["job_id"]
            return self.slurm.get(jid) or self.slurm.get(jid.split("_")[0])
        if sub.get("executor") == "local":
            waiting = self.local.get(sub["id"])
            return "LOCAL" if waiting is not None and waiting(run_id) else None
        return None

    def alive(self, run_id: str, status: dict) -> bool:
        return self.job_state(run_id) is not None


def _local_queue(local: dict):
    """None when a local submission's supervisor is gone, else a predicate "this run is still
    queued or its child process runs" read from the supervisor's state file."""
    if not local_alive(local):
        return None
    state = read_json(Path(local["state"]))
    if state is None:  # the supervisor has not written its first state yet: all queued
        return lambda run_id: True
    pending = {Path(d).name for d in state.get("pending", [])}
    running = {Path(d).name for d, child in (state.get("running") or {}).items() if same_process(child)}
    return lambda run_id: run_id in pending or run_id in running


def run_display_state(run_dir: Path, chash: str, live: Liveness) -> tuple[str, dict]:
    state, status = P.run_state(run_dir, chash, live.alive)
    if state == P.FINISHED:
        return DONE, status
    if state == P.FAILED:
        return FAILED, status
    if state == P.NEW:
        return NOT_SUBMITTED, status
    if state == P.ACTIVE:
        job = live.job_state(run_dir.name)
        if status.get("state") in (PENDING, REQUEUED) and job not in SLURM_RUNNING:
            return PENDING_, status
        return RUNNING, status
    if state == P.STALE:
        return INTERRUPTED, {**status, "error": "run directory holds a different configuration"}
    return INTERRUPTED, status


def snapshot(sweep_dir: Path, manifest: dict, live: Liveness, run_ids: list[str] | None = None
             ) -> dict[str, tuple[str, dict]]:
    """{run_id: (display state, status.json)} for ``run_ids`` (default: every run of the manifest)."""
    runs = manifest.get("runs", {})
    root = runs_dir(sweep_dir)
    return {rid: run_display_state(root / rid, runs[rid]["config_hash"], live)
            for rid in (run_ids if run_ids is not None else list(runs))}


def counts(snap: dict[str, tuple[str, dict]]) -> Counter:
    return Counter(state for state, _ in snap.values())


def progress_step(run_dir: Path) -> int | None:
    """The last logged step of a running run (last line of curves.csv), None if none yet."""
    try:
        with open(run_dir / "curves.csv", "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 512))
            last = f.read().splitlines()[-1].decode()
        return int(float(last.split(",")[0]))
    except (OSError, IndexError, ValueError):
        return None


def log_hint(sweep_dir: Path, manifest: dict, run_id: str, status: dict) -> str | None:
    """The most useful log of a run: its job log (status or submitit's), else its log.txt."""
    if status.get("job_log"):
        return status["job_log"]
    info = manifest.get("runs", {}).get(run_id) or {}
    sub = submissions_by_id(manifest).get(info.get("submission")) or {}
    if sub.get("executor") == "slurm" and info.get("job_id"):
        return str(Path(sweep_dir) / SUBMITIT_DIR / f"{info['job_id']}_0_log.out")
    if sub.get("executor") == "local":
        return str(runs_dir(sweep_dir) / run_id / "job.log")
    return status.get("log")


def _table(sweep: str, snap: dict, sweep_dir: Path, started: float, max_rows: int = 12):
    from rich.table import Table

    c = counts(snap)
    table = Table(title=f"sweep {sweep}: {len(snap)} runs, {time.monotonic() - started:.0f}s",
                  title_justify="left")
    for state in ORDER[:5]:
        table.add_column(state, justify="right")
    table.add_row(*(str(c.get(s, 0)) for s in ORDER[:5]))
    active = [(rid, st) for rid, (st, _) in snap.items() if st == RUNNING][:max_rows]
    if not active:
        return table
    runs = Table(show_header=True, box=None)
    runs.add_column("running")
    runs.add_column("step", justify="right")
    for rid, _ in active:
        step = progress_step(runs_dir(sweep_dir) / rid)
        runs.add_row(rid, "-" if step is None else str(step))
    from rich.console import Group

    return Group(table, runs)


def follow(sweep_dir: Path, manifest: dict, run_ids: list[str], *, poll_s: float = 3.0,
           console=None) -> dict[str, tuple[str, dict]]:
    """Show a live view until none of ``run_ids`` is pending or running; returns the last snapshot.

    On a terminal the view updates in place; elsewhere (CI logs) one line per change of counts.
    """
    from rich.console import Console
    from rich.live import Live

    console = console or Console(stderr=True)
    live = Liveness(manifest)
    started = time.monotonic()
    snap = snapshot(sweep_dir, manifest, live, run_ids)
    name = manifest.get("sweep", Path(sweep_dir).name)
    if console.is_terminal:
        with Live(_table(name, snap, sweep_dir, started), console=console, refresh_per_second=1) as view:
            while _in_flight(snap):
                time.sleep(poll_s)
                live.refresh()
                snap = snapshot(sweep_dir, manifest, live, run_ids)
                view.update(_table(name, snap, sweep_dir, started))
        return snap
    last = None
    while True:
        c = counts(snap)
        line = ", ".join(f"{c.get(s, 0)} {s}" for s in ORDER[:5])
        if line != last:
            print(f"[{time.monotonic() - started:6.0f}s] {name}: {line}", file=sys.stderr, flush=True)
            last = line
        if not _in_flight(snap):
            return snap
        time.sleep(poll_s)
        live.refresh()
        snap = snapshot(sweep_dir, manifest, live, run_ids)


def _in_flight(snap: dict) -> bool:
    return any(state in (PENDING_, RUNNING) for state, _ in snap.values())


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
        what = status.get("error") or ("cancelled" if status.get("state") == CANCELLED else
                                       "no job holds it any more (killed or cancelled); re-run the sweep "
                                       "to resume it")
        console.print(f"  {st}: {rid}: {what}", markup=False, highlight=False, soft_wrap=True)
        hint = log_hint(sweep_dir, manifest, rid, status)
        if hint:
            console.print(f"    log: {hint}", markup=False, highlight=False, soft_wrap=True)
    return 1 if bad else 0
