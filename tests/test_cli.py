"""The command line itself: help lists every verb, version names the commit, user errors are one line."""

import argparse
import subprocess
import sys

import pytest

from bench.cli import build_parser, main, version_string

VERBS = {"data", "train", "sweep", "status", "cancel", "eval", "weights", "collect", "table", "plot", "report",
         "compare", "doctor"}


def test_help_lists_every_verb():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    assert VERBS <= set(sub.choices)


def test_version_names_package_and_commit():
    out = subprocess.run([sys.executable, "-m", "bench.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0
    assert out.stdout.startswith("dydeblur-bench ")
    assert "(" in out.stdout and ")" in out.stdout
    assert version_string() == out.stdout.strip()


def test_user_error_is_one_line_and_nonzero(capsys, tmp_path):
    code = main(["train", "--method", "no_such_variant", "--dataset", "synthetic", "--scene", "motion_0",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert len(err.splitlines()) == 1
    assert "no_such_variant" in err
    assert not (tmp_path / "run" / "results.json").exists()


@pytest.mark.parametrize("argv", [["--help"], ["data", "--help"], ["sweep", "--help"]])
def test_help_exits_zero(argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0


def _parsers(parser, name="bench"):
    """(name, parser) of ``bench`` and of every verb and sub-verb under it."""
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb, sub in action.choices.items():
                yield from _parsers(sub, f"{name} {verb}")


def test_every_verb_has_a_description_and_help_shows_defaults():
    parsers = list(_parsers(build_parser()))
    assert {"bench data synth", "bench weights fetch", "bench weights check"} <= {n for n, _ in parsers}
    assert [name for name, parser in parsers if not parser.description] == []
    for name, parser in parsers:
        for action in parser._actions:
            default = action.default
            if default is None or default is False or default == [] or default is argparse.SUPPRESS \
                    or action.nargs == 0:  # "not given", or a flag
                continue
            where = f"{name} {'/'.join(action.option_strings) or action.dest}"
            assert action.help, f"{where}: no help text, so --help shows no default"
            shown = " ".join(parser._get_formatter()._expand_help(action).split())
            assert "default" in shown and str(default) in shown, f"{where}: {shown!r}"
            assert shown.count("(default:") <= 1, f"{where}: the default twice in {shown!r}"
        text = parser.format_help()
        assert "(default: None)" not in text and "(default: False)" not in text, name


def test_the_cli_spells_the_states_and_devices_of_bench_method():
    """bench/cli/args.py repeats them so that `bench --help` imports no torch: they must agree."""
    from bench.cli.args import DEVICES, STATES
    from bench.method.device import DEVICES as METHOD_DEVICES
    from bench.method.saved_run import STATES as METHOD_STATES

    assert (STATES, DEVICES) == (METHOD_STATES, METHOD_DEVICES)
