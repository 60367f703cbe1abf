"""Runs: expansion of a sweep into (variant x dataset x scene x seed), run ids, and run-dir state.

A run's identity is the hash of its result-affecting configuration: the variant, the fully
resolved method config (minus bookkeeping keys that cannot change results), dataset, scene and
seed. Resources (partition, GPUs, threads, time limit) never enter it. The run id is a readable
slug plus the first 8 hex digits of that hash, e.g. ``full.synthetic.motion_0.s0.3fa81c02``.

Files the harness owns in a run directory (beside those in :mod:`bench.rundir`):
``job.json`` (what to run, written before submission), ``status.json`` (state) and ``.lock``
(held by the process training the run).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from bench import rundir
from bench.atomic import write_json
from bench.errors import BenchError
from bench.harness.spec import Resources, SweepSpec, variant_names

JOB = "job.json"
LOCK = ".lock"
RUNS = "runs"

# Config keys that change bookkeeping or speed but not results (resumption is bit-exact).
NOT_RESULT_AFFECTING = ("train.num_threads", "train.checkpoint_every", "train.log_every")

# status.json states written by the harness and the job.
PENDING, RUNNING, REQUEUED, DONE, FAILED, CANCELLED = (
    "pending", "running", "requeued", "done", "failed", "cancelled")

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

    def job_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["resources"] = self.resources.model_dump()
        return d


def _strip(cfg: dict[str, Any]) -> dict[str, Any]:
    """A copy of a nested config dict without the keys that cannot affect results."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in cfg.items()}
    for key in NOT_RESULT_AFFECTING:
        section, _, name = key.partition(".")
        if isinstance(out.get(section), dict):
            out[section].pop(name, None)
    return out


def run_hash(variant: str, cfg_hash: str, dataset: str, scene: str, seed: int) -> str:
    from bench.method.config import config_hash

    return config_hash({"method": variant, "config": cfg_hash, "dataset": dataset, "scene": scene,
                        "seed": seed})


def make_run_id(variant: str, dataset: str, scene: str, seed: int, chash: str) -> str:
    return f"{variant}.{dataset}.{scene}.s{seed}.{chash[:8]}"


def expand(spec: SweepSpec) -> list[RunSpec]:
    """Every run of the sweep, in the order variant, dataset, scene, seed."""
    from bench.data.registry import get_dataset
    from bench.method.config import config_hash, resolve_config
    from bench.method.registry import get_method

    runs: list[RunSpec] = []
    for variant in variant_names(spec):
        base = get_method(variant).base
        for i, entry in enumerate(spec.datasets):
            ds = get_dataset(entry.name)
            overrides = {**spec.overrides, **entry.overrides}
            try:
                cfg = resolve_config(variant, spec.profile, overrides)
            except BenchError as err:
                raise BenchError(f"{spec.where('datasets', i)}: {variant} on {entry.name}: {err}") from None
            cfg_hash = config_hash(_strip(cfg.to_dict()))
            resources = spec.resources_for(entry)
            blur = {s.name: s.blur_type for s in ds.scenes}
            for scene in entry.scenes or list(blur):
                for seed in spec.seeds:
                    h = run_hash(variant, cfg_hash, entry.name, scene, seed)
                    runs.append(RunSpec(
                        run_id=make_run_id(variant, entry.name, scene, seed, h), sweep=spec.name,
                        variant=variant, base_method=base, dataset=entry.name, scene=scene,
                        blur_type=blur.get(scene, ds.blur_type), seed=seed, config_hash=h,
                        profile=spec.profile, overrides=overrides, data_root=entry.data_root,
                        device=spec.executor.device, resources=resources))
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


def runs_dir(sweep_dir: Path) -> Path:
    return Path(sweep_dir) / RUNS


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's object, or None when missing or unreadable (half-written files never occur:
    every writer is atomic, but a file may be replaced between two reads)."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def read_status(run_dir: Path) -> dict[str, Any]:
    return read_json(Path(run_dir) / rundir.STATUS) or {}


def write_status(run_dir: Path, **fields: Any) -> dict[str, Any]:
    """Merge ``fields`` into status.json (atomically) and return the new status."""
    status = read_status(run_dir)
    status.update(fields, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_json(Path(run_dir) / rundir.STATUS, status)
    return status


def read_job(run_dir: Path) -> dict[str, Any]:
    job = read_json(Path(run_dir) / JOB)
    if job is None:
        raise BenchError(f"{Path(run_dir) / JOB}: missing or unreadable job file")
    return job


def write_job(run_dir: Path, run: RunSpec) -> None:
    """Write job.json unless an identical one is there (keeps its mtime for humans)."""
    path = Path(run_dir) / JOB
    new = run.job_dict()
    if read_json(path) != json.loads(json.dumps(new)):
        write_json(path, new)


class RunLock:
    """An exclusive fcntl lock on ``<run_dir>/.lock``, held while a process trains the run.

    ``acquire(wait_s)`` retries for a moment because a status probe may hold it for microseconds.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK
        self._fd: int | None = None

    def acquire(self, wait_s: float = 10.0) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.2)
                continue
            self._fd = fd
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} {os.uname().nodename}\n".encode())
            return True

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lock_held(run_dir: Path) -> bool:
    """Whether some process holds the run's lock right now."""
    path = Path(run_dir) / LOCK
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def checkpoint_step(path: Path | None) -> int:
    """The step encoded in a checkpoint file name (``step_0000500.pt`` -> 500); 0 for None."""
    if path is None:
        return 0
    return int(path.stem.split("_")[-1])


def iter_run_dirs(sweep_dir: Path) -> Iterator[Path]:
    root = runs_dir(sweep_dir)
    if root.is_dir():
        yield from sorted(p for p in root.iterdir() if p.is_dir())
