"""CLI verbs of the metrics concern: ``bench eval`` and ``bench weights {fetch,check}``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from bench.cli.args import positive_int


def register(sub) -> None:
    """Add ``eval`` and ``weights`` to the ``bench`` subparsers."""
    p = sub.add_parser("eval", help="recompute the metrics of a run, or of every finished run of a sweep, "
                                    "from the saved test renders",
                       description="Recompute metrics from RUN_DIR/renders/test/*.png (no retraining) and "
                                   "rewrite the metrics block of results.json, keeping the run's identity and "
                                   "provenance; creates results.json for a run that has renders but none yet. "
                                   "Given a SWEEP (a sweep file or its output directory), re-scores every "
                                   "finished run of it (e.g. after `bench weights fetch`), skipping unfinished "
                                   "ones; a run that fails is named and the others go on (exit 1 if any "
                                   "failed). Rebuild the report afterwards with `bench report SWEEP`.")
    p.add_argument("target", metavar="RUN_DIR|SWEEP",
                   help="a run directory, or a sweep YAML or sweep output directory (with its manifest.json)")
    p.add_argument("--output-root", default=None, help="with a sweep file: override its output_root")
    p.add_argument("--only", action="append", metavar="KEY=VALUE[,VALUE]", default=[],
                   help="with a SWEEP: re-score only the runs matching (keys: variant, dataset, scene, seed; "
                        "e.g. --only variant=full --only scene=motion_0)")
    p.add_argument("--lpips-input", choices=("scaled", "unscaled"), default=None,
                   help="LPIPS input range: scaled to [-1,1] (protocol default) or unscaled [0,1] as upstream dydeblur")
    p.add_argument("--device", default="cpu", help="torch device for LPIPS (default: cpu)")
    p.add_argument("--protocol", default=None, metavar="NAME",
                   help="evaluation protocol, a key of bench/metrics/protocols.py (default: the one the run's sweep "
                        "named, else its dataset's own); results.json records the protocol used")
    p.add_argument("--refine-test-poses", type=positive_int, metavar="STEPS", default=0,
                   help="optimise each test camera STEPS Adam steps against its ground truth, the model frozen "
                        "(Deblur4DGS's test-time practice; 500 there), and score that as an evaluation mode of "
                        "its own (results.json evaluations['<select>+refine<STEPS>']); needs the run's saved state")
    p.add_argument("--select", choices=("last", "best_test"), default=None,
                   help="with --refine-test-poses: the state refined (default: the run's eval.select)")
    p.add_argument("--force", action="store_true",
                   help="with --refine-test-poses: recompute a mode that results.json already holds")
    p.set_defaults(func=_eval)

    w = sub.add_parser("weights", help="fetch or check the LPIPS AlexNet backbone weights",
                       description="The AlexNet backbone LPIPS needs: fetch it once on a machine with network, "
                                   "check that it is there before evaluating offline.")
    wsub = w.add_subparsers(dest="weights_verb", metavar="ACTION", required=True)
    f = wsub.add_parser("fetch", help="download the AlexNet backbone into the torch hub cache (needs network)",
                        description="Download torchvision's AlexNet ImageNet checkpoint (hash-checked) into the "
                                    "torch hub cache ($TORCH_HOME/hub/checkpoints), where LPIPS reads it; "
                                    "nothing is done when it is there already. Runs scored without it record "
                                    "LPIPS as missing: `bench eval SWEEP` (or RUN_DIR) then re-scores them "
                                    "from their saved renders. Without network, copy the file into that folder "
                                    "by hand.")
    f.set_defaults(func=_fetch)
    c = wsub.add_parser("check", help="report which LPIPS weight files are present (exit 1 when missing)",
                        description="List the LPIPS weight files evaluation reads (the lpips package's v0.1 "
                                    "AlexNet linear layers and torchvision's AlexNet backbone in the torch hub "
                                    "cache), each as ok or MISSING with its path; exit 1 when one is missing.")
    c.set_defaults(func=_check)



def _eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench import rundir, sweepdir
    from bench.errors import BenchError

    _check_protocol(args.protocol)
    if _is_sweep(args.target):
        return _eval_sweep(args)
    if args.only or args.output_root:
        raise BenchError(f"{args.target}: not a sweep (no {sweepdir.MANIFEST} or {sweepdir.RUNS}/ inside); "
                         "--only and --output-root go with a SWEEP")
    run_dir = Path(args.target)
    if args.refine_test_poses:
        return _refine(args, run_dir)
    if args.select or args.force:
        raise BenchError("--select and --force go with --refine-test-poses")
    metrics = _rescore(run_dir, args, progress=True)
    print(f"wrote {run_dir / rundir.RESULTS}")
    _print_aggregate(metrics)
    return 0


def _is_sweep(target: str) -> bool:
    """A sweep file (.yaml), or a sweep output directory (manifest.json or runs/ inside: a run
    directory holds neither; one with runs/ but no manifest is refused as no sweep); anything else
    is taken for a run directory."""
    from pathlib import Path

    from bench import sweepdir

    path = Path(target)
    if path.is_dir():
        return (path / sweepdir.MANIFEST).is_file() or (path / sweepdir.RUNS).is_dir()
    return path.suffix in (".yaml", ".yml")


def _rescore(run_dir, args: argparse.Namespace, progress: bool) -> dict:
    """Score every evaluation mode of ``run_dir`` from its renders and rewrite its results.json
    (identity, train summary and provenance kept, ``evaluated`` added); returns the block of the
    run's configured mode. A run without results.json gets one from its config.yaml. ``progress``:
    a bar over the run's images and a warning when LPIPS cannot be computed (one run alone)."""
    from bench import rundir
    from bench.errors import BenchError
    from bench.metrics.modes import evaluate_modes
    from bench.metrics.results import extra_from_run_dir, identity_from_config, stored_run

    if not (run_dir / rundir.TEST_RENDERS).is_dir():
        raise BenchError(f"{run_dir / rundir.TEST_RENDERS}: no test renders to evaluate")
    metrics, evaluations = evaluate_modes(run_dir, lpips_input=args.lpips_input, device=args.device,
                                          progress=progress, protocol=args.protocol, warn=progress)
    if rundir.is_finished(run_dir):
        identity, _, extra = stored_run(run_dir)
        extra.pop("evaluations", None)
    else:
        identity, extra = identity_from_config(run_dir), extra_from_run_dir(run_dir)
    if evaluations:
        extra["evaluations"] = evaluations
    _write(run_dir, identity, metrics, extra)
    return metrics


