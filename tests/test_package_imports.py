"""bench/ is a house of floors: imports go one way, counting the imports hidden inside functions
(those cycles break as soon as someone hoists the import).

- No import cycle between the packages of bench/, nor between its files.
- The CLI floor (``bench/cli/``: ``main`` and every verb) sits on top: it may import any package
  (it hands the report's builder to a sweep, resolves a sweep file to its directory), and no
  module outside it imports it.
- The report reads sweep directories only: no module of ``bench/report`` imports ``bench/harness``.
"""

from __future__ import annotations

import ast
from pathlib import Path


BENCH = Path(__file__).resolve().parent.parent / "bench"
CLI = "bench.cli"



def _unit(module: str) -> str:
    """The dependency unit of a module: its subpackage (bench.harness) or top-level module (bench.rundir)."""
    parts = module.split(".")
    return ".".join(parts[:2])


def _module_name(path: Path) -> str:
    rel = path.relative_to(BENCH.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _package_of(path: Path) -> str:
    """The package relative imports of ``path`` start from."""
    name = _module_name(path)
    return name if path.name == "__init__.py" else name.rsplit(".", 1)[0]


def imports_of(source: str, package: str) -> set[str]:
    """Every bench.* name imported by ``source`` (a module of ``package``), at any depth of its code.

    ``from X import a`` yields ``X.a``: a module when ``a`` is one, else a name of module ``X``
    (``_resolve`` tells which)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("bench")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.startswith("bench"):
                found |= {f"{name}.{a.name}" for a in node.names}
    return found


def _imports(path: Path) -> set[str]:
    return imports_of(path.read_text(), _package_of(path))


def _files() -> dict[str, Path]:
    """Module name -> file, for every module of bench/."""
    return {_module_name(p): p for p in sorted(BENCH.rglob("*.py"))}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported name lives in: itself when a module, else the nearest enclosing module
    (``bench.report.build_all`` -> ``bench.report``); None outside bench."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def file_graph() -> dict[str, set[str]]:
    """Module -> the bench modules it imports (a package's ``__init__`` counts only when named)."""
    modules = _files()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = {_resolve(t, modules) for t in _imports(path)}
        graph[name] = {t for t in targets if t and t != name}
    return graph


def package_graph() -> dict[str, set[str]]:
    """Unit -> the units it imports (the CLI floor left out: it composes the packages)."""
    graph: dict[str, set[str]] = {}
    for src, targets in file_graph().items():
        if _unit(src) == CLI:
            continue
        for dst in {_unit(t) for t in targets}:
            if dst != _unit(src) and dst != "bench":
                graph.setdefault(_unit(src), set()).add(dst)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path, or None (depth-first search with colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def cyclic_groups(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one node: each a set of mutually importing
    modules (every node reaches every other)."""
    reach = {node: _reachable(graph, node) for node in graph}
    groups: list[set[str]] = []
    for node in sorted(graph):
        if node in reach[node] and not any(node in g for g in groups):
            groups.append({other for other in reach[node] if node in reach.get(other, ())})
    return groups


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return seen


def _importers(prefix: str, among) -> list[str]:
    """``module imports target`` for every module in ``among`` importing ``prefix`` or below it."""
    graph = file_graph()
    return [f"{src} imports {dst}" for src in sorted(among) for dst in sorted(graph[src])
            if dst == prefix or dst.startswith(prefix + ".")]


def test_no_import_cycle_between_bench_packages():
    cycle = _cycle(package_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_import_cycle_between_bench_files():
    cycle = _cycle(file_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_package_imports_the_cli_floor():
    below = [m for m in _files() if _unit(m) != CLI]
    assert _importers(CLI, below) == []


def test_the_report_does_not_import_the_harness():
    report = [m for m in _files() if _unit(m) == "bench.report"]
    assert report and _importers("bench.harness", report) == []


def test_every_verb_lives_on_the_cli_floor():
    """The old per-concern ``commands`` modules are gone; every verb module is under bench/cli."""
    from bench.cli import COMMAND_MODULES

    assert not list(BENCH.glob("*/commands.py"))
    assert all(name.startswith(CLI + ".") and name in _files() for name in COMMAND_MODULES)


def test_imports_inside_functions_and_relative_imports_are_seen():
    source = "import os\ndef verb():\n    from bench.cli import main\n    from . import spec\n"
    assert imports_of(source, "bench.harness") == {"bench.cli.main", "bench.harness.spec"}
    modules = {"bench.cli": Path(), "bench.harness": Path(), "bench.harness.spec": Path()}
    assert _resolve("bench.cli.main", modules) == "bench.cli" and _resolve("numpy", modules) is None


def test_cycle_finders_find_a_planted_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": {"c"}}) is None
    assert cyclic_groups({"a": {"b"}, "b": {"a", "c"}, "c": {"d"}, "d": {"c"}, "e": {"a"}}) == [{"a", "b"},
                                                                                                {"c", "d"}]
    assert cyclic_groups({"a": {"b"}, "b": set()}) == []
