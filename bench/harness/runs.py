"""Runs: expansion of a sweep into (variant x dataset x scene x seed), run ids, and run-dir state.

A run's identity is the hash of its result-affecting configuration: the variant, the fully
resolved method config, dataset, scene and seed. Resources (partition, GPUs, CPUs, threads, time
limit, executor) never enter it: they live in the sweep's ``executor`` section, and CPU threads
reach training through ``BENCH_TORCH_THREADS``, not through the method config. The run id is a readable
slug plus the first 8 hex digits of that hash, e.g. ``full.synthetic.motion_0.s0.3fa81c02``.

Files the harness owns in a run directory (beside those in :mod:`bench.rundir`):
``job.json`` (what to run, written before submission), ``status.json`` (state) and ``.lock``
(held by the process training the run).
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from bench import locks, rundir
from bench.locks import FileLock
from bench.errors import BenchError
from bench.harness.procs import same_process, this_process
from bench.harness.states import Stored
from bench.harness.spec import Resources, SweepSpec, variant_names
from bench.method.config import run_hasher


# status.json states (bench.harness.states.Stored), under the names the harness has used.
PENDING, RUNNING, REQUEUED, DONE, FAILED, CANCELLED = (
    Stored.PENDING, Stored.RUNNING, Stored.REQUEUED, Stored.DONE, Stored.FAILED, Stored.CANCELLED)

FILTER_KEYS = ("variant", "dataset", "scene", "seed")


@dataclass(slots=True)
class RunSpec:
    """One training run of a sweep: everything its job needs, and its identity."""

    run_id: str
    sweep: str
    variant: str
    base_method: str
    dataset: str
    scene: str
    blur_type: str | None
    seed: int
    config_hash: str
    profile: str | None
    overrides: dict[str, Any]
    data_root: str | None
    device: str
    resources: Resources
    # the evaluation protocol the sweep names (None: the dataset's own); evaluation only, so not in
    # the run's identity: `bench eval --protocol` re-scores a finished run
    protocol: str | None = None

    @property
    def identity(self) -> rundir.RunIdentity:
        """Who the run is (written into job.json here, then config.yaml and results.json by the job)."""
        return rundir.RunIdentity(self.run_id, self.sweep, self.variant, self.base_method, self.dataset,
                                  self.scene, self.blur_type, self.seed, self.config_hash)

    def job_dict(self) -> dict[str, Any]:
        """job.json: the run's identity (bench.rundir.identified), then how to run it."""
        return rundir.identified(self.identity, {
            "profile": self.profile, "overrides": self.overrides, "data_root": self.data_root,
            "device": self.device, "resources": self.resources.model_dump(), "protocol": self.protocol})


def make_run_id(variant: str, dataset: str, scene: str, seed: int, chash: str) -> str:
    return f"{variant}.{dataset}.{scene}.s{seed}.{chash[:8]}"


def expand(spec: SweepSpec) -> list[RunSpec]:
    """Every run of the sweep, in the order variant, dataset, scene, seed."""
    from bench.data.registry import list_datasets
    from bench.method.config import resolve_config
    from bench.method.registry import list_methods

    methods = {m.name: m for m in list_methods()}
    datasets = {d.name: d for d in list_datasets()}
    runs: list[RunSpec] = []
    for variant in variant_names(spec):
        method = methods[variant]
        for i, entry in enumerate(spec.datasets):
            if entry.variants is not None and variant not in entry.variants:
                continue
            ds = datasets[entry.name]
            overrides = {**spec.overrides, **entry.overrides}
            try:
                # Same layering as resolve_config(variant, ...): profile < variant < user overrides;
                # the variant's overrides are applied from the list read once above.
                cfg = resolve_config(None, spec.profile, {**method.overrides, **overrides})
            except BenchError as err:
                raise BenchError(f"{spec.where('datasets', i)}: {variant} on {entry.name}: {err}") from None
            hasher = run_hasher(variant, cfg.to_dict())  # the config serialised once for its runs
            resources = spec.resources_for(entry)
            blur = {s.name: s.blur_type for s in ds.scenes}
            for scene in entry.scenes or list(blur):
                for seed in spec.seeds:
                    h = hasher(entry.name, scene, seed)
                    runs.append(RunSpec(
                        run_id=make_run_id(variant, entry.name, scene, seed, h), sweep=spec.name,
                        variant=variant, base_method=method.base, dataset=entry.name, scene=scene,
                        blur_type=blur.get(scene, ds.blur_type), seed=seed, config_hash=h,
                        profile=spec.profile, overrides=overrides, data_root=entry.data_root,
                        device=spec.executor.device, resources=resources,
                        protocol=spec.protocol_for(entry)))
    return runs


