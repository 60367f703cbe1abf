"""Collect a sweep's results.json files into one tidy DataFrame and average it.

Tidy = one row per (run, metric). Seeds are averaged per scene (mean, std, n); scenes are averaged
per dataset only when every scene of the dataset (from the data registry) is present.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pandas as pd

from bench import rundir
from bench.atomic import write_bytes, write_text
from bench.errors import BenchError

ID_COLUMNS = ["sweep", "variant", "dataset", "scene", "blur_type", "seed", "metric", "value", "run_id"]
PROVENANCE_COLUMNS = ["git_commit", "git_dirty", "bench_version", "torch", "gsplat", "device", "hostname",
                      "slurm_job_id", "wall_time_s", "peak_memory_bytes"]
EXTRA_COLUMNS = ["protocol", "lpips_input", "missing_reason"]
COLUMNS = ID_COLUMNS + PROVENANCE_COLUMNS + EXTRA_COLUMNS


def resolve_sweep_dir(arg: str | Path, output_root: str | None = None) -> Path:
    """The harness's sweep directory for a sweep YAML or directory; it must exist already."""
    from bench.harness.sweep import resolve_sweep_dir as harness_resolve

    resolved = harness_resolve(str(arg), output_root)
    if not resolved.is_dir():
        raise BenchError(f"{arg}: sweep output {resolved} does not exist yet (run `bench sweep` first)")
    return resolved


def _peak_memory(prov: dict, train: dict) -> float | None:
    peak = prov.get("peak_memory", prov.get("peak_memory_bytes", train.get("peak_memory_bytes")))
    if isinstance(peak, dict):  # {"cpu_rss": ..., "gpu_allocated": ...}: the GPU figure when there is one
        peak = peak.get("gpu_allocated") if peak.get("gpu_allocated") is not None else peak.get("cpu_rss")
    return peak


def _provenance_columns(doc: dict) -> dict:
    prov = doc.get("provenance") or {}
    train = doc.get("train") or {}
    packages = prov.get("packages") or {}
    slurm = prov.get("slurm") or {}
    return {
        "git_commit": prov.get("git_commit"), "git_dirty": prov.get("git_dirty"),
        "bench_version": packages.get("dydeblur-bench"), "torch": packages.get("torch"),
        "gsplat": packages.get("gsplat"), "device": prov.get("device", train.get("device")),
        "hostname": prov.get("hostname"), "slurm_job_id": slurm.get("job_id"),
        "wall_time_s": prov.get("wall_time_s", train.get("wall_time_s")),
        "peak_memory_bytes": _peak_memory(prov, train),
    }


def rows_of(doc: dict, sweep: str) -> list[dict]:
    """Tidy rows of one parsed results.json: one per metric of its aggregate block."""
    metrics = doc.get("metrics") or {}
    protocol = metrics.get("protocol") or {}
    missing = metrics.get("missing") or {}
    base = {"sweep": doc.get("sweep") or sweep, "variant": doc.get("method"), "dataset": doc.get("dataset"),
            "scene": doc.get("scene"), "blur_type": doc.get("blur_type"), "seed": doc.get("seed"),
            "run_id": doc.get("run_id"), **_provenance_columns(doc),
            "protocol": protocol.get("name"), "lpips_input": protocol.get("lpips_input")}
    rows = []
    for metric, value in (metrics.get("aggregate") or {}).items():
        finite = value is not None and math.isfinite(value)
        rows.append({**base, "metric": metric, "value": float(value) if finite else math.nan,
                     "missing_reason": None if finite else missing.get(metric, "not a finite number")})
    return rows


def _current_run_ids(sweep_dir: Path) -> set[str] | None:
    """Run ids of the sweep's latest expansion (its manifest), or None when there is no manifest.

    Runs of an older version of the sweep file stay on disk; collecting them would mix configurations.
    """
    manifest = sweep_dir / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        return set(json.loads(manifest.read_text()).get("runs") or {})
    except (OSError, json.JSONDecodeError) as err:
        raise BenchError(f"{manifest}: not a readable manifest ({err})") from None


