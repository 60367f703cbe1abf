"""``bench export``: a trained run's Gaussians in a format other tools read (3DGS PLY)."""

from __future__ import annotations

import argparse

from bench.cli.args import saved_run_args


def register(sub) -> None:
    """Add the ``export`` verb to the ``bench`` subparsers."""
    p = sub.add_parser(
        "export", help="write a trained run's Gaussians as 3D Gaussian Splatting PLY files",
        description="Write the Gaussians of a trained run at the given times as 3D Gaussian Splatting PLY "
                    "files (binary, the layout splat viewers read), one file per time: "
                    "RUN_DIR/export/gaussians_t0.500.ply. Dynamic Gaussians are moved to the time; the motion "
                    "itself is not in the file. Every SH coefficient the model has is written.")
    saved_run_args(p, device_help="torch device the Gaussians are moved on")
    p.add_argument("--ply", action="store_true", help="export as 3DGS PLY (the one format so far)")
    p.add_argument("--times", default="0.5",
                   help="fractions of the training sequence, comma-separated: 0 = first training frame, 1 = last")
    p.add_argument("--out", default=None, metavar="DIR", help="output folder (default: RUN_DIR/export)")
    p.set_defaults(func=_export)


def _export(args: argparse.Namespace) -> int:
    from bench.errors import BenchError
    from bench.export.ply import export_ply, parse_times

    if not args.ply:
        raise BenchError("no format given: --ply (3D Gaussian Splatting PLY) is the one there is")
    times = parse_times(args.times)
    for path in export_ply(args.run_dir, times, args.state, args.out, args.device):
        print(f"wrote {path}")
    return 0
