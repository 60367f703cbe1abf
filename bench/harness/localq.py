"""The local executor: a detached supervisor running one process per run under a concurrency cap.

submitit's LocalExecutor starts every job at once and puts them all on GPU 0; this queue starts at
most ``max_concurrent`` children, hands each a GPU through CUDA_VISIBLE_DEVICES (the least busy one
when there are fewer GPUs than slots), and gives each child its own process group so a crash or
a cancel cannot take the others down. The supervisor runs in its own session, so ``bench sweep
--no-wait`` can return and ``bench status`` / ``bench cancel`` find it again from its state file::

    python -m bench.harness.localq <sweep_dir>/local/sub-0003.json
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.atomic import write_json
from bench.harness.procs import proc_start_ticks, signal_group
from bench.rundir import JOB_LOG, read_json

KILL_GRACE_S = 10.0


def visible_gpus() -> list[str]:
    """GPU ids this machine offers, without importing torch: CUDA_VISIBLE_DEVICES or nvidia-smi."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU ")]


@dataclass
class _Child:
    item: str
    proc: subprocess.Popen
    gpu: str | None
    start: int | None
    log: object = field(repr=False)


class LocalQueue:
    """Run ``command(item)`` for every item, at most ``cap`` at once, one process group each.

    ``log_for(item)`` names the file receiving the child's stdout and stderr. ``state_path``
    (optional) is rewritten atomically whenever a child starts or ends, for status and cancel.
    """

    def __init__(self, items: list[str], cap: int, command: Callable[[str], list[str]],
                 log_for: Callable[[str], Path], gpus: list[str] | None = None,
                 state_path: Path | None = None, env: dict[str, str] | None = None):
        self.pending = list(items)
        self.cap = max(1, cap)
        self.command = command
        self.log_for = log_for
        self.gpus = list(gpus or [])
        self.state_path = state_path
        self.env = dict(os.environ if env is None else env)
        self.running: dict[str, _Child] = {}
        self.returncodes: dict[str, int] = {}
        self.stopping = False

    def _pick_gpu(self) -> str | None:
        if not self.gpus:
            return None
        load = {g: 0 for g in self.gpus}
        for child in self.running.values():
            load[child.gpu] += 1
        return min(self.gpus, key=lambda g: load[g])

    def _start(self, item: str) -> None:
        env = dict(self.env)
        gpu = self._pick_gpu()
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        log_path = self.log_for(item)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")
        proc = subprocess.Popen(self.command(item), env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        self.running[item] = _Child(item, proc, gpu, proc_start_ticks(proc.pid), log)

    def _reap(self) -> bool:
        changed = False
        for item, child in list(self.running.items()):
            code = child.proc.poll()
            if code is not None:
                child.log.close()
                self.returncodes[item] = code
                del self.running[item]
                changed = True
        return changed

    def write_state(self, done: bool = False) -> None:
        if self.state_path is None:
            return
        write_json(self.state_path, {
            "supervisor": {"pid": os.getpid(), "start": proc_start_ticks(os.getpid())},
            "cap": self.cap, "gpus": self.gpus, "done": done, "stopping": self.stopping,
            "pending": self.pending,
            "running": {c.item: {"pid": c.proc.pid, "start": c.start, "gpu": c.gpu}
                        for c in self.running.values()},
            "returncodes": self.returncodes,
        })

    def run(self, poll_s: float = 0.2) -> dict[str, int]:
        """Run everything (or until :meth:`stop`); returns each finished item's exit code."""
        self.write_state()
        while (self.pending and not self.stopping) or self.running:
            changed = self._reap()
            while self.pending and not self.stopping and len(self.running) < self.cap:
                self._start(self.pending.pop(0))
                changed = True
            if changed:
                self.write_state()
            time.sleep(poll_s)
        self.write_state(done=True)
        return self.returncodes

    def stop(self, *_: object) -> None:
        """Start no more children; TERM the running ones' process groups, KILL after a grace."""
        self.stopping = True
        for child in self.running.values():
            signal_group(child.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + KILL_GRACE_S
        while time.monotonic() < deadline and any(c.proc.poll() is None for c in self.running.values()):
            time.sleep(0.1)
        for child in self.running.values():
            if child.proc.poll() is None:
                signal_group(child.proc.pid, signal.SIGKILL)


def run_job_command(run_dir: str) -> list[str]:
    """The local executor's child: one job, its output in the run's job.log."""
    return [sys.executable, "-m", "bench.harness.job", run_dir, "--executor", "local",
            "--job-log", str(Path(run_dir) / JOB_LOG)]


def main(argv: list[str] | None = None) -> int:
    """Supervisor entry point: run the queue file's run directories to the end."""
    queue_file = Path((argv or sys.argv[1:])[0])
    spec = read_json(queue_file)
    if spec is None:
        print(f"{queue_file}: missing or unreadable queue file", file=sys.stderr)
        return 2
    queue = LocalQueue(spec["run_dirs"], spec["max_concurrent"], run_job_command,
                       lambda d: Path(d) / JOB_LOG, gpus=spec["gpus"],
                       state_path=Path(spec["state"]))
    signal.signal(signal.SIGTERM, queue.stop)
    signal.signal(signal.SIGINT, queue.stop)
    codes = queue.run()
    failed = sum(1 for c in codes.values() if c != 0)
    print(f"local queue {queue_file.name}: {len(codes)} runs ended, {failed} non-zero", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
