"""One run's job: lock the run, train (resuming), evaluate, write results.json; track status.json.

The same entry point serves every executor: the SLURM array task (through
:class:`bench.harness.executors.slurm.RunJob`, a submitit Checkpointable), the local queue's child
process (``python -m bench.harness.job RUN_DIR --executor local --job-log RUN_DIR/job.log``) and the
in-process debug executor. Each tells the job its name and where its output goes; the job knows no
executor. Everything a job needs is in ``<run_dir>/job.json``.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

from bench import rundir
from bench.harness import states
from bench.harness.runs import DONE, FAILED, RUNNING, RunLock, checkpoint_step, describe_holder, lock_holder
from bench.rundir import read_job, read_json, read_status, write_status

BUSY = states.BUSY  # run_job's answer when another process holds the run
LOCK_WAIT_S = 10.0  # a status probe holds a run's lock for microseconds; wait that out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _pipeline():
    """The three stages of a run (imported here so planning never imports torch)."""
    from bench.method.train import train_run
    from bench.metrics.modes import evaluate_modes
    from bench.metrics.results import write_results

    return train_run, evaluate_modes, write_results


def _slurm_ids() -> dict[str, str | None]:
    env = os.environ
    return {"job_id": env.get("SLURM_JOB_ID"), "array_job_id": env.get("SLURM_ARRAY_JOB_ID"),
            "array_task_id": env.get("SLURM_ARRAY_TASK_ID")}


def _set_threads(n: int) -> dict[str, str | None]:
    """Cap CPU threads of this run (train reads BENCH_TORCH_THREADS); returns the old values."""
    keys = ("BENCH_TORCH_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    old = {k: os.environ.get(k) for k in keys}
    for k in keys:
        os.environ[k] = str(n)
    return old


def _restore_env(old: dict[str, str | None]) -> None:
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def run_job(run_dir: str | os.PathLike, executor: str = "local", job_log: str | None = None) -> str:
    """Run one job to its end; returns the final state (done, failed, or busy when locked).

    ``executor`` names the executor running it and ``job_log`` the file receiving this process's
    output (None: a console), both recorded in status.json.

    Exceptions from training/evaluation are recorded in status.json and re-raised, so each
    executor reports the failure its own way; the caller decides whether to continue.
    """
    run_dir = Path(run_dir)
    job = read_job(run_dir)
    identity = rundir.RunIdentity.read(job, run_dir / rundir.JOB)
    lock = RunLock(run_dir)
    if not lock.acquire(LOCK_WAIT_S):
        print(f"{run_dir.name}: {describe_holder(lock_holder(run_dir))} holds {lock.path}; not training it "
              "twice (the sweep counts the run by that process's outcome)", flush=True)
        return BUSY
    old_env = _set_threads(int(job["resources"]["cpus_per_task"]))
    try:
        results = read_json(run_dir / rundir.RESULTS)
        if results is not None and results.get("config_hash") == identity.config_hash:
            write_status(run_dir, state=DONE)
            return DONE
        return _train_and_evaluate(run_dir, identity, job, executor, job_log)
    finally:
        _restore_env(old_env)
        lock.release()


def _train_and_evaluate(run_dir: Path, identity: rundir.RunIdentity, job: dict, executor: str,
                        job_log: str | None) -> str:
    resumed = checkpoint_step(rundir.latest_checkpoint(run_dir))
    attempt = int(read_status(run_dir).get("attempt", 0)) + 1
    start, t0 = _now(), time.time()
    write_status(run_dir, state=RUNNING, run_id=identity.run_id, attempt=attempt, executor=executor,
                 host=socket.gethostname(), pid=os.getpid(), slurm=_slurm_ids(), start_time=start,
                 end_time=None, resumed_from_step=resumed, log=str(run_dir / rundir.LOG),
                 job_log=job_log, error=None, traceback=None)
    print(f"{identity.run_id}: attempt {attempt} on {socket.gethostname()}, "
          + (f"resuming from checkpoint step {resumed}" if resumed else "starting from step 0"),
          flush=True)
    train, evaluate_modes, write_results = _pipeline()
    try:
        config = _check_identity(identity, job)
        summary = train(run_dir, identity, config, profile=job["profile"], overrides=job["overrides"],
                        data_root=job["data_root"], device=job["device"], progress=False)
        metrics, evaluations = evaluate_modes(run_dir)
        speed = _speed(run_dir, job["device"])
        end = _now()
        extra = _extra(summary, executor, start, end, t0, resumed, attempt)
        if evaluations:
            extra["evaluations"] = evaluations
        if speed is not None:
            extra["speed"] = speed
        write_results(run_dir, identity, metrics, extra=extra)
    except Exception as err:
        traceback.print_exc()
        message = f"{type(err).__name__}: {err}".splitlines()[0][:500]
        write_status(run_dir, state=FAILED, end_time=_now(), error=message,
                     traceback=traceback.format_exc().splitlines()[-20:])
        print(f"{identity.run_id}: FAILED: {message}", file=sys.stderr, flush=True)
        raise
    write_status(run_dir, state=DONE, end_time=end, wall_time_s=round(time.time() - t0, 3))
    print(f"{identity.run_id}: done in {time.time() - t0:.1f}s", flush=True)
    return DONE


def _speed(run_dir: Path, device: str) -> dict | None:
    """The trained run's rendering speed, results.json's ``speed`` block (bench.method.speed: a few
    passes over the test views); None, with one line on stderr, where it cannot be measured: the run's
    metrics stand without it, and ``bench fps RUN_DIR`` records it later."""
    from bench.method.speed import measure_run

    try:
        return measure_run(run_dir, device=device)
    # A timing that fails must not fail a trained, evaluated run; the line names what went wrong.
    except Exception as err:  # noqa: BLE001
        print(f"{run_dir.name}: rendering speed not measured ({type(err).__name__}: {err}); "
              f"`bench fps {run_dir}` records it", file=sys.stderr, flush=True)
        return None


def _check_identity(identity: rundir.RunIdentity, job: dict):
    """The config resolved now (returned: training gets it, resolved once per job) must be the one
    planned: code edited between submission and start would otherwise train something else under
    this run's id."""
    from bench.errors import BenchError
    from bench.method.config import resolve_config, run_hash

    cfg = resolve_config(identity.method, job["profile"], job["overrides"])
    now = run_hash(identity.method, cfg.to_dict(), identity.dataset, identity.scene, identity.seed)
    if now != identity.config_hash:
        raise BenchError(f"{identity.run_id}: the configuration resolves to hash {now} now, but "
                         f"{identity.config_hash} when the sweep was planned (code or method files "
                         "changed since); submit the sweep again")
    return cfg


def _extra(summary: dict, executor: str, start: str, end: str, t0: float, resumed: int,
           attempt: int) -> dict:
    from bench.provenance import collect, peak_memory_bytes

    provenance = collect()
    provenance.update(start_time=start, end_time=end, wall_time_s=round(time.time() - t0, 3),
                      peak_memory=peak_memory_bytes(str(summary.get("device", "")).startswith("cuda")),
                      executor=executor, attempt=attempt,
                      resumed_from_step=resumed)
    return {"train": summary, "provenance": provenance}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one prepared run directory (job.json).")
    parser.add_argument("run_dir")
    parser.add_argument("--executor", default="local", help="the executor running it (status.json)")
    parser.add_argument("--job-log", default=None, help="the file receiving this process's output")
    args = parser.parse_args(argv)
    try:
        state = run_job(args.run_dir, executor=args.executor, job_log=args.job_log)
    except Exception as err:  # failures of training are in status.json already; this says the rest
        print(f"bench.harness.job: {args.run_dir}: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
        return 1
    return 0 if state in (DONE, BUSY) else 1


if __name__ == "__main__":
    sys.exit(main())
