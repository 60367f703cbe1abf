"""Collect a sweep's results.json files into one tidy DataFrame and average it.

Tidy = one row per (run, evaluation mode, metric); a mode other than ``last`` is labelled
``variant@mode`` (``variant_label``). ``collect_per_image`` gives one per (run, view, metric) for the
paired statistics (bench.report.stats): test views, and for false_blur training views
``train/<name>``. Seeds are averaged per scene (mean, std, n); scenes are averaged per dataset only
when every scene the sweep planned (its manifest; without one, every scene of the data registry)
is present.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import pandas as pd

from bench import rundir, sweepdir
from bench.atomic import write_bytes, write_text
from bench.errors import BenchError
from bench.metrics.regions import TRAIN_VIEW_METRICS
from bench.sweepdir import read_manifest, runs_dir

ID_COLUMNS = ["sweep", "variant", "dataset", "scene", "blur_type", "seed", "metric", "value", "run_id"]
PROVENANCE_COLUMNS = ["git_commit", "git_dirty", "bench_version", "torch", "gsplat", "device", "hostname",
                      "slurm_job_id", "wall_time_s", "peak_memory_bytes"]
EXTRA_COLUMNS = ["protocol", "lpips_input", "eval_mode", "missing_reason"]
SPEED_COLUMNS = ["fps", "fps_device"]  # results.json's speed block (bench.method.speed); NaN/None without one
COLUMNS = ID_COLUMNS + PROVENANCE_COLUMNS + EXTRA_COLUMNS + SPEED_COLUMNS
PER_IMAGE_COLUMNS = ["variant", "dataset", "scene", "blur_type", "seed", "view", "metric", "value", "run_id"]


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


def speed_device(speed: dict) -> str:
    """Where a speed block was measured, as the tables name it: "CPU: <model>, compiled CPU kernels
    (avx512), 2 threads" or "GPU: <name>, gsplat" (threads matter on a CPU only)."""
    backend = str(speed.get("backend") or "unknown renderer")
    kind = "GPU" if backend == "gsplat" or "CUDA" in backend else "CPU"
    n = speed.get("threads")
    threads = f", {n} thread{'' if n == 1 else 's'}" if kind == "CPU" and n else ""
    return f"{kind}: {speed.get('device') or 'unknown'}, {backend}{threads}"


def _speed_columns(doc: dict, mode: str) -> dict:
    """fps and its device label for the rows of evaluation mode ``mode``: those of the state the speed
    block rendered (``last`` or ``best_test``, refined poses or not); NaN and None for other modes and
    for runs without a block (measured before it existed, or a timing that failed: ``bench fps``)."""
    speed = doc.get("speed") or {}
    fps = speed.get("fps")
    measured = isinstance(fps, (int, float)) and math.isfinite(fps)
    if not measured or speed.get("state", "last") != mode.partition("+")[0]:
        return {"fps": math.nan, "fps_device": None}
    return {"fps": float(fps), "fps_device": speed_device(speed)}


def run_speeds(df: pd.DataFrame) -> pd.DataFrame:
    """One row per run and variant label (an evaluation mode is a row of its own) of a collected
    frame: variant, dataset, scene, blur_type, seed, run_id, fps (NaN without a speed record),
    fps_device. A frame collected before the speed columns existed has no speed record."""
    keys = ["variant", "dataset", "scene", "blur_type", "seed", "run_id"]
    out = df.drop_duplicates(["run_id", "variant"]).reindex(columns=keys + SPEED_COLUMNS)
    out["fps"] = pd.to_numeric(out["fps"], errors="coerce")
    return out.reset_index(drop=True)


def eval_blocks(doc: dict) -> list[tuple[str, dict]]:
    """(evaluation mode, metrics block) of a parsed results.json: ``metrics`` (the mode its config
    asked for) first, then each block of ``evaluations`` (bench.metrics.modes)."""
    metrics = doc.get("metrics") or {}
    blocks = [((metrics.get("eval") or {}).get("mode", "last"), metrics)]
    return blocks + list((doc.get("evaluations") or {}).items())


def variant_label(method: str | None, mode: str) -> str | None:
    """The row label of a method evaluated in ``mode``: the method for ``last`` (what is reported by
    default), ``method@mode`` otherwise (e.g. ``full@best_test``), so each mode is a row of its own
    that the paired statistics compare with the others."""
    return method if mode == "last" or method is None else f"{method}@{mode}"


def rows_of(doc: dict, sweep: str) -> list[dict]:
    """Tidy rows of one parsed results.json: one per metric of each evaluation mode's aggregate block."""
    rows = []
    for mode, metrics in eval_blocks(doc):
        protocol = metrics.get("protocol") or {}
        missing = metrics.get("missing") or {}
        base = {"sweep": doc.get("sweep") or sweep, "variant": variant_label(doc.get("method"), mode),
                "dataset": doc.get("dataset"), "scene": doc.get("scene"), "blur_type": doc.get("blur_type"),
                "seed": doc.get("seed"), "run_id": doc.get("run_id"), **_provenance_columns(doc),
                "protocol": protocol.get("name"), "lpips_input": protocol.get("lpips_input"), "eval_mode": mode,
                **_speed_columns(doc, mode)}
        for metric, value in (metrics.get("aggregate") or {}).items():
            finite = value is not None and math.isfinite(value)
            rows.append({**base, "metric": metric, "value": float(value) if finite else math.nan,
                         "missing_reason": None if finite else missing.get(metric, "not a finite number")})
    return rows


