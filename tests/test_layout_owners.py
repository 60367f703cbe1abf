"""One owner per on-disk format: the file names of a run directory live only in bench.rundir,
those of a sweep directory only in bench.sweepdir; every other module goes through them.

A string that could build a path (no white space: ``"results.json"``, ``"runs/x/curves.csv"``) counts;
prose naming a file for the user (help texts, messages, docstrings) does not."""

from __future__ import annotations

import ast
from pathlib import Path

from bench import rundir, sweepdir

BENCH = Path(__file__).resolve().parent.parent / "bench"
OWNED = {
    "rundir.py": [rundir.CONFIG, rundir.STATUS, rundir.LOG, rundir.CURVES, rundir.TRAIN_SUMMARY, rundir.RESULTS,
                  rundir.JOB, rundir.JOB_LOG],
    "sweepdir.py": [sweepdir.MANIFEST, sweepdir.RESULTS_CSV, sweepdir.RESULTS_PARQUET, sweepdir.REPORT],
}


def _code_strings(path: Path) -> list[str]:
    """String constants of a module's code (f-string parts included), docstrings left out."""
    tree = ast.parse(path.read_text())
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    return [n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_file_names_appear_only_in_their_owner_module():
    strays = []
    for path in sorted(BENCH.rglob("*.py")):
        strings = _code_strings(path)
        for owner, names in OWNED.items():
            if path.name == owner and path.parent == BENCH:
                continue
            strays += [f"{path.relative_to(BENCH.parent)}: {name!r} (owner: bench/{owner})"
                       for name in names if any(name in s and not any(c.isspace() for c in s) for s in strings)]
    assert not strays, "\n".join(strays)
