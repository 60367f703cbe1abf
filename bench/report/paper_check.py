"""Reproduction check: each finished scene and dataset average of a sweep against the published row of
the same method, dataset, protocol, evaluation mode and metric (``bench check-paper``, the report).

Published rows come from ``results/published/*.csv`` (columns: PUBLISHED_COLUMNS; the README there
explains them). A published row averages the scenes its ``scenes`` column names; a row naming one
scene is that scene's value. A measured value is the mean over seeds of a scene (every seed the
sweep planned must have a value), and a dataset average the mean over the published row's scenes of
those means (every one of them present). A pair is

- "reproduced" when |measured - published| <= the metric's tolerance,
- "not reproduced" otherwise (the signed difference measured - published, and the tolerance),
- "not comparable" with the reason(s): no published row for the dataset or method, no published
  per-scene value, no published value of a metric, another protocol, another evaluation mode, a
  metric missing from the measured results, scenes or seeds missing for an average.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from bench.errors import BenchError
from bench.metrics.registry import METRICS
from bench.repo import REPO_ROOT

PUBLISHED_COLUMNS = ["table", "row", "variant", "dataset", "metric", "value", "source", "protocol", "eval_mode",
                     "scenes"]
REPORTED_DIR = REPO_ROOT / "results" / "published"  # the published CSVs
SCENE_SEPARATOR = ";"
METRIC_ALTERNATIVES = "|"  # a published metric whose convention is one of several, not established which
# The evaluation modes results record: last (default) or best_test, "+refine<N>" for N test-pose steps.
EVAL_MODE = re.compile(r"(last|best_test)(\+refine[1-9][0-9]*)?")
DEFAULT_EVAL_MODE = "last"  # results collected before the eval_mode column existed
DEFAULT_TOLERANCES = {"psnr": 0.3, "ssim": 0.02, "lpips": 0.02}  # per metric family (tolerance_family)
AVERAGE = "average"  # the ``scene`` of a dataset-average row
REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE = "reproduced", "not reproduced", "not comparable"
CHECK_COLUMNS = ["variant", "dataset", "scene", "n_scenes", "protocol", "eval_mode", "metric", "n_seeds",
                 "measured", "published", "difference", "tolerance", "verdict", "reason", "published_row"]


# ---------------------------------------------------------------- inputs

def published_paths() -> list[Path]:
    """The published CSVs the tables read (results/published/*.csv)."""
    return sorted(REPORTED_DIR.glob("*.csv"))


def load_published(paths=None) -> pd.DataFrame:
    """Published rows of ``paths`` (default: results/published/*.csv), columns PUBLISHED_COLUMNS.

    ``scenes`` becomes a tuple of scene names (empty: not stated); empty protocol / eval_mode stay
    "" (not established). BenchError naming the file, row and column for a file that cannot be read,
    a missing column, a non-numeric value or an evaluation mode that is none of EVAL_MODE.
    """
    paths = published_paths() if paths is None else [Path(p) for p in paths]
    frames = [_read_published(p) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PUBLISHED_COLUMNS)


def _read_published(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise BenchError(f"{path}: not a readable published CSV ({err})") from None
    absent = [c for c in PUBLISHED_COLUMNS if c not in df.columns]
    if absent:
        raise BenchError(f"{path}: missing column(s) {', '.join(absent)}; expected {', '.join(PUBLISHED_COLUMNS)}")
    df = df[PUBLISHED_COLUMNS].apply(lambda col: col.str.strip())
    for i, (value, mode) in enumerate(zip(df.value, df.eval_mode)):
        line = i + 2  # the header is line 1
        if _number(value) is None:
            raise BenchError(f"{path}: line {line}: value {value!r}: expected a number")
        if mode and not EVAL_MODE.fullmatch(mode):
            raise BenchError(f"{path}: line {line}: eval_mode {mode!r}: expected last or best_test, "
                             "optionally +refine<steps> (or empty: not established)")
    df["value"] = df.value.astype(float)
    df["scenes"] = [tuple(s for s in (x.strip() for x in text.split(SCENE_SEPARATOR)) if s) for text in df.scenes]
    return split_alternatives(df)


def split_alternatives(df: pd.DataFrame) -> pd.DataFrame:
    """One row per metric of a row whose ``metric`` names alternatives (``ssim|ssim_3dgs``: one of
    them, which is not established); ``alternatives`` holds them all ("" for a settled metric)."""
    names = df.metric.str.split(METRIC_ALTERNATIVES)
    out = df.assign(metric=names, alternatives=[", ".join(n) if len(n) > 1 else "" for n in names])
    return out.explode("metric", ignore_index=True)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def tolerance_family(metric: str) -> str | None:
    """psnr, ssim or lpips: the family whose tolerance a metric takes (its name's prefix); None when none."""
    return next((f for f in DEFAULT_TOLERANCES if metric.startswith(f)), None)


def parse_tolerances(psnr=None, ssim=None, lpips=None) -> dict[str, float]:
    """Tolerances per family, DEFAULT_TOLERANCES where not given; BenchError naming the option for a
    value that is not a finite number >= 0."""
    tol = dict(DEFAULT_TOLERANCES)
    for family, given in (("psnr", psnr), ("ssim", ssim), ("lpips", lpips)):
        if given is None:
            continue
        value = _number(str(given))
        if value is None or value < 0:
            raise BenchError(f"--tol-{family} {given}: expected a finite number >= 0")
        tol[family] = value
    return tol


def parse_metrics(text: str | None) -> list[str] | None:
    """Comma-separated metric names -> list (None: every published metric); BenchError for a name that
    is not a metric or has no tolerance family."""
    if text is None:
        return None
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise BenchError(f"--metrics {text!r}: expected comma-separated metric names, e.g. psnr,ssim_gauss")
    for m in names:
        if m not in METRICS:
            raise BenchError(f"--metrics {m}: unknown metric; known metrics: {', '.join(METRICS)}")
        if tolerance_family(m) is None:
            raise BenchError(f"--metrics {m}: no tolerance for it; expected a PSNR, SSIM or LPIPS metric")
    return names


def planned_seeds(sweep_dir) -> dict[tuple[str, str], set]:
    """(variant, dataset) -> the seeds the sweep's manifest plans; {} without a manifest."""
    from bench.sweepdir import read_manifest

    seeds: dict[tuple[str, str], set] = {}
    for run in ((read_manifest(Path(sweep_dir)) or {}).get("runs") or {}).values():
        if {"variant", "dataset", "seed"} <= set(run):
            seeds.setdefault((run["variant"], run["dataset"]), set()).add(int(run["seed"]))
    return seeds


# ---------------------------------------------------------------- the check

def check(df: pd.DataFrame, published: pd.DataFrame, tolerances: dict[str, float] | None = None,
          metrics: list[str] | None = None, seeds: dict[tuple[str, str], set] | None = None) -> pd.DataFrame:
    """Verdicts of a collected sweep against published rows; one row per (variant, dataset, protocol,
    eval_mode, scene or AVERAGE, metric), columns CHECK_COLUMNS.

    df: ``bench.report.collect.collect`` (variant, dataset, scene, seed, metric, value, protocol,
    missing_reason; ``eval_mode`` when recorded, else every run counts as "last").
    published: ``load_published``. tolerances: per family (DEFAULT_TOLERANCES). metrics: the metrics
    to check (default: each method's published ones). seeds: (variant, dataset) -> planned seeds
    (``planned_seeds``; default: the seeds the group has). ``metric`` is "" on a row whose reason
    holds for every metric (no published row at all); measured/published/difference are NaN where absent.
    """
    tolerances = {**DEFAULT_TOLERANCES, **(tolerances or {})}
    measured = _measured(df)
    pub = published[published.variant != ""]  # rows of other methods map to no variant of ours
    pub = pub.drop_duplicates(["variant", "dataset", "metric", "protocol", "eval_mode", "scenes", "value"])
    rows = []
    keys = ["variant", "dataset", "protocol", "eval_mode"]
    for (variant, dataset, protocol, mode), group in measured.groupby(keys, sort=False):
        ctx = _Context(variant, dataset, protocol, mode, group, tolerances,
                       _group_seeds(group, (seeds or {}).get((variant, dataset))))
        rows += _group_rows(ctx, pub, metrics)
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def _measured(df: pd.DataFrame) -> pd.DataFrame:
    """The collected rows with the method as ``variant`` (collect labels another evaluation mode
    ``variant@mode``), eval_mode (the label's mode, else "last", where not recorded) and protocol
    ("" where not recorded)."""
    out = df.copy()
    label = out.variant.astype(str).str.partition("@")
    out["variant"] = label[0]
    suffix = label[2].where(label[2] != "", DEFAULT_EVAL_MODE)
    if "eval_mode" not in out.columns:
        out["eval_mode"] = suffix
    out["eval_mode"] = out.eval_mode.where(out.eval_mode.notna() & (out.eval_mode != ""), suffix).astype(str)
    out["protocol"] = out.protocol.fillna("").astype(str)
    if "missing_reason" not in out.columns:
        out["missing_reason"] = None
    return out


def _group_seeds(group: pd.DataFrame, planned: set | None) -> list[int]:
    """The seeds every scene must have: the planned ones, and any other the group ran."""
    return sorted(set(planned or ()) | {int(s) for s in group.seed.dropna()})


class _Context:
    """One measured group: a variant on a dataset under one protocol and evaluation mode."""

    def __init__(self, variant, dataset, protocol, mode, group, tolerances, seeds):
        self.variant, self.dataset, self.protocol, self.mode = variant, dataset, protocol, mode
        self.group, self.tolerances, self.seeds = group, tolerances, seeds
        self.scenes = list(dict.fromkeys(group.scene))

    def row(self, scene, metric, verdict, reason="", n_scenes=1, measured=np.nan, published=np.nan,
            diff=np.nan, tolerance=np.nan, published_row=""):
        return {"variant": self.variant, "dataset": self.dataset, "scene": scene, "n_scenes": n_scenes,
                "protocol": self.protocol, "eval_mode": self.mode, "metric": metric, "n_seeds": len(self.seeds),
                "measured": measured, "published": published, "difference": diff, "tolerance": tolerance,
                "verdict": verdict, "reason": reason, "published_row": published_row}


def _group_rows(ctx: _Context, pub: pd.DataFrame, metrics: list[str] | None) -> list[dict]:
    """Per scene, then the dataset average, of one measured group."""
    mine = pub[(pub.variant == ctx.variant) & (pub.dataset == ctx.dataset)]
    if mine.empty:
        reason = _no_row_reason(pub, ctx.variant, ctx.dataset)
        return [ctx.row(s, "", NOT_COMPARABLE, reason) for s in ctx.scenes] + \
            [ctx.row(AVERAGE, "", NOT_COMPARABLE, reason, n_scenes=len(ctx.scenes))]
    wanted = metrics or list(dict.fromkeys(mine.metric))
    rows = [_scene_row(ctx, mine, scene, m) for scene in ctx.scenes for m in wanted]
    return rows + [r for m in wanted for r in _average_rows(ctx, mine, m)]


def _no_row_reason(pub: pd.DataFrame, variant: str, dataset: str) -> str:
    """Why a variant on a dataset has no published row: the dataset has none, or not for this method."""
    if not (pub.dataset == dataset).any():
        return f"no published row for dataset {dataset}"
    if not (pub.variant == variant).any():
        return f"no published row for method {variant}"
    return f"no published row for method {variant} on dataset {dataset}"


def _scene_row(ctx: _Context, mine: pd.DataFrame, scene: str, metric: str) -> dict:
    """A scene against the published row of that one scene."""
    of_metric = mine[mine.metric == metric]
    if of_metric.empty:
        return ctx.row(scene, metric, NOT_COMPARABLE, _unpublished_metric(ctx, mine, metric))
    single = of_metric[of_metric.scenes.map(lambda s: s == (scene,))]
    if single.empty:
        reason = f"no published per-scene value (published: {_coverage(of_metric)})"
        return ctx.row(scene, metric, NOT_COMPARABLE, reason)
    return _compare(ctx, _best_match(ctx, single), scene, metric, [scene])


def _coverage(of_metric: pd.DataFrame) -> str:
    """What is published of a metric: "the average over N scenes", or the scenes with a value of their own."""
    averages = [s for s in of_metric.scenes if len(s) != 1]
    if averages:
        covered = averages[0]
        return f"the average over {len(covered)} scenes" if covered else "an average over unnamed scenes"
    return "per-scene values of " + ", ".join(dict.fromkeys(s[0] for s in of_metric.scenes if len(s) == 1))


def _average_rows(ctx: _Context, mine: pd.DataFrame, metric: str) -> list[dict]:
    """The dataset average against each published average (a row naming several scenes, or none)."""
    of_metric = mine[mine.metric == metric]
    if of_metric.empty:
        return [ctx.row(AVERAGE, metric, NOT_COMPARABLE, _unpublished_metric(ctx, mine, metric),
                        n_scenes=len(ctx.scenes))]
    averages = of_metric[of_metric.scenes.map(len) != 1]
    if averages.empty:
        return [ctx.row(AVERAGE, metric, NOT_COMPARABLE, "no published dataset average (published: per scene)",
                        n_scenes=len(ctx.scenes))]
    rows = []
    for _, pub_row in averages.iterrows():
        if not pub_row.scenes:
            rows.append(ctx.row(AVERAGE, metric, NOT_COMPARABLE, "the published row does not name the scenes "
                                "it averages (column scenes)", n_scenes=0, published=pub_row.value,
                                published_row=_label(pub_row)))
        else:
            rows.append(_compare(ctx, pub_row, AVERAGE, metric, list(pub_row.scenes)))
    return rows


def _unpublished_metric(ctx: _Context, mine: pd.DataFrame, metric: str) -> str:
    return (f"no published value of {metric} for {ctx.variant} on {ctx.dataset} "
            f"(published: {', '.join(dict.fromkeys(mine.metric))})")


def _best_match(ctx: _Context, candidates: pd.DataFrame) -> pd.Series:
    """The candidate of the same protocol and evaluation mode when there is one, else the first."""
    same = candidates[(candidates.protocol == ctx.protocol) & (candidates.eval_mode == ctx.mode)]
    return (same if len(same) else candidates).iloc[0]


def _label(pub_row: pd.Series) -> str:
    return f"{pub_row['row']} ({pub_row['table']})"


def _compare(ctx: _Context, pub_row: pd.Series, scene: str, metric: str, scenes: list[str]) -> dict:
    """One verdict: the mean over ``scenes`` of each scene's seed mean against ``pub_row``."""
    reasons = _setting_reasons(ctx, pub_row)
    value, missing = _measured_mean(ctx, metric, scenes)
    reasons += missing
    tol = ctx.tolerances.get(tolerance_family(metric) or "", np.nan)
    if not math.isfinite(tol):
        reasons.append(f"no tolerance for metric {metric}")
    common = dict(n_scenes=len(scenes), measured=value, published=float(pub_row.value), tolerance=tol,
                  published_row=_label(pub_row))
    if reasons:
        return ctx.row(scene, metric, NOT_COMPARABLE, "; ".join(reasons), **common)
    diff = value - float(pub_row.value)
    # published values are rounded: allow for float noise at the boundary, not for rounding itself
    verdict = REPRODUCED if abs(diff) <= tol + 1e-9 else NOT_REPRODUCED
    return ctx.row(scene, metric, verdict, diff=diff, **common)


def _setting_reasons(ctx: _Context, pub_row: pd.Series) -> list[str]:
    """Protocol, evaluation mode and metric-convention differences between the measured group and a
    published row."""
    reasons = []
    if pub_row.get("alternatives"):
        reasons.append(f"the published metric is one of {pub_row.alternatives}; which is not established")
    if not pub_row.protocol:
        reasons.append("the published protocol is not established")
    elif ctx.protocol != pub_row.protocol:
        reasons.append(f"another protocol (measured {ctx.protocol or 'not recorded'}, published {pub_row.protocol})")
    if not pub_row.eval_mode:
        reasons.append("the published evaluation mode is not established")
    elif ctx.mode != pub_row.eval_mode:
        reasons.append(f"another evaluation mode (measured {ctx.mode}, published {pub_row.eval_mode})")
    return reasons


def _measured_mean(ctx: _Context, metric: str, scenes: list[str]) -> tuple[float, list[str]]:
    """(mean over scenes of the mean over seeds, reasons it is not comparable); NaN unless every scene
    has a value on every seed."""
    rows = ctx.group[ctx.group.scene.isin(scenes)]
    absent = [s for s in scenes if s not in set(rows.scene)]
    if absent:
        return np.nan, [f"missing scenes for the average: {', '.join(absent)} "
                        f"({len(scenes) - len(absent)} of the {len(scenes)} published scenes ran)"]
    values = rows[rows.metric == metric]
    lacking = [s for s in scenes if not values[values.scene == s].value.notna().any()]
    if lacking:
        reason = next((r for r in values.get("missing_reason", []) if isinstance(r, str) and r), "")
        where = "" if len(lacking) == len(scenes) else f" of {', '.join(lacking)}"
        return np.nan, [f"missing metric {metric} in the measured results{where}" + (f" ({reason})" if reason else "")]
    gaps = _seed_gaps(values, scenes, ctx.seeds)
    if gaps:
        return np.nan, [f"missing seeds: {gaps}"]
    return float(values.groupby("scene").value.mean().loc[scenes].mean()), []


def _seed_gaps(values: pd.DataFrame, scenes: list[str], seeds: list[int]) -> str:
    """"scene seed 1, 2; ..." for every planned seed of a scene without a finite value; "" when none."""
    gaps = []
    for scene in scenes:
        have = {int(s) for s in values[(values.scene == scene) & values.value.notna()].seed.dropna()}
        lacking = [s for s in seeds if s not in have]
        if lacking:
            gaps.append(f"{scene} seed {', '.join(map(str, lacking))}")
    return "; ".join(gaps)


# ---------------------------------------------------------------- output

def merged(result: pd.DataFrame) -> pd.DataFrame:
    """The check with the metrics of a scene that share one not-comparable reason on one row (their
    names joined by ", "): what the text and the report show."""
    if result.empty:
        return result
    keys = ["variant", "dataset", "scene", "protocol", "eval_mode", "reason"]
    out, seen = [], {}
    for rec in result.to_dict("records"):
        if rec["verdict"] != NOT_COMPARABLE or not math.isnan(rec["published"]):
            out.append(rec)
            continue
        key = tuple(rec[k] for k in keys)
        if key in seen:
            first = out[seen[key]]
            first["metric"] = ", ".join(filter(None, [first["metric"], rec["metric"]]))
        else:
            seen[key] = len(out)
            out.append(dict(rec))
    return pd.DataFrame(out, columns=CHECK_COLUMNS)


def number(value: float, metric: str, extra: int = 0, signed: bool = False) -> str:
    """A value at its metric's decimals (+ ``extra``); "-" for NaN or a row of several metrics."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or metric not in METRICS:
        return "-"
    return f"{value:{'+' if signed else ''}.{METRICS[metric].decimals + extra}f}"


def scene_text(row) -> str:
    """A scene's name, or "average of N" for a dataset average."""
    return f"average of {row['n_scenes']}" if row["scene"] == AVERAGE else str(row["scene"])


def verdict_text(row) -> str:
    """The verdict with its evidence: the difference and tolerance, or the reason."""
    if row["verdict"] == NOT_COMPARABLE:
        return f"{NOT_COMPARABLE}: {row['reason']}"
    m = row["metric"]
    return (f"{row['verdict']} ({number(row['difference'], m, 1, signed=True)}, "
            f"tolerance {number(row['tolerance'], m)})")


TEXT_HEADER = ("variant", "dataset", "scene", "protocol", "eval_mode", "metric", "measured", "published", "verdict")


def text_rows(result: pd.DataFrame) -> list[tuple[str, ...]]:
    """The merged check as strings, one tuple per TEXT_HEADER."""
    return [(r["variant"], r["dataset"], scene_text(r), r["protocol"] or "-", r["eval_mode"], r["metric"] or "all",
             number(r["measured"], r["metric"], 1), number(r["published"], r["metric"]), verdict_text(r))
            for r in merged(result).to_dict("records")]


def tolerance_text(tolerances: dict[str, float]) -> str:
    return (f"PSNR {tolerances['psnr']:g} dB, SSIM {tolerances['ssim']:g}, LPIPS {tolerances['lpips']:g} "
            "(difference = measured - published)")


def _short(path) -> str:
    """A published file's path relative to the checkout (results/published/x.csv) when inside it."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def check_text(result: pd.DataFrame, tolerances: dict[str, float], sources: list) -> str:
    """The printed check: a header naming the sources and tolerances, an aligned table, a count line."""
    head = [f"reproduction check against {', '.join(_short(s) for s in sources) or 'no published file'}",
            f"tolerance: {tolerance_text(tolerances)}; measured = mean over seeds, then over scenes"]
    rows = [TEXT_HEADER] + text_rows(result)
    widths = [max(len(r[i]) for r in rows) for i in range(len(TEXT_HEADER) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]
    counts = result.verdict.value_counts() if len(result) else pd.Series(dtype=int)
    tally = ", ".join(f"{int(counts.get(v, 0))} {v}" for v in (REPRODUCED, NOT_REPRODUCED, NOT_COMPARABLE))
    return "\n".join(head + [""] + lines + ["", f"{tally} (scene and dataset rows, per metric)"])


def check_sweep(sweep_dir, published_files=None, tolerances: dict[str, float] | None = None,
                metrics: list[str] | None = None, df: pd.DataFrame | None = None) -> pd.DataFrame:
    """``check`` on a sweep directory: its collected results (or ``df``), planned seeds and published rows."""
    from bench.report.collect import collect

    df = collect(sweep_dir) if df is None else df
    return check(df, load_published(published_files), tolerances, metrics, planned_seeds(sweep_dir))
