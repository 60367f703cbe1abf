"""Argument helpers shared by several verbs, defined once."""

from __future__ import annotations

import argparse
from pathlib import Path


def sweep_target(p: argparse.ArgumentParser, help: str = "sweep YAML or sweep output directory",
                 root_help: str = "override the file's output_root", metavar: str | None = None) -> None:
    """The sweep a verb acts on: a sweep file or its output directory, and ``--output-root``
    (which places a sweep file's output). The texts differ by verb family, so they are parameters."""
    p.add_argument("sweep", help=help, metavar=metavar)
    p.add_argument("--output-root", default=None, help=root_help)


def existing_sweep_dir(arg: str | Path, output_root: str | None = None) -> Path:
    """The output directory of a sweep YAML or directory; it must hold a sweep (a manifest).

    Resolving a sweep FILE needs the harness's parser; that is the CLI's job, so the report
    reads only sweep directories."""
    from bench.harness.sweep import sweep_with_manifest

    return sweep_with_manifest(str(arg), output_root)[0]


def data_parent_args(p) -> None:
    """``--data-parent DIR`` of the verbs that look at every dataset (``DIR/<dataset>``, like
    $BENCH_DATA); ``--data-root`` is accepted there with a note, since everywhere else it names one
    dataset's own folder."""
    p.add_argument("--data-parent", metavar="DIR",
                   help="look for every dataset under DIR/<dataset> (as $BENCH_DATA does)")
    p.add_argument("--data-root", dest="data_root_as_parent", metavar="DIR",
                   help="accepted as --data-parent, with a note (--data-root names one dataset's own folder)")


def data_parent(args) -> str | None:
    """The parent of every dataset's folder the user gave (``--data-parent``, or ``--data-root``
    read as one with a note on stderr)."""
    import sys

    if args.data_root_as_parent and not args.data_parent:
        print(f"note: --data-root {args.data_root_as_parent}: taken as the parent of every dataset's folder "
              "(--data-parent); --data-root names one dataset's own folder in the other verbs", file=sys.stderr)
        return args.data_root_as_parent
    return args.data_parent
