"""The sweep report pipeline: collect -> tables -> figures -> report.html, degrading gracefully."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.report import tables as T
from bench.report.collect import COLUMNS, collect, dataset_summary, save_collected, seed_summary


@dataclass
class Built:
    """What one pipeline run produced: data frames, tables, written paths and notes."""

    df: pd.DataFrame
    per_scene: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    tables: list = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _stage(built: Built, name: str, fn, *args, **kwargs):
    """Run one stage; on failure record a note (and the traceback on stderr) instead of raising."""
    print(f"report: {name}", file=sys.stderr, flush=True)
    try:
        return fn(*args, **kwargs)
    except Exception as err:  # a report stage must never take the sweep down
        built.notes.append(f"{name} failed: {type(err).__name__}: {err}")
        print(f"warning: report stage {name!r} failed:\n{traceback.format_exc()}", file=sys.stderr)
        return None


def summarise(sweep_dir: Path, save: bool = True) -> Built:
    """Collect the sweep (and save results.parquet / results.csv) and average seeds and scenes."""
    df = collect(sweep_dir)
    built = Built(df)
    if save:
        built.paths += save_collected(sweep_dir, df)
    if df.empty:
        built.notes.append(f"{sweep_dir}: no finished runs (no runs/*/results.json)")
        return built
    built.per_scene = seed_summary(df)
    built.summary = dataset_summary(built.per_scene)
    for row in built.summary[(built.summary.metric == "psnr") & (built.summary.missing != "")].itertuples():
        built.notes.append(f"{row.group} average of {row.variant} left blank: missing scenes {row.missing}")
    return built


def make_tables(built: Built, reported: bool = True) -> list:
    """Main, ablation and per-scene tables (reported rows from results/published when asked)."""
    if built.summary is None:
        return []
    pub = T.load_reported() if reported else None
    return [T.main_table(built.df, built.summary, pub), T.ablation_table(built.summary, pub),
            *T.per_scene_tables(built.df, built.per_scene, built.summary)]


def build_tables(sweep_dir: Path, built: Built, reported: bool = True, rank_reported: bool = False) -> None:
    built.tables = _stage(built, "tables", make_tables, built, reported) or []
    paths = _stage(built, "write tables", T.write_tables, Path(sweep_dir) / "tables", built.tables, rank_reported)
    built.paths += paths or []


def build_figures(sweep_dir: Path, built: Built, frames: list[int] | None = None) -> None:
    """Every figure; a failing or empty figure family leaves a note."""
    from bench.report import figures as F
    from bench.report import scene_figures as S

    if built.summary is None:
        return
    out = Path(sweep_dir) / "figures"
    stages = [("bar figures", F.plot_scene_bars, (built.df, built.per_scene, out)),
              ("ablation figures", F.plot_ablation_deltas, (built.per_scene, built.summary, out)),
              ("training curves", F.plot_curves, (sweep_dir, built.df, out)),
              ("qualitative figures", S.plot_qualitative, (sweep_dir, built.df, out, frames))]
    for name, fn, args in stages:
        result = _stage(built, name, fn, *args)
        if result:
            built.figures += result.paths
            built.notes += result.notes
    blur = _stage(built, "blur figures", S.plot_blur_accuracy, sweep_dir, built.df, out)
    if blur:
        built.figures += blur.paths
        built.notes += blur.notes
        if not blur.blur_stats.empty:
            table = _stage(built, "blur accuracy table", T.blur_table, blur.blur_stats)
            if table is not None:
                built.tables.append(table)
                built.paths += _stage(built, "write blur table", T.write_tables, Path(sweep_dir) / "tables",
                                      [table]) or []
    built.paths += built.figures


def build_all(sweep_dir, frames: list[int] | None = None, reported: bool = True,
              rank_reported: bool = False) -> list[Path]:
    """collect + tables + figures + report.html; returns every written path (report last)."""
    from bench.report.html import write_report

    sweep_dir = Path(sweep_dir)
    holder = Built(pd.DataFrame(columns=COLUMNS))
    built = _stage(holder, "collect", summarise, sweep_dir) or holder
    build_tables(sweep_dir, built, reported, rank_reported)
    build_figures(sweep_dir, built, frames)
    report = _stage(built, "report", write_report, sweep_dir / "report.html", sweep_dir, built.df, built.tables,
                    built.figures, built.notes, rank_reported)
    return built.paths + ([report] if report else [])
