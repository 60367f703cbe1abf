"""CLI verbs of the metrics concern: ``bench eval`` and ``bench weights {fetch,check}``."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    """Add ``eval`` and ``weights`` to the ``bench`` subparsers."""
    p = sub.add_parser("eval", help="recompute a run's metrics from its saved test renders",
                       description="Recompute metrics from RUN_DIR/renders/test/*.png (no retraining) and "
                                   "rewrite the metrics block of results.json, keeping its provenance; "
                                   "creates results.json for a run that has renders but none yet.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--lpips-input", choices=("scaled", "unscaled"), default=None,
                   help="LPIPS input range: scaled to [-1,1] (protocol default) or unscaled [0,1] as upstream dydeblur")
    p.add_argument("--device", default="cpu", help="torch device for LPIPS (default: cpu)")
    p.add_argument("--protocol", default=None, metavar="NAME",
                   help="evaluation protocol, a key of bench/metrics/protocols.py (default: the one the run's sweep "
                        "named, else its dataset's own); results.json records the protocol used")
    p.add_argument("--refine-test-poses", type=_positive, metavar="STEPS", default=0,
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
                        description="Download the AlexNet backbone of LPIPS into the torch hub cache; needs "
                                    "network, so run it on a login node before GPU jobs that have none.")
    f.set_defaults(func=_fetch)
    c = wsub.add_parser("check", help="report which LPIPS weight files are present (exit 1 when missing)",
                        description="One line per LPIPS weight file, ok or MISSING with its path; exit 1 when one "
                                    "is missing.")
    c.set_defaults(func=_check)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number of steps")
    return value


def _eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench import rundir
    from bench.errors import BenchError
    from bench.metrics.modes import evaluate_modes
    from bench.metrics.results import extra_from_run_dir, identity_from_config, stored_run

    run_dir = Path(args.run_dir)
    _check_protocol(args.protocol)
    if args.refine_test_poses:
        return _refine(args, run_dir)
    if args.select or args.force:
        raise BenchError("--select and --force go with --refine-test-poses")
    if not (run_dir / rundir.TEST_RENDERS).is_dir():
        raise BenchError(f"{run_dir / rundir.TEST_RENDERS}: no test renders to evaluate")
    metrics, evaluations = evaluate_modes(run_dir, lpips_input=args.lpips_input, device=args.device, progress=True,
                                          protocol=args.protocol)
    if rundir.is_finished(run_dir):
        identity, _, extra = stored_run(run_dir)
        extra.pop("evaluations", None)
    else:
        identity, extra = identity_from_config(run_dir), extra_from_run_dir(run_dir)
    if evaluations:
        extra["evaluations"] = evaluations
    _write(run_dir, identity, metrics, extra)
    _print_aggregate(metrics)
    return 0


def _refine(args: argparse.Namespace, run_dir) -> int:
    """--refine-test-poses: a new evaluation mode of a finished run; every other block kept as it is."""
    from bench import rundir
    from bench.errors import BenchError
    from bench.method.saved_run import refine_saved_run
    from bench.metrics.modes import configured_mode, evaluate_mode
    from bench.metrics.evaluate import read_config
    from bench.metrics.results import stored_run

    if not rundir.is_finished(run_dir):
        raise BenchError(f"{run_dir / rundir.RESULTS}: missing; test poses are refined for a finished run")
    identity, metrics, extra = stored_run(run_dir)
    select = args.select or configured_mode(read_config(run_dir)).partition("+")[0]
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
    _write(run_dir, identity, block if mode == reported else metrics, extra)
    _print_aggregate(block)
    return 0


def _write(run_dir, identity, metrics: dict, extra: dict) -> None:
    from datetime import datetime, timezone

    from bench import provenance
    from bench.metrics.results import write_results

    extra["evaluated"] = {"time": datetime.now(timezone.utc).isoformat(), "by": "bench eval",
                          "provenance": provenance.collect()}
    print(f"wrote {write_results(run_dir, identity, metrics, extra)}")


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
