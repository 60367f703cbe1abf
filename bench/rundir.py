"""The layout of one run directory, shared by training, the harness, evaluation and reports.

::

    <run_dir>/
      config.yaml            the run's identity (RunIdentity), then profile, overrides, data root and
                             the resolved configuration (every setting)
      status.json            harness state: pending | running | done | failed, error, log path, job ids
      job.json               what the harness asked this run to do: its identity, then profile,
                             overrides, data root, device, resources, protocol (bench.harness.runs.RunSpec)
      .lock                  held (fcntl) by the process training the run; its text names the holder
      log.txt                the run's log (which init path was taken, warnings, errors)
      checkpoints/step_NNNNNNN.pt   atomic checkpoints; the highest step is resumed from
      checkpoints/best_test.pt      eval.select=best_test: the state with the best test PSNR so far,
                                    its step and every scheduled test evaluation (step, PSNR)
      renders/test/<name>.png       sharp renders of every test view (final step), 16-bit RGB
      renders/test_<mode>/<name>.png   the same for another evaluation mode (eval_renders): the
                                    best_test state, refined test poses (+ poses.json)
      renders/train/<name>_blurred.png, <name>_sharp.png, <name>_mask.png   a few training views
      renders/train/<name>_kernels.npz   predicted kernels (H,W,K,K) and blur mask (H,W) of those views
      curves.csv             one row per logged step: step, loss terms, train_psnr, elapsed_s
      train_summary.json     steps, wall_time_s, peak_memory_bytes, device, backend, init path
      videos/<path>.mp4      `bench render` videos of the trained scene (bench.video), one per camera
                             path by default (test, spiral, fixed, bullet)
      export/gaussians_t<time>.ply   `bench export --ply`: the Gaussians at a time (bench.export.ply)
      results.json           THE "finished" marker: the identity, then metrics (per image and
                             aggregate), protocol, provenance; written atomically and last
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypedDict

from bench.atomic import write_json, write_text
from bench.errors import BenchError
from bench.sweepdir import RUNS

CONFIG = "config.yaml"
STATUS = "status.json"
LOG = "log.txt"
CHECKPOINTS = "checkpoints"
BEST_TEST_STATE = "checkpoints/best_test.pt"
TEST_RENDERS = "renders/test"
REFINED_POSES = "poses.json"
TRAIN_RENDERS = "renders/train"
CURVES = "curves.csv"
TRAIN_SUMMARY = "train_summary.json"
RESULTS = "results.json"
VIDEOS = "videos"
EXPORT = "export"
JOB = "job.json"
LOCK = ".lock"
JOB_LOG = "job.log"  # stdout and stderr of a job the local queue started


def eval_mode(select: str, refine_steps: int) -> str:
    """The name of an evaluation mode: the selected state (``last``, ``best_test``), then
    ``+refine<N>`` when the test poses were refined for N steps, e.g. ``last+refine500``."""
    return select + (f"+refine{refine_steps}" if refine_steps else "")


def eval_renders(mode: str) -> str:
    """The test renders of evaluation mode ``mode``, relative to the run directory."""
    return TEST_RENDERS if mode == "last" else f"{TEST_RENDERS}_{mode.replace('+', '_')}"


_MODE_DIR = re.compile(r"^test_(last|best_test)(?:_refine([1-9][0-9]*))?$")


def eval_modes_on_disk(run_dir: Path) -> list[str]:
    """The evaluation modes whose test renders the run holds (``last`` first when present)."""
    renders = Path(run_dir) / TEST_RENDERS
    modes = ["last"] if renders.is_dir() else []
    for path in sorted(renders.parent.glob("test_*")):
        found = _MODE_DIR.match(path.name)
        mode = eval_mode(found.group(1), int(found.group(2) or 0)) if found else None
        if mode and mode != "last" and path.is_dir():
            modes.append(mode)
    return modes


def read_config(run_dir: Path) -> dict:
    """The run's config.yaml as a dict; BenchError naming the file when missing or not a mapping."""
    import yaml

    path = Path(run_dir) / CONFIG
    if not path.is_file():
        raise BenchError(f"{path}: missing; expected the run's resolved config (is {run_dir} a run directory?)")
    with open(path) as f:
        config = yaml.safe_load(f) or {}
    if not isinstance(config, dict):
        raise BenchError(f"{path}: expected a mapping")
    return config


