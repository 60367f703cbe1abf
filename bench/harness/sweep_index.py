"""Where each sweep file's output went, so that a sweep file finds its output from any folder.

A sweep file's ``output_root`` (default ``results``) is relative to the folder ``bench sweep`` runs
in, so the same file names another folder when ``bench status FILE`` runs elsewhere. Each
submission records the pair here; ``bench status``/``cancel``/``report``/``compare`` given the
file look here when no sweep lies where ``output_root`` points from the current folder.

The index is one per user and machine: ``$BENCH_STATE/sweeps.json`` (default
``$XDG_STATE_HOME/dydeblur-bench``, else ``~/.local/state/dydeblur-bench``)::

    {"schema": 1, "outputs": {"/abs/sweeps/demo.yaml": ["/abs/results/demo", ...]}}

newest output last; written atomically under a lock.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.atomic import write_json
from bench.locks import FileLock
from bench.rundir import read_json
from bench.sweepdir import manifest_path

SCHEMA = 1
STATE_ENV = "BENCH_STATE"


def index_path() -> Path:
    """The index file of this user on this machine."""
    state = os.environ.get(STATE_ENV)
    if state:
        return Path(state).expanduser() / "sweeps.json"
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "dydeblur-bench" / "sweeps.json"


def record(sweep_file: str | os.PathLike, sweep_dir: Path) -> None:
    """Remember that ``sweep_file`` put its output into ``sweep_dir`` (kept as the newest)."""
    path = index_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    key, value = str(Path(sweep_file).absolute()), str(Path(sweep_dir).absolute())
    with FileLock(path.with_name(path.name + ".lock")):
        index = _read(path)
        known = [d for d in index["outputs"].get(key, []) if d != value]
        if known + [value] != index["outputs"].get(key):
            index["outputs"][key] = known + [value]
            write_json(path, index)


def outputs_of(sweep_file: str | os.PathLike) -> list[Path]:
    """The recorded outputs of ``sweep_file`` that still hold a sweep (a manifest), newest first."""
    dirs = _read(index_path())["outputs"].get(str(Path(sweep_file).absolute()), [])
    return [Path(d) for d in reversed(dirs) if manifest_path(Path(d)).is_file()]


def all_outputs() -> list[Path]:
    """Every recorded output that still holds a sweep."""
    outputs = _read(index_path())["outputs"].values()
    return sorted({Path(d) for dirs in outputs for d in dirs if manifest_path(Path(d)).is_file()})


def _read(path: Path) -> dict:
    index = read_json(path)
    if not isinstance(index, dict) or not isinstance(index.get("outputs"), dict):
        return {"schema": SCHEMA, "outputs": {}}
    return index
