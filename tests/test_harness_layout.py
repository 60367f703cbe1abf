"""The harness's shape: no import cycle between its files, the executor kind compared in one module,
and a new executor added with one module plus one registry line."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from bench import rundir
from bench.harness import job as J
from bench.harness.executors import Executor, registry
from bench.harness.executors.base import Submission
from bench.harness.job import run_job
from bench.harness.manifest import read_manifest
from bench.harness.runs import expand
from bench.harness.spec import load_sweep
from bench.harness.sweep import cancel, run_sweep, status
from bench.rundir import read_status
from bench.sweepdir import runs_dir

from harness_fakes import fake_pipeline
from test_package_imports import _cycle

BENCH = Path(__file__).resolve().parent.parent / "bench"
HARNESS = BENCH / "harness"


def _module(path: Path) -> str:
    rel = path.relative_to(BENCH.parent).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def _with_parents(module: str) -> set[str]:
    """A module and the packages importing it runs first (their __init__)."""
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(2, len(parts) + 1)}


def _file_imports(path: Path, modules: set[str]) -> set[str]:
    """Every module of ``modules`` that ``path`` imports, at any depth of its code."""
    package = _module(path) if path.name == "__init__.py" else _module(path).rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for name in names:
            found |= _with_parents(name) & modules
    return found


def harness_graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in HARNESS.rglob("*.py")}
    # A module's own packages are initialised before it runs: an edge to them is no cycle.
    return {m: _file_imports(p, set(files)) - _with_parents(m) for m, p in files.items()}


def test_no_import_cycle_between_harness_files():
    graph = harness_graph()
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_file_graph_sees_imports_inside_functions():
    assert "bench.harness.procs" in harness_graph()["bench.harness.runs"]
    assert "bench.harness.job" in harness_graph()["bench.harness.executors.debug"]


def _kind_comparisons(path: Path, kinds: set[str]) -> list[int]:
    """Lines of ``path`` comparing something with an executor kind (==, !=, in, not in)."""
    def names_kind(node: ast.AST) -> bool:
        if isinstance(node, ast.Constant):
            return node.value in kinds
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return any(names_kind(e) for e in node.elts)
        return False

    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Compare) and any(names_kind(n) for n in [node.left, *node.comparators])]


def test_the_executor_kind_is_compared_in_the_registry_only():
    # "auto" also names a device, a backend and a build policy: only the executors' own names count.
    kinds = set(registry.executor_names())
    found = {str(p.relative_to(BENCH.parent)): lines for p in BENCH.rglob("*.py")
             if p != Path(registry.__file__) and (lines := _kind_comparisons(p, kinds))}
    assert found == {}, f"executor kinds compared outside {registry.__name__}: {found}"



def test_the_kind_check_finds_a_planted_comparison(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text('if kind == "slurm":\n    pass\nok = sub["executor"] in ("local", "x")\n')
    assert _kind_comparisons(planted, {"slurm", "local"}) == [1, 3]


# ---------------------------------------------------------------- a new executor, end to end


class FakeExecutor(Executor):
    """A new backend as a user would add it: runs every job at submission (like a scheduler that
    is very fast), records its own job ids, and answers the monitor from them."""

    started: list[str] = []
    cancelled: list[int] = []

    def submit(self, sub: Submission) -> None:
        sub.record["fake_jobs"] = {run.run_id: f"fake-{i}" for i, run in enumerate(sub.runs)}
        for run in sub.runs:
            FakeExecutor.started.append(run.run_id)
            run_job(runs_dir(sub.sweep_dir) / run.run_id, executor=self.kind, job_log=None)
        sub.say(f"fake: {len(sub.runs)} jobs")

    def tracks(self, sub, run_id, runs):
        return run_id in sub.get("fake_jobs", {})

    def job_state(self, sub, run_id, runs):
        return None  # every job has ended by the time anyone asks

    def describe(self, sub):
        return f"fake jobs {','.join(sub.get('fake_jobs', {}).values())}"

    def cancel(self, subs, say):
        FakeExecutor.cancelled.extend(s["id"] for s in subs)
        say(f"fake: cancelled {len(FakeExecutor.cancelled)} submission(s)")


def test_a_new_executor_is_one_module_and_one_registry_line(write_sweep, monkeypatch, capsys):
    # The one registry line (this test module stands in for the new module).
    monkeypatch.setitem(registry.EXECUTORS, "fake", f"{__name__}:FakeExecutor")
    monkeypatch.setattr(J, "_pipeline", fake_pipeline())
    FakeExecutor.started, FakeExecutor.cancelled = [], []
    path = write_sweep(executor={"kind": "fake", "device": "cpu"})
    assert run_sweep(str(path), report=None) == 0
    out = capsys.readouterr().out
    assert "executor fake" in out and "fake: 4 jobs" in out and "4 done" in out
    spec = load_sweep(path)
    sweep_dir = spec.output_dir()
    runs = expand(spec)
    assert sorted(FakeExecutor.started) == sorted(r.run_id for r in runs)
    manifest = read_manifest(sweep_dir)
    assert manifest["submissions"][0]["executor"] == "fake" and manifest["submissions"][0]["fake_jobs"]
    for run in runs:
        d = runs_dir(sweep_dir) / run.run_id
        assert read_status(d)["state"] == "done" and read_status(d)["executor"] == "fake"
        assert json.loads((d / rundir.RESULTS).read_text())["run_id"] == run.run_id
    # Reattaching and cancelling go through the same registry.
    assert status(str(path)) == 0
    assert cancel(str(path)) == 0
    assert FakeExecutor.cancelled == [1] and "fake: cancelled 1 submission(s)" in capsys.readouterr().out
