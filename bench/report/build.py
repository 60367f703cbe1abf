"""The sweep report pipeline: collect -> statistics -> tables -> figures -> report.html, degrading gracefully."""

from __future__ import annotations

import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench import sweepdir
from bench.errors import BenchError
from bench.atomic import write_text
from bench.report.tables import (ablation_table, blur_table, diagnostics_table, load_reported, main_table,
                                 per_scene_tables, write_tables)
from bench.report.collect import (COLUMNS, collect, collect_per_image, dataset_summary, planned_scenes,
                                  save_collected, seed_summary, sweep_docs, sweep_reference,
                                  unfinished_variants)
from bench.report.labels import ablation_label
from bench.report.stats import DEFAULT_TEST, STATS_COLUMNS, compare, interval_note


@dataclass
class Built:
    """What one pipeline run produced: data frames, tables, written paths and notes.

    expected: the scenes the sweep planned (``collect.planned_scenes``); scenes: the subset asked
    for, or None for all; unfinished: the planned variants without a finished run (on those scenes);
    stats: the paired statistics against ``reference`` (``bench.report.stats.compare``), None when
    there are none.
    """

    df: pd.DataFrame
    docs: list[dict] = field(default_factory=list)  # the results.json files read, once
    per_scene: pd.DataFrame | None = None
    summary: pd.DataFrame | None = None
    expected: dict | None = None
    scenes: list[str] | None = None
    unfinished: list[str] = field(default_factory=list)
    reference: str = "full"
    stats: pd.DataFrame | None = None
    tables: list = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    videos: list[Path] = field(default_factory=list)
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


def summarise(sweep_dir: Path, save: bool = True, reference: str | None = None, stats: bool = True,
              test: str = DEFAULT_TEST, scenes: list[str] | None = None) -> Built:
    """Collect the sweep (and save results.parquet / results.csv), average seeds and the scenes it
    planned, and (``stats``) compare every variant with ``reference`` (default: the sweep file's) by
    ``test`` (bench.report.stats.TESTS). ``scenes``: only these scenes (the rest of the sweep is
    left out of the averages and the statistics, as if it had not been planned); never saved."""
    docs = sweep_docs(sweep_dir)
    df = collect(sweep_dir, docs)
    if scenes is not None:
        unknown = sorted(set(scenes) - set(df.scene))
        if unknown:
            raise BenchError(f"--scenes {','.join(unknown)}: no finished runs in {sweep_dir}; its scenes: "
                             f"{', '.join(sorted(set(df.scene)))}")
        df, save = df[df.scene.isin(scenes)], False
    built = Built(df, docs)
    if save:
        built.paths += save_collected(sweep_dir, df)
    built.unfinished = unfinished_variants(sweep_dir, df)
    if df.empty:
        built.notes.append(f"{sweep_dir}: no finished runs (no runs/*/results.json)")
    if built.unfinished:
        where = " on the scenes asked for" if scenes is not None else ""
        built.notes.append(f"planned variants with no finished run{where}: {', '.join(built.unfinished)} "
                           "(absent from the tables and figures)")
    if df.empty:
        return built
    built.expected = planned_scenes(sweep_dir)
    if scenes is not None and built.expected is not None:
        built.expected = {d: [s for s in planned if (s[0] if isinstance(s, tuple) else s) in scenes]
                          for d, planned in built.expected.items()}
    built.scenes = scenes
    built.per_scene = seed_summary(df)
    built.summary = dataset_summary(built.per_scene, built.expected)
    for row in built.summary[(built.summary.metric == "psnr") & (built.summary.missing != "")].itertuples():
        built.notes.append(f"{row.group} average of {row.variant} left blank: missing scenes {row.missing}")
    if not stats:
        return built
    built.reference = reference or sweep_reference(sweep_dir)
    if built.reference in set(df.variant):
        built.stats = _stage(built, "statistics", _paired_stats, sweep_dir, built, test)
    else:
        built.notes.append(f"no runs of the reference variant {built.reference!r}: no paired statistics "
                           "(set `reference:` in the sweep file, or --ref)")
    return built


def _paired_stats(sweep_dir: Path, built: Built, test: str = DEFAULT_TEST) -> pd.DataFrame:
    per_image = collect_per_image(sweep_dir, built.docs)
    if built.scenes is not None:
        per_image = per_image[per_image.scene.isin(built.scenes)]
    return compare(per_image, built.reference, built.expected, test=test, unfinished=built.unfinished)


def make_tables(built: Built, reported: bool = True) -> list:
    """Ablation (first: the question a sweep of variants asks), diagnostics (only when the sweep has
    region metrics: synthetic scenes), main and per-scene tables (reported rows from results/published
    when asked)."""
    if built.summary is None:
        return []
    pub = load_reported() if reported else None
    diagnostics = _stage(built, "diagnostics table", diagnostics_table, built.stats)
    return [ablation_table(built.summary, pub, stats=built.stats), *([diagnostics] if diagnostics else []),
            main_table(built.df, built.summary, pub),
            *per_scene_tables(built.df, built.per_scene, built.summary, built.expected)]


