"""CLI verbs of the report concern: ``bench collect``, ``bench table``, ``bench compare``, ``bench plot``,
``bench report``, ``bench check-paper``."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.args import existing_sweep_dir, sweep_target
from bench.errors import BenchError

SWEEP_HELP = "sweep output directory, or a sweep YAML (resolved to its output directory)"
ROOT_HELP = "override the sweep file's output_root (SWEEP = YAML)"


def register(sub) -> None:
    """Add ``collect``, ``table``, ``compare``, ``plot``, ``report`` and ``check-paper`` to the ``bench``
    subparsers."""
    p = sub.add_parser("collect", help="gather a sweep's results into results.parquet / results.csv",
                       description="One tidy row per run and metric (plus provenance), saved beside the sweep.")
    _sweep_args(p)
    p.set_defaults(func=_collect)

    p = sub.add_parser("table", help="write LaTeX / Markdown / CSV tables of a sweep into SWEEP/tables",
                       description="Main comparison, ablation (paper shape) and per-scene tables; ranks on "
                                   "displayed values with ties sharing a rank.")
    _sweep_args(p)
    _reported_args(p)
    _ref_arg(p)
    _test_arg(p)
    p.set_defaults(func=_table)

    p = sub.add_parser("compare", help="paired differences of every variant against a reference, with "
                                       "95%% intervals and Holm-corrected p-values",
                       description="Per variant and scene group: the mean paired difference to the reference "
                                   "(by scene, seed and view: a test view, a training view for false_blur), a "
                                   "t-test over runs with its t interval "
                                   "(--test permutation: a sign-flip test with a bootstrap interval; over test "
                                   "views with one seed) (README: Statistics). A group average over fewer "
                                   "scenes than the sweep planned is labelled as a subset and never marked "
                                   "significant; planned variants without a finished run are listed.")
    _sweep_args(p)
    _ref_arg(p)
    _test_arg(p)
    p.add_argument("--metric", default="psnr",
                   help="metric to compare (default: psnr); synthetic scenes add the region metrics psnr_unseen, "
                        "psnr_emerging, psnr_sharp, psnr_blurred and false_blur")
    p.add_argument("--scenes", default=None,
                   help="comma-separated scenes: compare on these only (e.g. the scenes another sweep ran, "
                        "to put the two side by side)")
    p.set_defaults(func=_compare)

    p = sub.add_parser("plot", help="write the sweep's figures (PNG + PDF) into SWEEP/figures",
                       description="Per dataset: bars per scene, the paired change of every variant against the "
                                   "reference with its 95% interval, training curves and qualitative grids (the "
                                   "average stays blank where scenes are missing).")
    _sweep_args(p)
    _frames_arg(p)
    _ref_arg(p)
    _test_arg(p)
    p.set_defaults(func=_plot)

    p = sub.add_parser("report", help="collect, tables, figures and one self-contained SWEEP/report.html",
                       description="collect + table + plot + check-paper in one go, and SWEEP/report.html with "
                                   "every table, figure and note (a stage that fails leaves a note). SWEEP must be "
                                   "a sweep output directory (with manifest.json).")
    _sweep_args(p)
    _reported_args(p)
    _frames_arg(p)
    _ref_arg(p)
    _test_arg(p)
    p.set_defaults(func=_report)

    p = sub.add_parser("check-paper", help="compare each finished scene and dataset average with the published "
                                           "row of the same method, dataset, protocol and evaluation mode",
                       description="Per scene and dataset average: reproduced (within the tolerance), not "
                                   "reproduced (with the difference) or not comparable (and why), against "
                                   "results/published/*.csv. Exit 0 whatever the verdicts.")
    _sweep_args(p)
    p.add_argument("--metrics", default=None, metavar="M1,M2",
                   help="metrics to check (default: every metric published for the method)")
    # strings, checked by paper_check.parse_tolerances: a bad value is one line, not argparse's usage
    p.add_argument("--tol-psnr", default=None, metavar="DB", help="PSNR tolerance in dB (default 0.3)")
    p.add_argument("--tol-ssim", default=None, metavar="X", help="SSIM tolerance, any SSIM variant (default 0.02)")
    p.add_argument("--tol-lpips", default=None, metavar="X", help="LPIPS tolerance, any LPIPS variant (default 0.02)")
    p.add_argument("--published", nargs="+", default=None, metavar="CSV",
                   help="published CSVs to check against (default: results/published/*.csv)")
    p.set_defaults(func=_check_paper)


def _sweep_args(p) -> None:
    sweep_target(p, help=SWEEP_HELP, root_help=ROOT_HELP, metavar="SWEEP")


def _reported_args(p) -> None:
    p.add_argument("--no-reported", dest="reported", action="store_false",
                   help="leave out the published rows of results/published/*.csv")
    p.add_argument("--rank-reported", action="store_true", help="rank published rows together with measured ones")


def _ref_arg(p) -> None:
    p.add_argument("--ref", default=None, metavar="VARIANT",
                   help="reference variant of the paired statistics (default: the sweep file's `reference`, else full)")


def _test_arg(p) -> None:
    from bench.report.stats import DEFAULT_TEST, TESTS

    p.add_argument("--test", choices=TESTS, default=DEFAULT_TEST,
                   help="paired test and interval: t (t-test over runs, noise pooled over a dataset's scenes, "
                        "with its t interval) or permutation (exact sign-flip test over runs, bootstrap interval); "
                        f"default {DEFAULT_TEST} (README: Statistics)")


def _frames_arg(p) -> None:
    p.add_argument("--frames", type=_int_list, default=None, metavar="I,J",
                   help="test-view indices for the qualitative grids (default: the middle view)")


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 0,12") from None



def _summarise(args, save: bool, stats: bool = True):
    from bench.report.build import summarise

    sweep_dir = existing_sweep_dir(args.sweep, args.output_root)
    scenes = [s for s in args.scenes.split(",") if s] if getattr(args, "scenes", None) else None
    return sweep_dir, summarise(sweep_dir, save=save, reference=getattr(args, "ref", None), stats=stats,
                                scenes=scenes, **({"test": args.test} if hasattr(args, "test") else {}))


def _print_notes_and_paths(built, paths) -> None:
    for note in built.notes:
        print(f"note: {note}")
    for p in paths:
        print(f"wrote {p}")


def _collect(args: argparse.Namespace) -> int:
    from bench.report import tables

    sweep_dir, built = _summarise(args, save=True, stats=False)  # collect prints no comparison
    print(f"{built.df.run_id.nunique()} runs, {len(built.df)} rows")
    if built.summary is not None:
        print(tables.to_markdown(tables.main_table(built.df, built.summary)))
    _print_notes_and_paths(built, built.paths)
    return 0


def _table(args: argparse.Namespace) -> int:
    from bench.report.build import build_tables

    sweep_dir, built = _summarise(args, save=False)
    build_tables(sweep_dir, built, args.reported, args.rank_reported)
    _print_notes_and_paths(built, built.paths)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from bench.metrics.registry import METRICS
    from bench.report.stats import comparison_text

    if args.metric not in METRICS:
        raise BenchError(f"--metric {args.metric}: unknown; known metrics: {', '.join(METRICS)}")
    _, built = _summarise(args, save=False)
    if built.stats is None:
        raise BenchError(built.notes[-1])  # summarise's last note says why: no runs, or none of the reference
    print(comparison_text(built.stats, args.metric, METRICS[args.metric].decimals, built.scenes))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from bench.report.build import build_figures

    sweep_dir, built = _summarise(args, save=False)
    build_figures(sweep_dir, built, args.frames)
    _print_notes_and_paths(built, built.paths)
    return 0


def _report(args: argparse.Namespace) -> int:
    from bench.report import build_all

    sweep_dir = existing_sweep_dir(args.sweep, args.output_root)
    paths = build_all(sweep_dir, frames=args.frames, reported=args.reported,
                      rank_reported=args.rank_reported, reference=args.ref, test=args.test)
    for p in paths:
        print(f"wrote {p}")
    return 0


def _check_paper(args: argparse.Namespace) -> int:
    from bench.report import paper_check
    from bench.report.collect import collect

    # every input is checked before anything is read: a bad option is one line, exit 2
    tolerances = paper_check.parse_tolerances(args.tol_psnr, args.tol_ssim, args.tol_lpips)
    metrics = paper_check.parse_metrics(args.metrics)
    files = paper_check.published_paths() if args.published is None else [Path(p) for p in args.published]
    for path in files:
        if not path.is_file():
            raise BenchError(f"--published {path}: no such file; expected a published CSV (results/published/)")
    sweep_dir = existing_sweep_dir(args.sweep, args.output_root)
    published = paper_check.load_published(files)
    df = collect(sweep_dir)
    if df.empty:
        print(f"{sweep_dir}: no finished runs (no runs/*/results.json); nothing to check")
        return 0
    result = paper_check.check(df, published, tolerances, metrics, paper_check.planned_seeds(sweep_dir))
    print(paper_check.check_text(result, tolerances, files))
    return 0