def checkpoint_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step_{step:07d}.pt"


def checkpoints(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest step first (``*.corrupt`` files set aside are not listed)."""
    return sorted((Path(run_dir) / CHECKPOINTS).glob("step_*.pt"))


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint with the highest step in ``run_dir``, or None."""
    found = checkpoints(run_dir)
    return found[-1] if found else None


# -- curves.csv: one row per logged step; columns step, the loss terms, train_psnr,
# num_gaussians, num_dynamic, grown, pruned, elapsed_s (the writer's ``fields``, in that order) ----

CurveRow = dict[str, float]
# Gaussian counts at a logged step: the total and the dynamic ones then, and the Gaussians added by
# densification (clone/split/DGD) and pruned since the start.
COUNT_FIELDS = ("num_gaussians", "num_dynamic", "grown", "pruned")


def _number(text: str) -> float:
    try:
        return int(text)
    except ValueError:
        return float(text) if text else float("nan")


def read_curves(run_dir: Path) -> list[CurveRow]:
    """Every row of the run's curves.csv as numbers (int where written as one; '' and 'nan' -> NaN)."""
    path = Path(run_dir) / CURVES
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def write_curves(run_dir: Path, rows: list[CurveRow], fields: list[str]) -> None:
    """Atomically (re)write curves.csv with columns ``fields``; floats with 6 significant digits."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    for row in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text(Path(run_dir) / CURVES, buf.getvalue())


def last_curve_step(run_dir: Path) -> int | None:
    """The step of curves.csv's last row, read from the file's tail (cheap for a live view)."""
    try:
        with open(Path(run_dir) / CURVES, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 512))
            last = f.read().splitlines()[-1].decode()
        return int(float(last.split(",")[0]))
    except (OSError, IndexError, ValueError):
        return None


def is_finished(run_dir: Path) -> bool:
    """A run is finished exactly when its own results file exists."""
    return (Path(run_dir) / RESULTS).is_file()


# -- the run's identity (the first keys of job.json, config.yaml and results.json) and results.json:
# identity, schema, "metrics", then train summary and provenance (docs/datasets.md §Results) ------

RESULTS_SCHEMA = 1


@dataclass(frozen=True)
class RunIdentity:
    """Who a run is: its id and sweep, the variant (``method``) and its base, dataset, scene, blur
    type, seed and the hash of its resolved configuration (bench.method.config.run_hash).

    Computed once (the planner for a sweep's run, training for a run trained alone) and written by
    :func:`identified` as the first keys of job.json, config.yaml and results.json, under the same
    names in all three; :meth:`read` takes it back from any of them.
    """

    run_id: str
    sweep: str | None
    method: str
    base_method: str
    dataset: str
    scene: str
    blur_type: str | None
    seed: int
    config_hash: str

    @classmethod
    def of_directory(cls, run_dir: Path, **fields: Any) -> "RunIdentity":
        """The identity of a run trained alone into ``run_dir``: id and sweep from where the
        directory lies (``<sweep>/runs/<run_id>``, else no sweep), the rest as given."""
        run_dir = Path(run_dir)
        in_sweep = run_dir.parent.name == RUNS
        return cls(run_id=run_dir.name, sweep=run_dir.parent.parent.name if in_sweep else None, **fields)

    @classmethod
    def read(cls, record: dict[str, Any], source: Path) -> "RunIdentity":
        """The identity :func:`identified` wrote into ``record`` (the content of ``source``: job.json,
        config.yaml or results.json); BenchError naming the file and the missing keys otherwise."""
        missing = [k for k in IDENTITY_KEYS if k not in record]
        if missing:
            raise BenchError(f"{source}: no run identity (missing {', '.join(missing)}); written by an older "
                             "version: submit the sweep again, or train the run again")
        return cls(**{k: record[k] for k in IDENTITY_KEYS})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


IDENTITY_KEYS = tuple(f.name for f in fields(RunIdentity))
_HASH = re.compile(rb'"config_hash"\s*:\s*"([0-9A-Za-z]*)"')


def identified(identity: RunIdentity, body: dict[str, Any]) -> dict[str, Any]:
    """The one writer of a run's identity: ``identity``'s keys first, then ``body`` (which must not
    hold any of them). job.json, config.yaml and results.json are all written through it, so the
    three agree and :func:`results_config_hash` finds the run's hash at the top of results.json."""
    clash = sorted(set(body) & set(IDENTITY_KEYS))
    if clash:
        raise ValueError(f"identity keys {clash} outside the run's identity")
    return {**identity.to_dict(), **body}


def write_results(run_dir: Path, identity: RunIdentity, metrics: dict, extra: dict) -> Path:
    """Atomically write results.json: the run's identity (:func:`identified`), schema, ``metrics``,
    then ``extra`` (train summary, provenance, evaluations)."""
    doc = identified(identity, {"schema": RESULTS_SCHEMA, "metrics": metrics, **extra})
    path = Path(run_dir) / RESULTS
    write_json(path, doc)
    return path


def read_results(run_dir: Path) -> dict:
    """The parsed results.json of a run; BenchError naming the file when it is unreadable."""
    path = Path(run_dir) / RESULTS
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BenchError(f"{path}: not a readable results file ({err})") from None


def results_config_hash(run_dir: Path) -> str | None | bool:
    """The config hash a run's results.json records; False when there is no file, None when
    it records none. Fast for large sweeps: the first "config_hash" in the file is the run's
    (:func:`write_results` puts the identity keys first); the file is parsed only when that
    match is missing."""
    try:
        with open(Path(run_dir) / RESULTS, "rb") as f:
            data = f.read()
    except OSError:
        return False
    match = _HASH.search(data)
    if match:
        return match.group(1).decode()
    try:
        return json.loads(data).get("config_hash")
    except ValueError:
        return None


# -- status.json and job.json (the harness's files of a run) -------------------------------------


class Status(TypedDict, total=False):
    """status.json: ``state`` (pending | running | requeued | done | failed) and what the harness
    knows of the attempt: run_id, attempt, executor, host, pid, slurm ids, start_time, end_time,
    resumed_from_step, log, job_log, error, traceback, wall_time_s, requeued_at, updated."""

    state: str
    run_id: str
    attempt: int
    error: str | None
    log: str
    job_log: str | None
    updated: str


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON file's object, or None when missing or unreadable (half-written files never occur:
    every writer is atomic, but a file may be replaced between two reads)."""
    try:
        with open(path, "rb") as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        return None


def read_status(run_dir: Path) -> Status:
    return read_json(Path(run_dir) / STATUS) or {}


def write_status(run_dir: Path, **fields: Any) -> Status:
    """Merge ``fields`` into status.json (atomically) and return the new status."""
    status = read_status(run_dir)
    status.update(fields, updated=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    write_json(Path(run_dir) / STATUS, status)
    return status


def read_job(run_dir: Path) -> dict[str, Any]:
    """job.json (bench.harness.runs.RunSpec.job_dict); BenchError when missing or unreadable."""
    job = read_json(Path(run_dir) / JOB)
    if job is None:
        raise BenchError(f"{Path(run_dir) / JOB}: missing or unreadable job file")
    return job


def write_job(run_dir: Path, job: dict[str, Any]) -> None:
    """Write job.json unless an identical one is there (keeps its mtime for humans)."""
    path = Path(run_dir) / JOB
    if read_json(path) != json.loads(json.dumps(job)):
        write_json(path, job)