def write_stats(out_dir: Path, stats: pd.DataFrame) -> list[Path]:
    """``tables/ablation_stats.csv``: one row per variant, group and metric (stats.STATS_COLUMNS)."""
    path = Path(out_dir) / "ablation_stats.csv"
    write_text(path, stats[STATS_COLUMNS].to_csv(index=False))
    return [path]


def build_tables(sweep_dir: Path, built: Built, reported: bool = True, rank_reported: bool = False) -> None:
    built.tables = _stage(built, "tables", make_tables, built, reported) or []
    paths = _stage(built, "write tables", write_tables, Path(sweep_dir) / sweepdir.TABLES, built.tables,
                   rank_reported)
    built.paths += paths or []
    if built.stats is not None:
        built.paths += _stage(built, "write statistics", write_stats, Path(sweep_dir) / sweepdir.TABLES, built.stats) or []


def build_figures(sweep_dir: Path, built: Built, frames: list[int] | None = None) -> None:
    """Every figure; a failing or empty figure family leaves a note."""
    from bench.report.figures import plot_ablation_deltas, plot_curves, plot_scene_bars
    from bench.report import scene_figures

    if built.summary is None:
        return
    out = Path(sweep_dir) / sweepdir.FIGURES
    stages = [("bar figures", plot_scene_bars, (built.df, built.per_scene, out)),
              ("training curves", plot_curves, (sweep_dir, built.df, out)),
              ("qualitative figures", scene_figures.plot_qualitative, (sweep_dir, built.df, out, frames))]
    if built.stats is not None:
        stages.insert(1, ("ablation figures", plot_ablation_deltas, (built.stats, built.summary, out)))
    for name, fn, args in stages:
        result = _stage(built, name, fn, *args)
        if result:
            built.figures += result.paths
            built.notes += result.notes
    blur = _stage(built, "blur figures", scene_figures.plot_blur_accuracy, sweep_dir, built.df, out)
    if blur:
        built.figures += blur.paths
        built.notes += blur.notes
        if not blur.blur_stats.empty:
            table = _stage(built, "blur accuracy table", blur_table, blur.blur_stats)
            if table is not None:
                built.tables.append(table)
                built.paths += _stage(built, "write blur table", write_tables, Path(sweep_dir) / sweepdir.TABLES,
                                      [table]) or []
    built.paths += built.figures


def build_videos(sweep_dir: Path, built: Built) -> None:
    """The comparison videos (bench.report.videos), one per scene; a failure or a skipped scene leaves a note."""
    from bench.report.videos import comparison_videos

    if built.summary is None:
        return
    made = _stage(built, "comparison videos", comparison_videos, sweep_dir, built.df,
                  Path(sweep_dir) / sweepdir.VIDEOS)
    if made:
        built.videos += made.paths
        built.notes += made.notes
        built.paths += made.paths


def paper_check(sweep_dir: Path, built: Built) -> pd.DataFrame | None:
    """The reproduction check of the collected runs against results/published (bench.report.paper_check);
    None without runs."""
    from bench.report.paper_check import check_sweep

    return None if built.df.empty else check_sweep(sweep_dir, df=built.df)


def build_all(sweep_dir, frames: list[int] | None = None, reported: bool = True,
              rank_reported: bool = False, reference: str | None = None, test: str = DEFAULT_TEST) -> list[Path]:
    """collect + statistics + tables + figures + comparison videos + reproduction check (when
    ``reported``) + report.html; returns every written path (report last). BenchError, with nothing written, when ``sweep_dir`` is no
    sweep output directory (``sweepdir.require_sweep``); any later failure is a note in the report."""
    from bench.report.html import write_report

    sweep_dir = Path(sweep_dir)
    sweepdir.require_sweep(sweep_dir)
    holder = Built(pd.DataFrame(columns=COLUMNS))
    built = _stage(holder, "collect", summarise, sweep_dir, True, reference, test=test) or holder
    build_tables(sweep_dir, built, reported, rank_reported)
    build_figures(sweep_dir, built, frames)
    build_videos(sweep_dir, built)
    check = _stage(built, "paper check", paper_check, sweep_dir, built) if reported else None
    reading = "" if built.stats is None or built.stats.empty else \
        interval_note(int(built.stats.n_seeds.min()), ablation_label(built.reference), test)
    report = _stage(built, "report", write_report, sweep_dir / sweepdir.REPORT, sweep_dir, built.df, built.tables,
                    built.figures, built.notes, rank_reported, reading, check, built.videos)
    return built.paths + ([report] if report else [])
