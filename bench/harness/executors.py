"""Executors: submit prepared run directories to SLURM (job arrays), the local queue, or in-process.

Every executor only launches ``bench.harness.job`` on run directories whose ``job.json`` and
``status.json`` (pending) are already written; outcomes are read back from the run directories,
never from submitit's result pickles (SLURM says COMPLETED even when the Python function raised).
"""

from __future__ import annotations

import getpass
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

from bench.errors import BenchError
from bench.harness.gsplat_build import SubmitBuild, prebuild_local, prebuild_slurm, with_prebuild
from bench.harness.localq import proc_start_ticks, same_process, visible_gpus
from bench.harness.runs import RunSpec
from bench.rundir import read_json
from bench import sweepdir
from bench.sweepdir import runs_dir
from bench.harness.spec import Resources

DEFAULT_MAX_ARRAY_SIZE = 1001
LOCAL_DIR = "local"


def pick_executor(requested: str) -> str:
    """auto -> slurm when ``sbatch`` is on PATH, else local; slurm without sbatch is an error."""
    have_sbatch = shutil.which("sbatch") is not None
    if requested == "auto":
        return "slurm" if have_sbatch else "local"
    if requested == "slurm" and not have_sbatch:
        raise BenchError("--executor slurm: sbatch not found on PATH (start a cluster with "
                         ".ci/start_slurm.sh or use --executor local)")
    if requested not in ("slurm", "local", "debug"):
        raise BenchError(f"--executor {requested}: expected one of auto, slurm, local, debug")
    return requested


# ---------------------------------------------------------------- SLURM


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
              "slurm_setup": [f"export PYTHONPATH={_repo_root()}${{PYTHONPATH:+:$PYTHONPATH}}",
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


def submitit_array(folder: Path, params: dict, run_dirs: list[str]) -> list[str]:
    """Submit one job array (non-blocking); returns one SLURM job id per run directory."""
    import submitit

    from bench.harness.job import RunJob

    executor = submitit.AutoExecutor(folder=folder, cluster="slurm")
    try:
        executor.update_parameters(**params)
    except ValueError as err:
        raise BenchError(f"executor.resources: {str(err).splitlines()[0]}") from None
    try:
        jobs = executor.map_array(RunJob(), run_dirs)
    except (submitit.core.utils.FailedJobError, subprocess.CalledProcessError) as err:
        raise BenchError(f"sbatch refused the job array: {str(err).strip()[:400]}") from None
    return [str(j.job_id) for j in jobs]


SubmitArray = Callable[[Path, dict, list[str]], list[str]]


def submit_slurm(sweep_dir: Path, sweep: str, runs: list[RunSpec], *, array_limit: int | None = None,
                 submit_array: SubmitArray = submitit_array, submit_build: SubmitBuild | None = None,
                 on_record: Callable[[dict], None] = lambda record: None) -> list[dict]:
    """One job array per distinct resource setting, split above MaxArraySize.

    Returns job records ``{"job_id", "run_ids", "task_ids", "resources"}`` for the manifest;
    ``on_record`` sees each as soon as its array is accepted (so a later refusal loses nothing).
    Runs on gsplat get its CUDA extension built once first (:func:`prebuild_slurm`).
    """
    limit = array_limit or max_array_size()
    folder = Path(sweep_dir) / sweepdir.SUBMITIT
    records = []
    prebuild = prebuild_slurm(sweep_dir, sweep, runs, submit_build)
    for res, group in group_by_resources(runs):
        params = with_prebuild(slurm_parameters(res, sweep), prebuild)
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


# ---------------------------------------------------------------- local queue


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


def submit_local(sweep_dir: Path, submission: int, runs: list[RunSpec], max_concurrent: int | None,
                 device: str) -> dict:
    """Start a detached supervisor for ``runs``; returns the manifest's ``local`` record."""
    folder = Path(sweep_dir) / LOCAL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    gpus = [] if device == "cpu" else visible_gpus()
    cpus = max((r.resources.cpus_per_task for r in runs), default=1)
    cap = max_concurrent or default_concurrency(device, cpus)
    prebuild_local(runs, gpus, cap)
    queue = folder / f"sub-{submission:04d}.json"
    state = folder / f"sub-{submission:04d}.state.json"
    log = folder / f"sub-{submission:04d}.log"
    from bench.atomic import write_json

    write_json(queue, {"run_dirs": [str(runs_dir(sweep_dir) / r.run_id) for r in runs],
                       "max_concurrent": cap, "gpus": gpus, "state": str(state)})
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bench.harness.localq", str(queue)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env=_child_env())
    return {"queue": str(queue), "state": str(state), "log": str(log), "max_concurrent": cap,
            "gpus": gpus, "supervisor": {"pid": proc.pid, "start": proc_start_ticks(proc.pid)},
            "_popen": proc}


def _repo_root() -> str:
    """The checkout holding this package (shlex-quoted for sbatch scripts)."""
    return shlex.quote(str(Path(__file__).resolve().parents[2]))


def _child_env() -> dict[str, str]:
    """The environment for children, with this package importable even without installation."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def local_alive(local: dict) -> bool:
    """Whether a submission's supervisor still runs."""
    return same_process(local.get("supervisor"))


def cancel_local(local: dict, grace_s: float = 15.0) -> None:
    """TERM the supervisor and every child process group it started; KILL what survives."""
    state = read_json(Path(local["state"])) or {}
    targets = [local.get("supervisor")] + list((state.get("running") or {}).values())
    targets = [t for t in targets if same_process(t)]
    for t in targets:
        _killpg(int(t["pid"]), signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(same_process(t) for t in targets):
        time.sleep(0.2)
    for t in targets:
        if same_process(t):
            _killpg(int(t["pid"]), signal.SIGKILL)


def _killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# ---------------------------------------------------------------- debug (in-process)


def run_debug(sweep_dir: Path, runs: list[RunSpec], on_end: Callable[[RunSpec, str], None]) -> None:
    """Run each job in this process, one after the other (breakpoints work); failures are
    recorded in the run's status.json and the next run starts."""
    from bench.harness.job import FAILED, run_job

    for run in runs:
        try:
            state = run_job(runs_dir(sweep_dir) / run.run_id, executor="debug")
        except Exception:
            state = FAILED
        on_end(run, state)
