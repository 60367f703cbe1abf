"""The ``bench`` command line: the floor above every package of ``bench/``.

Every verb lives in a module of this package exposing ``register(subparsers)``; a verb's parser
sets ``func`` to a callable taking the parsed namespace and returning an exit code. The CLI may
import any package (it is where the harness meets the report); no package imports the CLI
(tests/test_package_imports.py). Heavy imports (torch, pandas) happen inside the verbs, so
``bench --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from bench import __version__
from bench.errors import BenchError
from bench.provenance import git_commit

# Order here is the order of verbs in ``bench --help``.
COMMAND_MODULES = (
    "bench.cli.data",
    "bench.cli.train",
    "bench.cli.sweep",
    "bench.cli.eval",
    "bench.cli.render",
    "bench.cli.export",
    "bench.cli.fps",
    "bench.cli.view",
    "bench.cli.report",
    "bench.cli.doctor",
)


def version_string() -> str:
    sha, dirty = git_commit()
    commit = "unknown commit" if sha is None else sha[:12] + ("-dirty" if dirty else "")
    return f"dydeblur-bench {__version__} ({commit})"


def shows_default(action: argparse.Action) -> bool:
    """Whether ``--help`` appends an option's default: one that says something (not None, False or an
    empty list, which mean "not given"), of an option taking a value or an optional positional (a
    flag's default is its absence), whose help text does not already name its default."""
    default = action.default
    if default is argparse.SUPPRESS or default is None or default is False or default == [] or action.nargs == 0:
        return False
    optional = bool(action.option_strings) or action.nargs in (argparse.OPTIONAL, argparse.ZERO_OR_MORE)
    return optional and "default" not in (action.help or "")


class DefaultsFormatter(argparse.HelpFormatter):
    """argparse's ArgumentDefaultsHelpFormatter, less the defaults that say nothing (:func:`shows_default`)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        return text + " (default: %(default)s)" if shows_default(action) else text


class Parser(argparse.ArgumentParser):
    """Every parser of ``bench``: ``add_subparsers`` makes its parsers of the parent's class, so the
    verbs and their sub-verbs (``data list``, ``weights fetch``) all show their defaults."""

    def __init__(self, *args, formatter_class=DefaultsFormatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="bench",
        description="Benchmark and ablation harness for dynamic Gaussian splatting from blurry video.",
    )
    parser.add_argument("--version", action="version", version=version_string())
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except BenchError as err:
        print(f"bench {args.verb}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into e.g. `head` that stopped reading: not an error of ours.
        sys.stdout = open(os.devnull, "w")
        return 0