TRAIN_VIEW_PREFIX = "train/"  # view names of metrics scored on training views (false_blur): never a test view's


def per_image_rows(doc: dict) -> list[dict]:
    """Rows (PER_IMAGE_COLUMNS) of one parsed results.json: one per test view and metric, NaN where
    the view has no finite value; then one per training view and metric of ``metrics.regions.
    per_train_view`` (false_blur), its view named ``train/<name>`` so it pairs with the same training
    view of another run."""
    rows = []
    for mode, metrics in eval_blocks(doc):
        base = {"variant": variant_label(doc.get("method"), mode), "dataset": doc.get("dataset"),
                "scene": doc.get("scene"), "blur_type": doc.get("blur_type"), "seed": doc.get("seed"),
                "run_id": doc.get("run_id")}
        views = dict(metrics.get("per_image") or {})
        for name, entry in ((metrics.get("regions") or {}).get("per_train_view") or {}).items():
            views[TRAIN_VIEW_PREFIX + name] = {m: v for m, v in entry.items() if m in TRAIN_VIEW_METRICS}
        for view, values in views.items():
            for metric, value in values.items():
                finite = value is not None and math.isfinite(value)
                rows.append({**base, "view": view, "metric": metric,
                             "value": float(value) if finite else math.nan})
    return rows


def sweep_docs(sweep_dir) -> list[dict]:
    """The parsed results.json files ``collect`` and ``collect_per_image`` read, read once (a caller
    needing both passes them to each)."""
    return list(_current_docs(Path(sweep_dir)))


def _current_docs(sweep_dir: Path):
    """Parsed results.json of every finished run of the sweep's latest expansion (its manifest; every
    run without one), ``run_id`` filled in.

    Runs of an older version of the sweep file stay on disk; collecting them would mix configurations.
    """
    manifest = read_manifest(sweep_dir)
    current = None if manifest is None else set(manifest.get("runs") or {})
    for path in sorted(runs_dir(sweep_dir).glob(f"*/{rundir.RESULTS}")):
        if current is None or path.parent.name in current:
            doc = rundir.read_results(path.parent)
            doc.setdefault("run_id", path.parent.name)
            yield doc


def collect(sweep_dir, docs: list[dict] | None = None) -> pd.DataFrame:
    """Tidy DataFrame of the ``<sweep_dir>/runs/*/results.json`` files (columns: COLUMNS), or of
    ``docs`` already read (``sweep_docs``).

    When the sweep has a manifest, only the runs it lists are collected.
    """
    sweep_dir = Path(sweep_dir)
    docs = _current_docs(sweep_dir) if docs is None else docs
    rows = [row for doc in docs for row in rows_of(doc, sweep_dir.name)]
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce").astype("Int64")
    df["value"] = df["value"].astype(float)
    for col in ("wall_time_s", "peak_memory_bytes", "fps"):
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df


def collect_per_image(sweep_dir, docs: list[dict] | None = None) -> pd.DataFrame:
    """Per-view metrics of the runs ``collect`` reads, or of ``docs`` (columns: PER_IMAGE_COLUMNS):
    one row per test view and metric, and per training view ``train/<name>`` for the training-view
    metrics (false_blur)."""
    docs = _current_docs(Path(sweep_dir)) if docs is None else docs
    df = pd.DataFrame([row for doc in docs for row in per_image_rows(doc)],
                      columns=PER_IMAGE_COLUMNS)
    df["seed"] = pd.to_numeric(df["seed"], errors="coerce").astype("Int64")
    df["value"] = df["value"].astype(float)
    return df


def unfinished_variants(sweep_dir, df: pd.DataFrame) -> list[str]:
    """The variants the sweep's manifest plans (its ``variants``; for a manifest written before it recorded
    them, those of its runs) that have no row in ``df`` (``collect``, possibly cut to some scenes): no
    finished run, so absent from every table and comparison. [] without a manifest."""
    manifest = read_manifest(Path(sweep_dir)) or {}
    planned = manifest.get("variants") or [run["variant"] for run in (manifest.get("runs") or {}).values()]
    finished = {str(v).partition("@")[0] for v in df.variant.dropna()}  # full@best_test is a run of full
    return [v for v in dict.fromkeys(planned) if v not in finished]


def missing_scenes(planned: list[str], present) -> list[str]:
    """The scenes of ``planned`` (a scene group's, in order) that are not in ``present``.

    The one rule of every group figure (a scene average, a paired difference): it is the group's only
    when this is empty; otherwise it is a subset's, blanked in the tables and labelled (``subset_label``)
    and never marked significant in the statistics."""
    present = set(present)
    return [s for s in planned if s not in present]


