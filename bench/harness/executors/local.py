"""The local executor: a detached supervisor (:mod:`bench.harness.localq`) running one process per
run under a concurrency cap; followed through the supervisor's state file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

from bench.atomic import write_json
from bench.harness import gsplat_build
from bench.harness.executors.base import Executor, Say, Submission
from bench.harness.localq import visible_gpus
from bench.harness.procs import proc_start_ticks, same_process, signal_group
from bench.harness.runs import RunSpec
from bench.rundir import JOB_LOG, read_json
from bench.sweepdir import runs_dir

LOCAL_DIR = "local"


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask, e.g. under taskset or a cgroup)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS)
        return max(1, os.cpu_count() or 1)


def default_concurrency(device: str, cpus_per_task: int = 1) -> int:
    """Number of GPUs; on CPU, as many runs as the usable cores hold at ``cpus_per_task`` each."""
    if device == "cpu":
        return max(1, usable_cpus() // max(1, cpus_per_task))
    return max(1, len(visible_gpus()))


def queue_cap(runs: list[RunSpec], max_concurrent: int | None, device: str) -> int:
    """Runs of ``runs`` a local queue runs at once: ``max_concurrent``, else as many as the device holds
    at the runs' CPUs per task (:func:`default_concurrency`)."""
    return max_concurrent or default_concurrency(device, max((r.resources.cpus_per_task for r in runs), default=1))


def submit_local(sweep_dir: Path, submission: int, runs: list[RunSpec], max_concurrent: int | None,
                 device: str, env: dict[str, str]) -> dict:
    """Start a detached supervisor for ``runs``; returns the manifest's ``local`` record (plus the
    supervisor's Popen under ``_popen``, for reaping)."""
    folder = Path(sweep_dir) / LOCAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    gpus = [] if device == "cpu" else visible_gpus()
    cap = queue_cap(runs, max_concurrent, device)
    gsplat_build.prebuild_local(runs, gpus, cap, env)
    gsplat_build.prebuild_cpu_local(runs, gpus, env)
    queue = folder / f"sub-{submission:04d}.json"
    state = folder / f"sub-{submission:04d}.state.json"
    log = folder / f"sub-{submission:04d}.log"
    write_json(queue, {"run_dirs": [str(runs_dir(sweep_dir) / r.run_id) for r in runs],
                       "max_concurrent": cap, "gpus": gpus, "state": str(state)})
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bench.harness.localq", str(queue)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=env)
    return {"queue": str(queue), "state": str(state), "log": str(log), "max_concurrent": cap,
            "gpus": gpus, "supervisor": {"pid": proc.pid, "start": proc_start_ticks(proc.pid)},
            "_popen": proc}


def local_alive(local: dict) -> bool:
    """Whether a submission's supervisor still runs."""
    return same_process(local.get("supervisor"))


def cancel_local(local: dict, grace_s: float = 15.0) -> None:
    """TERM the supervisor and every child process group it started; KILL what survives."""
    state = read_json(Path(local["state"])) or {}
    targets = [local.get("supervisor")] + list((state.get("running") or {}).values())
    targets = [t for t in targets if same_process(t)]
    for t in targets:
        signal_group(int(t["pid"]), signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(same_process(t) for t in targets):
        time.sleep(0.2)
    for t in targets:
        if same_process(t):
            signal_group(int(t["pid"]), signal.SIGKILL)


Waiting = Callable[[str], bool]


def _all_waiting(run_id: str) -> bool:
    return True


def queue_predicate(local: dict, state: dict | None, host: str | None, here: str) -> Waiting | None:
    """None when a local submission's supervisor is gone, else a predicate "this run is still
    queued or its child process runs" from the supervisor's state file (its contents ``state``).

    A queue started on another host cannot be checked by pid from here: it counts as alive until
    its state file says it is done."""
    if host and here and host != here:
        if state is not None and state.get("done"):
            return None
        return _all_waiting
    if not local_alive(local):
        return None
    if state is None:  # the supervisor has not written its first state yet: all queued
        return _all_waiting
    pending = {Path(d).name for d in state.get("pending", [])}
    running = {Path(d).name for d, child in (state.get("running") or {}).items() if same_process(child)}
    return lambda run_id: run_id in pending or run_id in running


class LocalExecutor(Executor):
    """Runs under a detached local supervisor, at most ``max_concurrent`` at once."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self._popen: list[subprocess.Popen] = []
        self._waiting: dict[int, Waiting | None] = {}  # submission id -> queue predicate
        self._children: dict[int, set[int]] = {}  # submission id -> pids of its running children

    def submit(self, sub: Submission) -> None:
        local = submit_local(sub.sweep_dir, sub.record["id"], sub.runs, sub.max_concurrent, sub.device,
                             self.child_env())
        self._popen.append(local.pop("_popen"))
        sub.record["local"] = local
        sub.say(f"local queue: {len(sub.runs)} runs, at most {local['max_concurrent']} at once"
                + (f" on GPUs {','.join(local['gpus'])}" if local["gpus"] else "")
                + f" (supervisor pid {local['supervisor']['pid']})")

    def concurrency(self, runs: list[RunSpec], max_concurrent: int | None, device: str) -> int | None:
        return queue_cap(runs, max_concurrent, device)

    def finish(self) -> None:
        for proc in self._popen:
            proc.poll()  # reap the finished supervisor

    def refresh(self, subs: list[dict]) -> None:
        here = socket.gethostname()
        queues = {s["id"]: s for s in subs if s.get("local")}
        states = {sid: read_json(Path(s["local"]["state"])) for sid, s in queues.items()}
        self._waiting = {sid: queue_predicate(s["local"], states[sid], s.get("host"), here)
                         for sid, s in queues.items()}
        self._children = {sid: {c.get("pid") for c in ((st or {}).get("running") or {}).values()}
                          for sid, st in states.items()}

    def tracks(self, sub: dict, run_id: str, runs: dict) -> bool:
        return bool(sub.get("local"))

    def job_state(self, sub: dict, run_id: str, runs: dict) -> str | None:
        waiting = self._waiting.get(sub["id"])
        return "LOCAL" if waiting is not None and waiting(run_id) else None

    def owns(self, sub: dict, holder: dict) -> bool:
        return holder.get("pid") in self._children.get(sub["id"], ())

    def alive(self, sub: dict) -> bool:
        return bool(sub.get("local")) and local_alive(sub["local"])

    def describe(self, sub: dict) -> str:
        where = sub.get("host", "?")
        if sub.get("local"):
            return f"supervisor pid {sub['local']['supervisor']['pid']} on {where}"
        return where

    def log_hint(self, sweep_dir: Path, run_id: str, info: dict) -> str | None:
        return str(runs_dir(sweep_dir) / run_id / JOB_LOG)

    def cancel(self, subs: Iterable[dict], say: Say) -> None:
        stopped = 0
        for sub in subs:
            if self.alive(sub):
                cancel_local(sub["local"])
                stopped += 1
        if stopped:
            say(f"stopped {stopped} local queue(s)")