def parse_only(items: list[str] | None) -> dict[str, set[str]]:
    """``["variant=full", "scene=motion_0,motion_1"]`` -> {key: allowed values}."""
    out: dict[str, set[str]] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = {"method": "variant"}.get(key.strip(), key.strip())
        if not sep or key not in FILTER_KEYS or not value.strip():
            raise BenchError(f"--only {item!r}: expected KEY=VALUE[,VALUE] with KEY one of "
                             f"{', '.join(FILTER_KEYS)}")
        out.setdefault(key, set()).update(v.strip() for v in value.split(",") if v.strip())
    return out


def select(runs: list[RunSpec], only: dict[str, set[str]]) -> list[RunSpec]:
    """The runs matching every filter (values of one key are alternatives)."""
    for key, values in only.items():
        present = {str(getattr(r, key)) for r in runs}
        unknown = sorted(values - present)
        if unknown:
            raise BenchError(f"--only {key}={','.join(unknown)}: not in this sweep; "
                             f"allowed: {', '.join(sorted(present))}")
    return [r for r in runs if all(str(getattr(r, k)) in v for k, v in only.items())]


# ---------------------------------------------------------------- run directory files


def write_job(run_dir: Path, run: RunSpec) -> None:
    """Write the run's job.json (bench.rundir.write_job)."""
    rundir.write_job(run_dir, run.job_dict())


class RunLock:
    """An exclusive fcntl lock on ``<run_dir>/.lock``, held while a process trains the run.

    ``acquire(wait_s)`` retries for a moment because a status probe may hold it for microseconds.
    The holder writes who it is into the file (:func:`lock_holder`: pid, process start, host,
    SLURM task, time) and empties it on release, so a sweep can say which process holds a run and
    tell a live holder from a dead one even where flock is not shared between hosts.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / rundir.LOCK
        self._lock = FileLock(self.path)

    def acquire(self, wait_s: float = 10.0) -> bool:
        return self._lock.acquire(wait_s, poll_s=0.2, record=_holder_record())

    def release(self) -> None:
        self._lock.release()


def lock_held(run_dir: Path) -> bool:
    """Whether some process holds the run's lock right now."""
    return locks.held(Path(run_dir) / rundir.LOCK)


def _holder_record() -> dict[str, Any]:
    env = os.environ
    task = (f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
            if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID") else env.get("SLURM_JOB_ID"))
    return {**this_process(), "host": socket.gethostname(),
            "slurm_job": task, "since": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def lock_holder(run_dir: Path) -> dict[str, Any] | None:
    """Who wrote itself into the run's lock file as holding it (None: nobody, or released).

    Only a record: whether that process still lives is :func:`holder_alive`'s question.
    """
    try:
        text = (Path(run_dir) / rundir.LOCK).read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:  # the record of older versions: "<pid> <host>"
        pid, _, host = text.partition(" ")
        return {"pid": int(pid), "host": host.strip(), "start": None} if pid.isdigit() else None
    return record if isinstance(record, dict) else None


def _nowhere(holder: dict[str, Any]) -> bool:
    return False


def holder_alive(holder: dict[str, Any] | None,
                 elsewhere: Callable[[dict[str, Any]], bool] = _nowhere) -> bool:
    """Whether a lock holder record names a live process: on this host by pid and start time,
    elsewhere as ``elsewhere(holder)`` says (an executor's job still listed by its scheduler,
    :meth:`bench.harness.executors.base.Executor.holds`)."""
    if not holder:
        return False
    if holder.get("host") == socket.gethostname() and holder.get("pid"):
        if holder.get("start") is None:  # old record: the pid alone
            return Path(f"/proc/{int(holder['pid'])}").exists()
        return same_process(holder)
    return elsewhere(holder)


def describe_holder(holder: dict[str, Any] | None) -> str:
    """``pid 123 on node7 (SLURM 456_3) since ...`` for messages."""
    if not holder:
        return "another process"
    text = f"pid {holder.get('pid')} on {holder.get('host') or '?'}"
    if holder.get("slurm_job"):
        text += f" (SLURM job {holder['slurm_job']})"
    return text + (f" since {holder['since']}" if holder.get("since") else "")


def checkpoint_step(path: Path | None) -> int:
    """The step encoded in a checkpoint file name (``step_0000500.pt`` -> 500); 0 for None."""
    if path is None:
        return 0
    return int(path.stem.split("_")[-1])
