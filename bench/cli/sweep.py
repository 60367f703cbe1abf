"""CLI verbs of the harness: ``bench sweep``, ``bench status``, ``bench cancel``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.args import sweep_target
from bench.harness.executors.registry import executor_names
from bench.errors import BenchError


def register(sub) -> None:
    """Add the harness verbs to the ``bench`` subparsers."""
    p = sub.add_parser(
        "sweep", help="plan, submit and follow a sweep of runs (variants x datasets x scenes x seeds)",
        description="Validate a sweep file, show the plan (runs finished / to run / to retry), submit "
                    "the unfinished runs, follow them with a live view, then collect results and "
                    "build tables and figures. Finished runs (results.json with the same config "
                    "hash) are skipped; failed runs are retried only with --retry-failed.")
    p.add_argument("file", help="sweep YAML, e.g. sweeps/demo.yaml")
    p.add_argument("--executor", choices=("auto", *executor_names()), default=None,
                   help="where runs execute (default: the file's executor.kind; auto = slurm when "
                        "sbatch is on PATH, else local)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan and the data check of the runs to submit, and exit")
    p.add_argument("--skip-data-check", action="store_true",
                   help="submit without checking that the runs' scenes are present (for data only "
                        "the compute nodes see); by default missing or broken scenes refuse the sweep")
    p.add_argument("--retry-failed", action="store_true", help="run failed runs again (resuming)")
    p.add_argument("--force", action="store_true",
                   help="re-run finished runs too (old run directories are moved to archive/)")
    p.add_argument("--only", action="append", metavar="KEY=VALUE[,VALUE]", default=[],
                   help="restrict to runs with variant/dataset/scene/seed = value (repeatable; "
                        "e.g. --only variant=full --only scene=motion_0)")
    p.add_argument("--no-wait", action="store_true", help="submit and return (bench status follows)")
    p.add_argument("--output-root", default=None, help="override the file's output_root")
    p.add_argument("--max-concurrent", type=int, default=None,
                   help="local executor: runs at once (default: the file's, else #GPUs or 1)")
    p.add_argument("--no-report", action="store_true", help="do not build tables/figures at the end")
    p.set_defaults(func=_sweep)

    p = sub.add_parser("status", help="show the state of every run of a sweep (reattaches)",
                       description="Read a sweep's manifest and run directories and show each run's "
                                   "state (pending, running, done, failed, interrupted), also after "
                                   "the submitting shell is gone.")
    sweep_target(p)
    p.add_argument("--watch", action="store_true",
                   help="follow until the sweep ends, then build the report")
    p.add_argument("--all", dest="show_all", action="store_true", help="list finished runs too")
    p.set_defaults(func=_status)

    p = sub.add_parser("cancel", help="cancel a sweep's queued and running jobs",
                       description="scancel the sweep's SLURM jobs and stop its local queues (their "
                                   "process groups); unfinished runs resume when the sweep is "
                                   "submitted again.")
    sweep_target(p)
    p.set_defaults(func=_cancel)


def _sweep(args: argparse.Namespace) -> int:
    from bench.harness.sweep import run_sweep

    return run_sweep(args.file, executor=args.executor, dry_run=args.dry_run,
                     retry_failed=args.retry_failed, force=args.force, only=args.only,
                     no_wait=args.no_wait, output_root=args.output_root,
                     max_concurrent=args.max_concurrent,
                     report=None if args.no_report else build_report,
                     skip_data_check=args.skip_data_check)


def _status(args: argparse.Namespace) -> int:
    from bench.harness.sweep import status

    return status(args.sweep, output_root=args.output_root, watch=args.watch, show_all=args.show_all,
                  report=build_report)


def _cancel(args: argparse.Namespace) -> int:
    from bench.harness.sweep import cancel

    return cancel(args.sweep, output_root=args.output_root)


def build_report(sweep_dir: Path) -> int:
    """Collect results and build tables, figures and report.html; 1 if that fails. The CLI floor
    is where the harness meets the report (the harness's own modules never import it)."""
    from bench.report import build_all

    try:
        paths = build_all(sweep_dir)
    except BenchError as err:
        print(f"bench sweep: report: error: {err}", file=sys.stderr)
        return 1
    print(f"report: {len(paths)} files under {sweep_dir}", flush=True)
    return 0
