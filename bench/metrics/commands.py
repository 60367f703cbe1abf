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
    p.set_defaults(func=_eval)

    w = sub.add_parser("weights", help="fetch or check the LPIPS AlexNet backbone weights")
    wsub = w.add_subparsers(dest="weights_verb", metavar="ACTION", required=True)
    f = wsub.add_parser("fetch", help="download the AlexNet backbone into the torch hub cache (needs network)")
    f.set_defaults(func=_fetch)
    c = wsub.add_parser("check", help="report which LPIPS weight files are present (exit 1 when missing)")
    c.set_defaults(func=_check)


def _eval(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone
    from pathlib import Path

    from bench import provenance, rundir
    from bench.errors import BenchError
    from bench.metrics.evaluate import evaluate_run
    from bench.metrics.results import extra_from_run_dir, write_results
    from bench.rundir import read_results

    run_dir = Path(args.run_dir)
    _check_protocol(args.protocol)
    if not (run_dir / rundir.TEST_RENDERS).is_dir():
        raise BenchError(f"{run_dir / rundir.TEST_RENDERS}: no test renders to evaluate")
    metrics = evaluate_run(run_dir, lpips_input=args.lpips_input, device=args.device, progress=True,
                           protocol=args.protocol)
    if rundir.is_finished(run_dir):
        extra = {k: v for k, v in read_results(run_dir).items() if k not in ("schema", "metrics")}
    else:
        extra = extra_from_run_dir(run_dir)
    extra["evaluated"] = {"time": datetime.now(timezone.utc).isoformat(), "by": "bench eval",
                          "provenance": provenance.collect()}
    path = write_results(run_dir, metrics, extra)
    _print_aggregate(metrics)
    print(f"wrote {path}")
    return 0


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
