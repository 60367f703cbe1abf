"""Processes this harness starts or finds again: identity by pid and start time, process groups,
and the environment of a child.

A pid alone is not an identity (pids are recycled), so every record of a process the harness keeps
(a lock holder, a local supervisor and its children, a submitter) stores ``{"pid", "start"}`` and
:func:`same_process` checks both. Kept apart from any executor because run locks, submissions and
the local queue all need it.
"""

from __future__ import annotations

import os

from bench.repo import REPO_ROOT


def proc_start_ticks(pid: int) -> int | None:
    """A process's start time (clock ticks since boot, /proc/<pid>/stat field 22), None if gone.

    Stored next to a pid so that a recycled pid is never mistaken for our process.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] == "Z":  # a zombie has finished
        return None
    return int(fields[19])


def this_process() -> dict[str, int | None]:
    """``{"pid", "start"}`` of the calling process, the record :func:`same_process` checks."""
    return {"pid": os.getpid(), "start": proc_start_ticks(os.getpid())}


def same_process(entry: dict | None) -> bool:
    """Whether ``{"pid":..., "start":...}`` still names a live process."""
    if not entry or not entry.get("pid"):
        return False
    return proc_start_ticks(int(entry["pid"])) == entry.get("start")


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to a process group; one already gone (or not ours) is not an error."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def child_env() -> dict[str, str]:
    """The environment for children, with this package importable even without installation."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
    return env
