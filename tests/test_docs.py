"""The documents the code cites exist, and every citation points at a section that exists.

Citation form (code, README, registry YAML, docs): ``docs/<file>.md §<section>``, where
``<section>`` is the word after ``§`` in a heading ``## §<section> ...`` of that file: a number in
docs/method.md (``§3``, or a range ``§3-4``), a name in docs/datasets.md (``§Results``). A whole
document may be cited without a section. Inside a doc, a bare ``§<section>`` refers to a section
of that doc. Bare document names (``method.md``), "CONTRACTS", and (outside the docs) a ``§`` that
is not part of a full citation are errors: none of them can be resolved.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".txt", ".toml", ".cfg", ".html", ".css", ".js"}

SECTION = r"[A-Za-z0-9][A-Za-z0-9_-]*"
CITATION = re.compile(rf"docs/(?P<doc>[A-Za-z0-9_-]+)\.md(?: §(?P<section>{SECTION}))?")
LOCAL = re.compile(rf"§(?P<section>{SECTION})")
HEADING = re.compile(rf"^## §(?P<section>{SECTION})(?=\s|$)", re.M)
BARE_DOC = re.compile(r"(?<![\w/.-])(?:method|datasets)\.md\b")
BARE_CONTRACTS = re.compile(r"\bCONTRACTS\b")


def scanned_files() -> list[Path]:
    """Where citations may appear: the package, the docs, the README and the registries."""
    files = [p for p in sorted((ROOT / "bench").rglob("*")) if p.is_file() and p.suffix in TEXT_SUFFIXES]
    files += sorted(DOCS.glob("*.md"))
    files += [ROOT / "README.md"]
    files += sorted((ROOT / "datasets").glob("*.yaml")) + sorted((ROOT / "methods").glob("*.yaml"))
    return [p for p in files if p.is_file() and "__pycache__" not in p.parts]


def headings(doc: str) -> list[str]:
    return HEADING.findall((DOCS / f"{doc}.md").read_text(encoding="utf-8"))


def expand(section: str) -> list[str]:
    """``3-4`` -> ["3", "4"]; any other section name stands for itself."""
    m = re.fullmatch(r"(\d+)-(\d+)", section)
    if m and int(m.group(1)) < int(m.group(2)):
        return [str(n) for n in range(int(m.group(1)), int(m.group(2)) + 1)]
    return [section]


def references(path: Path) -> tuple[list[tuple[int, str, str | None]], list[tuple[int, str]]]:
    """(line, doc, section or None) of every citation in ``path``, and (line, problem) of every
    ``§`` that belongs to no citation (allowed only inside the docs, as a same-page reference)."""
    text = path.read_text(encoding="utf-8", errors="replace")
    line = lambda pos: text.count("\n", 0, pos) + 1  # noqa: E731
    refs, stray = [], []
    spans = []
    for m in CITATION.finditer(text):
        refs.append((line(m.start()), m.group("doc"), m.group("section")))
        if m.group("section"):
            spans.append(range(m.start(), m.end()))
    in_docs = path.parent == DOCS
    for m in LOCAL.finditer(text):
        if any(m.start() in span for span in spans):
            continue
        if in_docs:
            if not text.startswith("## ", max(0, m.start() - 3)):  # headings define, not cite
                refs.append((line(m.start()), path.stem, m.group("section")))
        else:
            stray.append((line(m.start()), f"'§{m.group('section')}' without a document: "
                                           "write docs/<file>.md §<section>"))
    for m in re.finditer(rf"§(?!{SECTION})", text):
        stray.append((line(m.start()), "'§' not followed by a section"))
    return refs, stray


def test_cited_documents_exist_with_unique_sections():
    for doc in ("method", "datasets"):
        sections = headings(doc)
        assert sections, f"docs/{doc}.md: no '## §<section>' headings"
        dupes = sorted({s for s in sections if sections.count(s) > 1})
        assert not dupes, f"docs/{doc}.md: sections used twice: {dupes}"


def test_method_sections_are_numbered_one_to_n():
    # The code cites numbers; renumbering would silently change what every citation means.
    numbers = headings("method")
    assert numbers == [str(i) for i in range(1, len(numbers) + 1)], numbers


def test_every_citation_resolves_to_a_heading():
    problems, in_package = [], 0
    for path in scanned_files():
        where = path.relative_to(ROOT)
        refs, _ = references(path)
        in_package += len(refs) if where.parts[0] == "bench" else 0
        for line, doc, section in refs:
            if not (DOCS / f"{doc}.md").is_file():
                problems.append(f"{where}:{line}: docs/{doc}.md does not exist")
                continue
            if section is None:
                continue
            known = headings(doc)
            missing = [s for s in expand(section) if s not in known]
            if missing:
                problems.append(f"{where}:{line}: docs/{doc}.md §{section}: no heading '## §{missing[0]}' "
                                f"(sections: {', '.join(known)})")
    assert in_package >= 10, "the citation scan found almost nothing in bench/"
    assert not problems, "\n".join(problems)


def test_no_bare_or_unresolvable_citations():
    problems = []
    for path in scanned_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        where = path.relative_to(ROOT)
        for m in BARE_DOC.finditer(text):
            problems.append(f"{where}:{text.count(chr(10), 0, m.start()) + 1}: bare citation "
                            f"{m.group(0)!r}: write docs/{m.group(0)} §<section>")
        for m in BARE_CONTRACTS.finditer(text):
            problems.append(f"{where}:{text.count(chr(10), 0, m.start()) + 1}: 'CONTRACTS' is no document: "
                            "cite docs/datasets.md §Results")
        problems += [f"{where}:{line}: {what}" for line, what in references(path)[1]]
    assert not problems, "\n".join(problems)
