"""The one lock helper (bench/locks.py): exclusive, with a holder record, probed without taking it;
and no other module of bench/ calls fcntl itself."""

from __future__ import annotations

import ast
from pathlib import Path

from bench import locks
from bench.locks import FileLock

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_a_lock_is_exclusive_and_says_who_holds_it(tmp_path):
    path = tmp_path / "sub" / ".lock"
    first, second = FileLock(path), FileLock(path)
    assert not locks.held(path) and locks.holder(path) is None
    assert first.acquire(record={"pid": 1, "host": "h"})
    assert locks.held(path) and locks.holder(path) == {"pid": 1, "host": "h"}
    assert not second.acquire(0.1)  # another open file: flock excludes it, even in this process
    first.release()
    assert not locks.held(path) and locks.holder(path) is None  # the record goes with the lock
    with second:
        assert locks.held(path)
    assert not locks.held(path)


def test_only_the_helper_calls_fcntl():
    users = []
    for path in BENCH.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if "fcntl" in names or module == "fcntl":
                users.append(str(path.relative_to(BENCH)))
    assert users == ["locks.py"]