def collect(sweep_dir) -> pd.DataFrame:
    """Tidy DataFrame of the ``<sweep_dir>/runs/*/results.json`` files (columns: COLUMNS).

    When the sweep has a manifest, only the runs it lists are collected.
    """
    sweep_dir = Path(sweep_dir)
    current = _current_run_ids(sweep_dir)
    rows: list[dict] = []
    for path in sorted((sweep_dir / "runs").glob(f"*/{rundir.RESULTS}")):
        if current is not None and path.parent.name not in current:
            continue
        doc = rundir.read_results(path.parent)
        doc.setdefault("run_id", path.parent.name)
        rows.extend(rows_of(doc, sweep_dir.name))
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce").astype("Int64")
    df["value"] = df["value"].astype(float)
    for col in ("wall_time_s", "peak_memory_bytes"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def save_collected(sweep_dir, df: pd.DataFrame) -> list[Path]:
    """Write results.parquet and results.csv beside the sweep (atomically)."""
    sweep_dir = Path(sweep_dir)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    parquet, csv = sweep_dir / "results.parquet", sweep_dir / "results.csv"
    write_bytes(parquet, buf.getvalue())
    write_text(csv, df.to_csv(index=False))
    return [parquet, csv]


def seed_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof 1; NaN for one seed) and seed count per variant, dataset, scene and metric.

    Seeds with a missing value are left out of the mean and counted in ``n_missing``; ``reason``
    is the first recorded reason of a missing value.
    """
    keys = ["variant", "dataset", "scene", "blur_type", "metric"]
    g = df.groupby(keys, dropna=False, sort=False)
    out = g["value"].agg(mean="mean", std="std", n_seeds="count",
                         n_missing=lambda v: int(v.isna().sum())).reset_index()
    reasons = g["missing_reason"].agg(lambda v: next((r for r in v if isinstance(r, str) and r), ""))
    out["reason"] = reasons.to_numpy()
    return out


def _registry_scenes(dataset: str) -> list[tuple[str, str | None]] | None:
    """(scene, blur_type) pairs of a dataset from the data registry; None when it cannot say."""
    try:
        from bench.data.registry import get_dataset

        return [(s.name, getattr(s, "blur_type", None)) for s in get_dataset(dataset).scenes]
    except (ImportError, BenchError):
        return None


def expected_scenes(dataset: str, seen: list[str]) -> list[str]:
    """The dataset's scene list from the data registry; the scenes seen when the registry cannot say."""
    pairs = _registry_scenes(dataset)
    return [name for name, _ in pairs] if pairs is not None else sorted(set(seen))


def scene_groups(dataset: str, per_scene: pd.DataFrame, expected: dict[str, list[str]] | None = None):
    """[(group, scenes)]: the whole dataset, then one group per blur type when its scenes mix types.

    Group names are ``dataset`` and ``dataset/blur_type`` (e.g. ``synthetic/motion``), so a sweep
    over the motion scenes of a mixed dataset still gets a complete motion average.
    """
    sub = per_scene[per_scene.dataset == dataset]
    seen_bt = dict(zip(sub.scene, sub.blur_type))
    if expected is not None and dataset in expected:
        # entries: scene names, or (name, blur_type) pairs for scenes that may have no runs
        pairs = [(x, seen_bt.get(x)) if isinstance(x, str) else tuple(x) for x in expected[dataset]]
    else:
        pairs = _registry_scenes(dataset) or [(name, seen_bt[name]) for name in sorted(seen_bt)]
    groups = [(dataset, [name for name, _ in pairs])]
    blur_types = list(dict.fromkeys(bt for _, bt in pairs if isinstance(bt, str)))
    if len(blur_types) > 1:
        groups += [(f"{dataset}/{bt}", [name for name, b in pairs if b == bt]) for bt in blur_types]
    return groups


def dataset_summary(per_scene: pd.DataFrame, expected: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Scene average per variant, scene group and metric; NaN with ``missing`` naming absent scenes.

    per_scene: output of ``seed_summary``. expected: dataset -> scene names or (name, blur_type)
    pairs (default: the data registry). Groups: see ``scene_groups``. An average exists only when every scene of the group has a value.
    """
    rows = []
    for dataset in per_scene.dataset.unique():
        sub = per_scene[per_scene.dataset == dataset]
        for group, scenes in scene_groups(dataset, per_scene, expected):
            if group != dataset and not set(scenes) & set(sub.scene):
                continue  # a blur-type group the sweep did not run at all
            for (variant, metric), g in sub.groupby(["variant", "metric"], sort=False):
                ran = set(g.scene)
                absent = [s for s in scenes if s not in ran]
                no_value = g[g.scene.isin(scenes) & g["mean"].isna()]
                ok = not absent and no_value.empty
                reason = next((r for r in no_value.get("reason", []) if r), "no value") if len(no_value) else ""
                rows.append({"variant": variant, "dataset": dataset, "group": group, "metric": metric,
                             "value": float(g.loc[g.scene.isin(scenes), "mean"].mean()) if ok else math.nan,
                             "n_scenes": int(g.loc[g.scene.isin(scenes), "mean"].notna().sum()),
                             "missing": ", ".join(absent), "reason": reason})
    return pd.DataFrame(rows, columns=["variant", "dataset", "group", "metric", "value", "n_scenes", "missing",
                                       "reason"])