@dataclass(frozen=True)
class _SweepRun:
    """A run of a sweep with the coordinates ``--only`` filters on (bench.harness.runs.select reads
    these attributes by name, as it does a RunSpec's); None where nothing on disk records one."""

    run_id: str
    variant: str | None
    dataset: str | None
    scene: str | None
    seed: int | None


def _sweep_runs(sweep_dir) -> list[_SweepRun]:
    """The runs of the sweep's latest expansion, as the report collects them: those its manifest
    lists (runs of an older sweep file stay on disk and are left alone)."""
    from bench import sweepdir

    manifest = sweepdir.require_sweep(sweep_dir)
    return [_SweepRun(run_id, r.get("variant"), r.get("dataset"), r.get("scene"), r.get("seed"))
            for run_id, r in sorted((manifest.get("runs") or {}).items())]


def _eval_sweep(args: argparse.Namespace) -> int:
    """Re-score every finished run of a sweep (``--only`` selects), one failure line per run that
    cannot be scored; exit 1 when any failed. The report is not rebuilt here: ``bench report`` takes
    options of its own and draws every figure again, so the closing line names the command."""
    import sys

    from bench import rundir, sweepdir
    from bench.cli.args import existing_sweep_dir
    from bench.errors import BenchError
    from bench.harness.runs import parse_only, select

    if args.refine_test_poses or args.select or args.force:
        raise BenchError(f"{args.target}: --refine-test-poses, --select and --force act on one RUN_DIR, not a sweep")
    sweep_dir = existing_sweep_dir(args.target, args.output_root)
    runs = select(_sweep_runs(sweep_dir), parse_only(args.only))
    finished = [sweepdir.run_dir(sweep_dir, r.run_id) for r in runs
                if rundir.is_finished(sweepdir.run_dir(sweep_dir, r.run_id))]
    scored, failed = _rescore_all(finished, args)
    print(f"{sweep_dir}: re-scored {len(scored)} of {len(runs)} runs; {len(runs) - len(finished)} unfinished "
          f"skipped; {len(failed)} failed")
    no_lpips = [m["missing"].get("lpips") for m in scored if m["aggregate"].get("lpips") is None]
    if no_lpips:
        print(f"warning: LPIPS not computed in {len(no_lpips)} of {len(scored)} runs re-scored: {no_lpips[0]}",
              file=sys.stderr)
    if scored:
        root = f" --output-root {args.output_root}" if args.output_root else ""
        print(f"rebuild the report: bench report {args.target}{root}")
    return 1 if failed else 0


