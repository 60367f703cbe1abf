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


# The saved states and devices of bench.method (saved_run.STATES, device.DEVICES), spelled here so that
# `bench --help` imports no torch; tests/test_cli.py checks that they agree.
STATES = ("last", "best_test")
DEVICES = ("auto", "cpu", "cuda")


def saved_run_args(p: argparse.ArgumentParser, *, state_default: str | None = "last",
                   state_help: str = "the saved state: the final checkpoint or checkpoints/best_test.pt",
                   device_help: str = "where to render (auto: as training would choose for the run's backend)") -> None:
    """RUN_DIR, ``--state`` and ``--device`` of the verbs that load a trained run (bench.method.saved_run)."""
    p.add_argument("run_dir", metavar="RUN_DIR", help="a trained run directory (with its final checkpoint)")
    p.add_argument("--state", choices=STATES, default=state_default, help=state_help)
    p.add_argument("--device", choices=DEVICES, default="auto", help=device_help)


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive whole number")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number")
    return value
