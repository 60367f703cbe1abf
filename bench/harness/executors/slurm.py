"""The SLURM executor: one job array per resource setting through submitit, squeue to follow.

Every array task runs :class:`RunJob` on one prepared run directory. Runs on gsplat get its CUDA
extension built once before any array starts (:mod:`bench.harness.gsplat_build`).
"""

from __future__ import annotations

import getpass
import json
import re
import shlex
import shutil
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import submitit

from bench import rundir, sweepdir
from bench.errors import BenchError
from bench.harness import gsplat_build
from bench.harness.executors.base import Executor, Say, Submission
from bench.harness.job import run_job
from bench.repo import REPO_ROOT
from bench.harness.runs import RunSpec, checkpoint_step
from bench.harness.spec import Resources
from bench.harness.states import Stored
from bench.rundir import write_status
from bench.sweepdir import runs_dir

DEFAULT_MAX_ARRAY_SIZE = 1001
# squeue states of a job that runs now (not merely queued)
RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "CONFIGURING", "STOPPED", "SUSPENDED"})
UNKNOWN = "UNKNOWN"  # job_state before squeue has answered once


def max_array_size() -> int:
    """The cluster's MaxArraySize from ``scontrol show config`` (largest index + 1)."""
    try:
        out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return DEFAULT_MAX_ARRAY_SIZE
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.MULTILINE)
    return int(match.group(1)) if match else DEFAULT_MAX_ARRAY_SIZE


def group_by_resources(runs: Iterable[RunSpec]) -> list[tuple[Resources, list[RunSpec]]]:
    """Runs grouped by identical resource settings, in first-seen order (one array per group)."""
    groups: dict[str, tuple[Resources, list[RunSpec]]] = {}
    for run in runs:
        key = json.dumps(run.resources.model_dump(), sort_keys=True)
        groups.setdefault(key, (run.resources, []))[1].append(run)
    return list(groups.values())


def chunks(items: list, size: int) -> list[list]:
    return [items[i:i + size] for i in range(0, len(items), max(1, size))]


def slurm_parameters(res: Resources, sweep: str) -> dict:
    """submitit AutoExecutor parameters for one resource setting."""
    params = {"name": f"bench-{sweep}", "timeout_min": res.time_min, "cpus_per_task": res.cpus_per_task,
              "slurm_array_parallelism": res.array_parallelism, "slurm_signal_delay_s": res.signal_delay_s,
              # This checkout first on the path, so jobs import it even when not pip-installed.
              "slurm_setup": [f"export PYTHONPATH={shlex.quote(str(REPO_ROOT))}${{PYTHONPATH:+:$PYTHONPATH}}",
                              *res.setup],
              "slurm_stderr_to_stdout": True,
              "slurm_additional_parameters": {k: v for k, v in res.additional.items()}}
    if res.gpus_per_node:
        params["gpus_per_node"] = res.gpus_per_node
    if res.mem_gb is not None:
        params["mem_gb"] = res.mem_gb
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(res, key):
            params[f"slurm_{key}"] = getattr(res, key)
    return params


def _executor(folder: Path, params: dict) -> submitit.AutoExecutor:
    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    try:
        executor.update_parameters(**params)
    except ValueError as err:
        raise BenchError(f"executor.resources: {str(err).splitlines()[0]}") from None
    return executor


def submitit_array(folder: Path, params: dict, run_dirs: list[str]) -> list[str]:
    """Submit one job array (non-blocking); returns one SLURM job id per run directory."""
    executor = _executor(folder, params)
    try:
        jobs = executor.map_array(RunJob(), run_dirs)
    except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError) as err:
        raise BenchError(f"sbatch refused the job array: {str(err).strip()[:400]}") from None
    return [str(j.job_id) for j in jobs]


def submitit_call(folder: Path, params: dict, fn: Callable, *args: Any, what: str = "the job"
                  ) -> tuple[str, str]:
    """Submit one job running ``fn(*args)`` (non-blocking); returns (SLURM job id, its log file).
    ``what`` names the job in an error."""
    executor = _executor(folder, params)
    try:
        job = executor.submit(fn, *args)
    except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError) as err:
        raise BenchError(f"sbatch refused {what}: {str(err).strip()[:400]}") from None
    return str(job.job_id), str(job.paths.stdout)


