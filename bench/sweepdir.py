"""The layout of one sweep's output directory, shared by the harness and the reports.

::

    <output_root>/<sweep name>/
      manifest.json          the runs of the sweep's latest expansion, its plan (reference, variants,
                             scenes: what the report reads) and every submission
                             (written by bench.harness.manifest under a lock)
      runs/<run_id>/         one run directory each (layout: bench.rundir)
      archive/<run_id>.<n>/  run directories moved aside by --force
      submitit/              SLURM scripts and logs (<job>_<task>_log.out)
      torch_extensions/      the shared gsplat build of the sweep's jobs (SLURM, gsplat runs)
      results.csv, results.parquet   the collected metrics (bench.report.collect)
      tables/, figures/, report.html the report (bench.report)
      videos/<dataset>_<scene>.mp4   the report's comparison videos (input, GT, every variant)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypedDict

from bench.errors import BenchError

MANIFEST = "manifest.json"
RUNS = "runs"
ARCHIVE = "archive"
SUBMITIT = "submitit"
TORCH_EXTENSIONS = "torch_extensions"
RESULTS_CSV = "results.csv"
RESULTS_PARQUET = "results.parquet"
TABLES = "tables"
FIGURES = "figures"
REPORT = "report.html"
VIDEOS = "videos"


class ManifestRun(TypedDict, total=False):
    """manifest.json ``runs[<run_id>]``: the run's coordinates and where it was last submitted."""

    variant: str
    dataset: str
    scene: str
    seed: int
    config_hash: str
    submission: int | None
    executor: str | None
    job_id: str | None


class Manifest(TypedDict, total=False):
    """manifest.json: schema, sweep name, sweep_file, created/updated, ``runs`` (run_id ->
    ManifestRun), the plan's ``reference``, ``variants`` and ``scenes`` (:func:`plan_fields`; absent
    from manifests written before issue 24) and ``submissions`` (id, time, state, executor, host,
    argv, jobs, local)."""

    schema: int
    sweep: str
    sweep_file: str | None
    runs: dict[str, ManifestRun]
    reference: str
    variants: list[str]
    scenes: dict[str, list[str]]
    submissions: list[dict[str, Any]]


def plan_fields(reference: str, variants: list[str], runs) -> dict[str, Any]:
    """The manifest's record of a planned sweep, so the report reads the sweep directory only
    (never the sweep file, whose parser belongs to the harness): the reference variant of the
    paired statistics, the variants in file order, and dataset -> the scenes of ``runs`` (objects
    with ``dataset`` and ``scene``) in the order they first appear."""
    scenes: dict[str, list[str]] = {}
    for run in runs:
        names = scenes.setdefault(run.dataset, [])
        if run.scene not in names:
            names.append(run.scene)
    return {"reference": reference, "variants": list(variants), "scenes": scenes}


def runs_dir(sweep_dir: Path) -> Path:
    return Path(sweep_dir) / RUNS


def run_dir(sweep_dir: Path, run_id: str) -> Path:
    return Path(sweep_dir) / RUNS / run_id


def manifest_path(sweep_dir: Path) -> Path:
    return Path(sweep_dir) / MANIFEST


def not_a_sweep(sweep_dir: Path) -> str:
    """What to say of a folder that holds no sweep (no manifest)."""
    return (f"{sweep_dir}: not a sweep output directory (no {MANIFEST}); expected the folder `bench sweep` "
            "writes (<output_root>/<sweep name>), or its sweep YAML")


def require_sweep(sweep_dir: Path) -> Manifest:
    """The manifest of a sweep output directory; BenchError (:func:`not_a_sweep`) when it has none, so
    nothing is written into a folder that is no sweep."""
    manifest = read_manifest(sweep_dir)
    if manifest is None:
        raise BenchError(not_a_sweep(sweep_dir))
    return manifest


def read_manifest(sweep_dir: Path) -> Manifest | None:
    """The sweep's manifest, or None when there is none; BenchError naming it when unreadable."""
    path = manifest_path(sweep_dir)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise BenchError(f"{path}: not a readable manifest ({err})") from None
