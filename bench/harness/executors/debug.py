"""The debug executor: every job in this process, one after the other, so breakpoints work."""

from __future__ import annotations

from bench.harness.executors.base import Executor, OnEnd, Submission
from bench.harness.job import run_job
from bench.harness.states import Stored
from bench.sweepdir import runs_dir


class DebugExecutor(Executor):
    """Runs each job in this process after the submission is recorded; nothing to follow."""

    in_process = True

    def concurrency(self, runs: list, max_concurrent: int | None, device: str) -> int | None:
        return 1

    def run_now(self, sub: Submission, on_end: OnEnd) -> None:
        """Failures are recorded in the run's status.json and the next run starts."""
        for run in sub.runs:
            try:
                state = run_job(runs_dir(sub.sweep_dir) / run.run_id, executor=self.kind)
            except Exception:
                state = Stored.FAILED
            on_end(run, state)
