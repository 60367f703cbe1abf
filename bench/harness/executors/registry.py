"""The one place naming executors: adding a backend is one module and one line of ``EXECUTORS``.

Entries are ``"module:Class"`` strings loaded on first use, so this module imports no backend: the
sweep schema can check a kind against :func:`executor_names` without importing submitit, and no
backend can form an import cycle through the registry. This is also the only module that compares
a kind string (tests/test_harness_layout.py checks it).
"""

from __future__ import annotations

import importlib
from functools import cache

from bench.errors import BenchError
from bench.harness.executors.base import Executor

EXECUTORS: dict[str, str] = {
    "slurm": "bench.harness.executors.slurm:SlurmExecutor",
    "local": "bench.harness.executors.local:LocalExecutor",
    "debug": "bench.harness.executors.debug:DebugExecutor",
}
AUTO = "auto"
AUTO_ORDER = ("slurm", "local")  # what "auto" tries, first usable wins


def executor_names() -> tuple[str, ...]:
    """Every registered kind, in registry order."""
    return tuple(EXECUTORS)


@cache
def executor_class(kind: str) -> type[Executor]:
    """The class registered as ``kind``; BenchError for an unknown kind."""
    if kind not in EXECUTORS:
        raise BenchError(f"--executor {kind}: expected one of {', '.join((AUTO, *EXECUTORS))}")
    module, _, name = EXECUTORS[kind].partition(":")
    return getattr(importlib.import_module(module), name)


def get_executor(kind: str) -> Executor:
    """A fresh executor of ``kind`` (each keeps its own scheduler answers)."""
    return executor_class(kind)(kind)


def known_executor(kind: str | None) -> Executor:
    """An executor for a stored kind; a kind no longer registered gets the base class, whose
    hooks say "no job" (an old manifest stays readable)."""
    return get_executor(kind) if kind in EXECUTORS else Executor(str(kind))


def pick_executor(requested: str) -> Executor:
    """``auto`` -> the first usable of :data:`AUTO_ORDER`; a named kind must be usable here."""
    if requested == AUTO:
        for kind in AUTO_ORDER:
            executor = get_executor(kind)
            if executor.unavailable() is None:
                return executor
        raise BenchError("--executor auto: no executor is usable here")
    executor = get_executor(requested)
    reason = executor.unavailable()
    if reason:
        raise BenchError(f"--executor {requested}: {reason}")
    return executor