def _rescore_all(run_dirs: list, args: argparse.Namespace) -> tuple[list[dict], list[str]]:
    """(the configured-mode block of each run re-scored, the ids of the runs that failed), with a
    progress bar over the runs; a failure is printed as one line and the next run goes on."""
    import sys

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from bench.errors import BenchError

    scored, failed = [], []
    columns = (TextColumn("eval {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    console = Console()
    # Off where stdout is no terminal (a log, a pipe): rich would only leave a blank line there.
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("", total=len(run_dirs))
        for run_dir in run_dirs:
            bar.update(task, description=run_dir.name)
            try:
                scored.append(_rescore(run_dir, args, progress=False))
            # One run's bad file must not stop the other runs; anything unexpected is named with its type.
            except Exception as err:  # noqa: BLE001
                reason = str(err) if isinstance(err, BenchError) else f"{type(err).__name__}: {err}"
                print(f"bench eval: {run_dir.name}: not re-scored: {reason}", file=sys.stderr)
                failed.append(run_dir.name)
            bar.advance(task)
    return scored, failed


def _refine(args: argparse.Namespace, run_dir) -> int:
    """--refine-test-poses: a new evaluation mode of a finished run; every other block kept as it is."""
    from bench import rundir
    from bench.errors import BenchError
    from bench.method.saved_run import refine_saved_run
    from bench.metrics.modes import configured_mode, evaluate_mode
    from bench.metrics.results import stored_run

    if not rundir.is_finished(run_dir):
        raise BenchError(f"{run_dir / rundir.RESULTS}: missing; test poses are refined for a finished run")
    identity, metrics, extra = stored_run(run_dir)
    select = args.select or configured_mode(rundir.read_config(run_dir)).partition("+")[0]
    mode = rundir.eval_mode(select, args.refine_test_poses)
    reported = metrics.get("eval", {}).get("mode", "last")
    if mode in {reported, *(extra.get("evaluations") or {})} and not args.force:
        raise BenchError(f"{run_dir / rundir.RESULTS}: evaluation mode {mode!r} is there already; "
                         "--force recomputes it")
    refine_saved_run(run_dir, args.refine_test_poses, select)
    block = evaluate_mode(run_dir, mode, lpips_input=args.lpips_input, device=args.device, progress=True,
                          protocol=args.protocol)
    if mode != reported:
        extra["evaluations"] = {**(extra.get("evaluations") or {}), mode: block}
    print(f"wrote {_write(run_dir, identity, block if mode == reported else metrics, extra)}")
    _print_aggregate(block)
    return 0


def _write(run_dir, identity, metrics: dict, extra: dict):
    """Write results.json (atomically, identity first: bench.metrics.results.write_results) with an
    ``evaluated`` record of this evaluation; returns its path."""
    from datetime import datetime, timezone

    from bench import provenance
    from bench.metrics.results import write_results

    extra["evaluated"] = {"time": datetime.now(timezone.utc).isoformat(), "by": "bench eval",
                          "provenance": provenance.collect()}
    return write_results(run_dir, identity, metrics, extra)


def _check_protocol(name: str | None) -> None:
    """--protocol names a protocol (checked before anything is read or written)."""
    from bench.errors import BenchError
    from bench.metrics.protocols import PROTOCOLS

    if name is not None and name not in PROTOCOLS:
        raise BenchError(f"--protocol {name!r}: unknown; allowed: {', '.join(PROTOCOLS)}")


def _print_aggregate(metrics: dict) -> None:
    from bench.metrics.registry import METRICS

    for name, value in metrics["aggregate"].items():
        label = METRICS[name].label
        shown = f"{value:.{METRICS[name].decimals + 2}f}" if value is not None else \
            f"missing ({metrics['missing'].get(name, 'unknown')})"
        print(f"{label:>14}: {shown}")


def _fetch(args: argparse.Namespace) -> int:
    from bench.metrics.weights import fetch

    path = fetch()
    print(f"AlexNet backbone present: {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from bench.metrics.weights import check

    ok = True
    for name, (path, present) in check().items():
        ok &= present
        print(f"{'ok     ' if present else 'MISSING'} {name}: {path}")
    if not ok:
        print("run `bench weights fetch` on a machine with network access (same $TORCH_HOME)")
    return 0 if ok else 1