SubmitArray = Callable[[Path, dict, list[str]], list[str]]


def submit_slurm(sweep_dir: Path, sweep: str, runs: list[RunSpec], *, array_limit: int | None = None,
                 submit_array: SubmitArray = submitit_array,
                 submit_build: gsplat_build.SubmitBuild | None = None,
                 on_record: Callable[[dict], None] = lambda record: None,
                 executor: SlurmExecutor | None = None) -> list[dict]:
    """One job array per distinct resource setting, split above MaxArraySize.

    Returns job records ``{"job_id", "run_ids", "task_ids", "resources"}`` for the manifest;
    ``on_record`` sees each as soon as its array is accepted (so a later refusal loses nothing).
    Runs on gsplat get its CUDA extension built once first (:func:`gsplat_build.prebuild_slurm`).
    """
    limit = array_limit or max_array_size()
    folder = Path(sweep_dir) / sweepdir.SUBMITIT
    records = []
    prebuild = gsplat_build.prebuild_slurm(sweep_dir, sweep, runs, executor or SlurmExecutor("slurm"),
                                           submit_build)
    for res, group in group_by_resources(runs):
        params = gsplat_build.with_prebuild(slurm_parameters(res, sweep), prebuild)
        for part in chunks(group, limit):
            dirs = [str(runs_dir(sweep_dir) / r.run_id) for r in part]
            ids = submit_array(folder, params, dirs)
            records.append({"job_id": ids[0].split("_")[0], "run_ids": [r.run_id for r in part],
                            "task_ids": dict(zip((r.run_id for r in part), ids)),
                            "resources": res.model_dump()})
            on_record(records[-1])
    return records


