"""The command line itself: help lists every verb, version names the commit, user errors are one line."""

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
