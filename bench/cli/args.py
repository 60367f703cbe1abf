"""Argument helpers shared by several verbs, defined once."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.errors import BenchError


def sweep_target(p: argparse.ArgumentParser, help: str = "sweep YAML or sweep output directory",
                 root_help: str = "override the file's output_root", metavar: str | None = None) -> None:
    """The sweep a verb acts on: a sweep file or its output directory, and ``--output-root``
    (which places a sweep file's output). The texts differ by verb family, so they are parameters."""
    p.add_argument("sweep", help=help, metavar=metavar)
    p.add_argument("--output-root", default=None, help=root_help)


def existing_sweep_dir(arg: str | Path, output_root: str | None = None) -> Path:
    """The output directory of a sweep YAML or directory; it must exist already.

    Resolving a sweep FILE needs the harness's parser; that is the CLI's job, so the report
    reads only sweep directories."""
    from bench.harness.sweep import resolve_sweep_dir

    resolved = resolve_sweep_dir(str(arg), output_root)
    if not resolved.is_dir():
        raise BenchError(f"{arg}: sweep output {resolved} does not exist yet (run `bench sweep` first)")
    return resolved