def squeue_states() -> dict[str, str] | None:
    """{job id ("123" or "123_4"): state} of this user's jobs, None when squeue cannot answer."""
    try:
        out = subprocess.run(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i|%T"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    states = {}
    for line in out.stdout.splitlines():
        job_id, _, state = line.strip().partition("|")
        states[job_id] = state
    return states


def cancel_slurm(job_ids: list[str], wait_s: float = 60.0) -> list[str]:
    """scancel the jobs; wait until squeue no longer lists them. Returns the ids cancelled."""
    if not job_ids:
        return []
    subprocess.run(["scancel", *job_ids], capture_output=True, text=True, timeout=60)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        states = squeue_states() or {}
        if not any(jid.split("_")[0] in job_ids for jid in states):
            break
        time.sleep(1)
    return job_ids


class RunJob(submitit.helpers.Checkpointable):
    """The callable submitted to SLURM. On preemption or the time-limit signal (USR2) submitit
    calls :meth:`checkpoint` and requeues the same task; training resumes from the run
    directory's latest periodic checkpoint, so nothing has to be saved in the signal handler."""

    def __call__(self, run_dir: str) -> str:
        return run_job(run_dir, executor="slurm", job_log=_task_log())

    def checkpoint(self, run_dir: str) -> submitit.helpers.DelayedSubmission:
        step = checkpoint_step(rundir.latest_checkpoint(Path(run_dir)))
        write_status(Path(run_dir), state=Stored.REQUEUED, requeued_at=_now(), requeued_from_step=step)
        print(f"{Path(run_dir).name}: requeued; will resume from checkpoint step {step}", flush=True)
        return submitit.helpers.DelayedSubmission(self, run_dir)


def _task_log() -> str | None:
    """submitit's log file of this array task (None outside a submitit job)."""
    try:
        return str(submitit.JobEnvironment().paths.stdout)
    except RuntimeError:
        return None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _task_id(sub: dict, run_id: str, runs: dict) -> str | None:
    """The SLURM task id of ``run_id`` in ``sub`` (from its job records, or for records written
    before task_ids existed, from the run's manifest entry when ``sub`` is its latest)."""
    jid = next((j["task_ids"][run_id] for j in sub.get("jobs") or [] if run_id in j.get("task_ids", {})), None)
    if jid is None and (runs.get(run_id) or {}).get("submission") == sub["id"]:
        jid = runs[run_id].get("job_id")
    return jid


class SlurmExecutor(Executor):
    """Job arrays through submitit; one squeue call per refresh answers for every job."""

    running_states = RUNNING_STATES

    def __init__(self, kind: str):
        super().__init__(kind)
        self.squeue: dict[str, str] = {}
        self.known = False  # whether squeue has answered once

    def unavailable(self) -> str | None:
        if shutil.which("sbatch") is None:
            return ("sbatch not found on PATH (start a cluster with .ci/start_slurm.sh or use "
                    "--executor local)")
        return None

    def parameters(self, res: Resources, sweep: str) -> dict:
        """submitit parameters of a job with these resources (the gsplat build job uses them)."""
        return slurm_parameters(res, sweep)

    def submit_call(self, folder: Path, params: dict, fn: Callable, *args: Any, what: str = "the job"
                    ) -> tuple[str, str]:
        """One non-array job running ``fn(*args)``; (job id, log file)."""
        return submitit_call(folder, params, fn, *args, what=what)

    def submit(self, sub: Submission) -> None:
        sub.record["jobs"] = []

        def _record(job: dict) -> None:
            sub.record["jobs"].append(job)
            sub.save()

        submit_slurm(sub.sweep_dir, sub.sweep, sub.runs, on_record=_record, executor=self)
        sub.say("submitted job arrays: " + ", ".join(
            f"{j['job_id']} ({len(j['run_ids'])} runs)" for j in sub.record["jobs"]))

    def concurrency(self, runs: list[RunSpec], max_concurrent: int | None, device: str) -> int | None:
        """The arrays' ``array_parallelism``: at most that many at once, fewer on a busy cluster."""
        return max((r.resources.array_parallelism for r in runs), default=None)

    def refresh(self, subs: list[dict]) -> None:
        if not subs:
            return
        states = squeue_states()
        # squeue can time out on a busy cluster: then keep the last answer, and before any
        # answer treat SLURM jobs as alive (never declare a run interrupted on no evidence).
        self.known = states is not None or self.known
        self.squeue = states if states is not None else self.squeue

    def tracks(self, sub: dict, run_id: str, runs: dict) -> bool:
        return bool(_task_id(sub, run_id, runs))

    def job_state(self, sub: dict, run_id: str, runs: dict) -> str | None:
        jid = _task_id(sub, run_id, runs)
        if not jid:
            return None
        if not self.known:
            return UNKNOWN
        return self.squeue.get(jid) or self.squeue.get(jid.split("_")[0])

    def owns(self, sub: dict, holder: dict) -> bool:
        task = holder.get("slurm_job")
        return bool(task) and any(task in j.get("task_ids", {}).values() for j in sub.get("jobs") or [])

    def holds(self, holder: dict) -> bool:
        job = holder.get("slurm_job")
        return bool(job and self.squeue and (job in self.squeue or str(job).split("_")[0] in self.squeue))

    def alive(self, sub: dict) -> bool:
        queued = {k.split("_")[0] for k in self.squeue}
        return any(j["job_id"] in queued or not self.known for j in sub.get("jobs") or [])

    def describe(self, sub: dict) -> str:
        jobs = ",".join(j["job_id"] for j in sub.get("jobs") or [])
        return f"SLURM job(s) {jobs or '(being submitted)'} from {sub.get('host', '?')}"

    def log_hint(self, sweep_dir: Path, run_id: str, info: dict) -> str | None:
        if info.get("job_id"):
            return str(Path(sweep_dir) / sweepdir.SUBMITIT / f"{info['job_id']}_0_log.out")
        return None

    def cancel(self, subs: Iterable[dict], say: Say) -> None:
        # Arrays squeue still lists (all of the sweep's arrays when squeue cannot answer).
        queued = {k.split("_")[0] for k in self.squeue}
        ids = sorted({j["job_id"] for s in subs for j in s.get("jobs", [])
                      if j["job_id"] in queued or not self.known})
        if ids:
            say(f"scancel {' '.join(ids)}")
            cancel_slurm(ids)
