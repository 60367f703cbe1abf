"""``bench doctor``: versions, GPUs, gsplat's CUDA extension, LPIPS weights, SLURM, data; one line each."""

from __future__ import annotations

import argparse

from bench.cli.args import data_parent, data_parent_args


def register(sub) -> None:
    """Add ``doctor`` to the ``bench`` subparsers."""
    p = sub.add_parser(
        "doctor", help="check this machine: versions, GPUs, gsplat's CUDA extension, weights, SLURM, data",
        description="One line per check, marked ok, warn, FAIL or skip (not applicable here). Exit 0 "
                    "unless a check this machine needs FAILs: no GPU is fine on a CPU-only machine, a "
                    "missing LPIPS backbone or dataset is a warning. Run it on a login node and in a "
                    "GPU job before a sweep.")
    p.add_argument("--build-gsplat", action="store_true",
                   help="build gsplat's CUDA extension when it is not built (minutes; into "
                        "$TORCH_EXTENSIONS_DIR) and print the time it took; FAIL when it cannot be built")
    data_parent_args(p)
    p.add_argument("--json", action="store_true", help="print the checks as one JSON object")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    """Print each check as it completes (the build can take minutes); 1 when any check FAILs."""
    import json
    from dataclasses import asdict

    from bench.doctor.checks import FAIL, run_checks

    checks = []
    for check in run_checks(build_gsplat=args.build_gsplat, data_parent=data_parent(args)):
        checks.append(check)
        if not args.json:
            print(check.line(), flush=True)
    code = 1 if any(c.status == FAIL for c in checks) else 0
    if args.json:
        print(json.dumps({"ok": code == 0, "checks": [asdict(c) for c in checks]}, indent=2))
    return code