def subset_label(n_planned: int, missing: list[str]) -> str:
    """"subset: 3 of 4 scenes, missing defocus_1" for a group figure over a subset; "" for the whole."""
    if not missing:
        return ""
    return f"subset: {n_planned - len(missing)} of {n_planned} scenes, missing {', '.join(missing)}"


def planned_scenes(sweep_dir) -> dict[str, list] | None:
    """dataset -> the scenes the sweep's manifest plans, as (name, blur_type) pairs where the data
    registry knows the blur type (``dataset_summary``'s ``expected``); None without a manifest.

    The manifest's ``scenes`` (recorded when the sweep is planned); for a manifest written before
    it recorded them, the scenes of its runs."""
    manifest = read_manifest(Path(sweep_dir))
    if manifest is None or not manifest.get("runs"):
        return None
    planned = manifest.get("scenes") or _scenes_of_runs(manifest["runs"])
    out = {}
    for dataset, scenes in planned.items():
        known = dict(_registry_scenes(dataset) or [])
        out[dataset] = [(s, known[s]) if known.get(s) else s for s in scenes]
    return out


def _scenes_of_runs(runs: dict) -> dict[str, list[str]]:
    """dataset -> scenes of a manifest's runs, in the order they first appear."""
    planned: dict[str, list[str]] = {}
    for run in runs.values():
        scenes = planned.setdefault(run["dataset"], [])
        if run["scene"] not in scenes:
            scenes.append(run["scene"])
    return planned


def sweep_reference(sweep_dir) -> str:
    """The sweep's ``reference`` variant as its manifest records it; "full" (the sweep file's
    default) without a manifest or for one written before the manifest recorded it.

    Read from the sweep directory only: the sweep file's parser belongs to the harness, which the
    report must not import (submitting the sweep again records the reference)."""
    return str((read_manifest(Path(sweep_dir)) or {}).get("reference") or "full")


def save_collected(sweep_dir, df: pd.DataFrame) -> list[Path]:
    """Write results.parquet and results.csv beside the sweep (atomically)."""
    sweep_dir = Path(sweep_dir)
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    parquet, csv = sweep_dir / sweepdir.RESULTS_PARQUET, sweep_dir / sweepdir.RESULTS_CSV
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


def _registry_count(dataset: str, group: str) -> float:
    """How many scenes the data registry lists for a scene group; NaN when it cannot say."""
    pairs = _registry_scenes(dataset)
    if pairs is None:
        return math.nan
    blur = group.partition("/")[2]
    return float(sum(1 for _, bt in pairs if not blur or bt == blur))


def _average_std(rows: pd.DataFrame) -> float:
    """Seed std of a scene average: sqrt(sum of the scenes' seed variances) / scenes (NaN for one seed).

    The spread of the average of one run per scene; runs of different scenes are independent, so
    their variances add, whether or not they share a seed number.
    """
    return float(math.sqrt((rows["std"] ** 2).sum(min_count=len(rows))) / len(rows))


def dataset_summary(per_scene: pd.DataFrame, expected: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Scene average per variant, scene group and metric; NaN with ``missing`` naming absent scenes.

    per_scene: output of ``seed_summary``. expected: dataset -> scene names or (name, blur_type)
    pairs, the scenes the sweep planned (default: the data registry). Groups: see ``scene_groups``.
    An average exists only when every scene of the group has a value (``missing_scenes``). Columns: variant, dataset,
    group, metric, value, std (``_average_std``), n_seeds (fewest seeds of a scene), n_scenes (with a
    value), n_planned (scenes in the group), n_dataset (the registry's scenes of the group; NaN when
    unknown), missing, reason.
    """
    rows = []
    for dataset in per_scene.dataset.unique():
        sub = per_scene[per_scene.dataset == dataset]
        for group, scenes in scene_groups(dataset, per_scene, expected):
            if group != dataset and not set(scenes) & set(sub.scene):
                continue  # a blur-type group the sweep did not run at all
            for (variant, metric), g in sub.groupby(["variant", "metric"], sort=False):
                absent = missing_scenes(scenes, g.scene)
                no_value = g[g.scene.isin(scenes) & g["mean"].isna()]
                ok = not absent and no_value.empty
                reason = next((r for r in no_value.get("reason", []) if r), "no value") if len(no_value) else ""
                inside = g[g.scene.isin(scenes)]
                rows.append({"variant": variant, "dataset": dataset, "group": group, "metric": metric,
                             "value": float(inside["mean"].mean()) if ok else math.nan,
                             "std": _average_std(inside) if ok else math.nan,
                             "n_seeds": int(inside["n_seeds"].min()) if len(inside) else 0,
                             "n_scenes": int(inside["mean"].notna().sum()), "n_planned": len(scenes),
                             "n_dataset": _registry_count(dataset, group),
                             "missing": ", ".join(absent), "reason": reason})
    return pd.DataFrame(rows, columns=["variant", "dataset", "group", "metric", "value", "std", "n_seeds",
                                       "n_scenes", "n_planned", "n_dataset", "missing", "reason"])
