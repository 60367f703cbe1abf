"""Before a sweep is submitted: is the data of every run to submit there?

Each distinct (dataset, scene, data root) of the runs to submit gets the quick check of
:mod:`bench.data.presence` (folders, files and counts; no image decoded, no torch imported).
Finished runs need no data and are not checked. Synthetic scenes not generated yet count as
present: the run generates them on first use. The dry run shows the result per dataset; a real
submission is refused while any scene is missing or broken (``--skip-data-check`` skips all this,
for data that only the compute nodes see).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from bench.data.presence import BROKEN, GENERATED, MISSING, PRESENT, SceneCheck, quick_check_scene
from bench.harness.runs import RunSpec

MAX_NAMES = 12  # scene names listed per line before "+N more"


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:MAX_NAMES])
    return shown + (f" (+{len(names) - MAX_NAMES} more)" if len(names) > MAX_NAMES else "")


def root_source(dataset: str, override: str | None) -> str:
    """Where the data root came from (the order of ``bench.data.registry.data_root``)."""
    if override:
        return "the sweep file's data_root"
    if os.environ.get("BENCH_DATA"):
        return "$BENCH_DATA"
    return f"datasets/{dataset}.yaml"


@dataclass
class DataCheck:
    """The quick checks of the scenes that a set of runs needs, grouped per (dataset, data root)."""

    scenes: dict[tuple[str, str, str | None], SceneCheck] = field(default_factory=dict)
    needed_by: dict[tuple[str, str, str | None], set[str]] = field(default_factory=dict)

    def add(self, runs: list[RunSpec]) -> None:
        """Check the scenes of ``runs`` not checked yet (each distinct scene once)."""
        for run in runs:
            key = (run.dataset, run.scene, run.data_root)
            if key not in self.scenes:
                self.scenes[key] = quick_check_scene(run.dataset, run.scene, run.data_root)
            self.needed_by.setdefault(key, set()).add(run.run_id)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.scenes.values())

    def runs_without_data(self) -> set[str]:
        return {rid for key, c in self.scenes.items() if not c.ok for rid in self.needed_by[key]}

    def _groups(self) -> dict[tuple[str, Path, str | None], list[SceneCheck]]:
        groups: dict[tuple[str, Path, str | None], list[SceneCheck]] = {}
        for (dataset, _, override), check in self.scenes.items():
            groups.setdefault((dataset, check.root, override), []).append(check)
        return groups

    def summary_lines(self) -> list[str]:
        """For the dry run: per dataset, the scenes present and those missing or broken."""
        if not self.scenes:
            return ["data: no run to submit needs any"]
        lines = [f"data (quick check of the {len(self.scenes)} scene(s) the runs to submit need):"]
        for (dataset, root, override), checks in self._groups().items():
            by = {s: [c.scene for c in checks if c.state == s] for s in (PRESENT, GENERATED, MISSING, BROKEN)}
            present = len(by[PRESENT]) + len(by[GENERATED])
            line = (f"  {dataset}: {present} of {len(checks)} scene(s) present under {root} "
                    f"(from {root_source(dataset, override)})")
            if by[GENERATED]:
                line += f"; {len(by[GENERATED])} generated on first use: {_names(by[GENERATED])}"
            if by[MISSING]:
                line += f"; missing: {_names(by[MISSING])}"
            if by[BROKEN]:
                line += f"; broken: {_names(by[BROKEN])}"
            lines.append(line)
            for c in checks:
                if c.state == BROKEN:
                    lines.append(f"    {dataset}/{c.scene}: {c.problems[0]}"
                                 + (f" (+{len(c.problems) - 1} more problems)" if len(c.problems) > 1 else ""))
        return lines

    def refusal_lines(self) -> list[str]:
        """One line per dataset lacking data: its missing and broken scenes and the root searched."""
        lines = []
        for (dataset, root, override), checks in self._groups().items():
            missing = [c.scene for c in checks if c.state == MISSING]
            broken = [c for c in checks if c.state == BROKEN]
            if not missing and not broken:
                continue
            parts = []
            if missing:
                parts.append(f"{len(missing)} of {len(checks)} scene(s) missing: {_names(missing)}")
            if broken:
                first = broken[0].problems[0]
                parts.append(f"{len(broken)} broken: {_names([c.scene for c in broken])} (first problem: {first})")
            runs = sum(len(self.needed_by[(dataset, c.scene, override)]) for c in checks if not c.ok)
            lines.append(f"{dataset}: {'; '.join(parts)}; data root {root} "
                         f"(from {root_source(dataset, override)}); needed by {runs} run(s)")
        return lines


def check_data(runs: list[RunSpec]) -> DataCheck:
    """The quick data check of the scenes ``runs`` need."""
    check = DataCheck()
    check.add(runs)
    return check
