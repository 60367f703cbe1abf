"""One vocabulary module: stored, planned and shown run states and how they map."""

from __future__ import annotations

import ast
from pathlib import Path

from bench.harness import states as S
from bench.harness.states import Planned, Shown, Stored

HARNESS = Path(__file__).resolve().parent.parent / "bench" / "harness"


def _values(cls) -> set[str]:
    return {v for k, v in vars(cls).items() if k.isupper()}


def test_the_planner_reads_the_stored_state():
    never = lambda: False  # noqa: E731
    always = lambda: True  # noqa: E731
    assert S.planned(Stored.FAILED, always) == Planned.FAILED
    for stored in (Stored.PENDING, Stored.RUNNING, Stored.REQUEUED):
        assert S.planned(stored, always) == Planned.ACTIVE
        assert S.planned(stored, never) == Planned.INTERRUPTED
    for stored in (Stored.DONE, Stored.CANCELLED, None):
        assert S.planned(stored, always) == Planned.INTERRUPTED


def test_the_monitor_shows_the_planned_state():
    def asked():
        raise AssertionError("the scheduler is asked only for an active run still waiting")

    assert S.shown(Planned.FINISHED, None, asked) == Shown.DONE
    assert S.shown(Planned.FAILED, Stored.FAILED, asked) == Shown.FAILED
    assert S.shown(Planned.NEW, None, asked) == Shown.NOT_SUBMITTED
    assert S.shown(Planned.STALE, None, asked) == S.shown(Planned.INTERRUPTED, None, asked) == Shown.INTERRUPTED
    assert S.shown(Planned.ACTIVE, Stored.RUNNING, asked) == Shown.RUNNING
    assert S.shown(Planned.ACTIVE, Stored.PENDING, lambda: False) == Shown.PENDING
    assert S.shown(Planned.ACTIVE, Stored.REQUEUED, lambda: True) == Shown.RUNNING
    assert set(S.SHOWN_ORDER) == _values(Shown)


def test_state_names_are_spelled_in_the_states_module_only():
    words = _values(Stored) | _values(Planned) | _values(S.SubmissionState) | {S.BUSY}
    found = {}
    for path in HARNESS.rglob("*.py"):
        if path.name == "states.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr)}
        keys = {id(k) for n in ast.walk(tree) if isinstance(n, ast.Dict) for k in n.keys}
        getters = {id(n.args[0]) for n in ast.walk(tree) if isinstance(n, ast.Call) and n.args
                   and isinstance(n.func, ast.Attribute) and n.func.attr == "get"}
        lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in words
                 and id(n) not in docstrings | keys | getters]
        if lines:
            found[path.name] = lines
    # The local queue's state file has its own keys ("pending", "running", "done"): dict keys, not states.
    assert found == {}, found
