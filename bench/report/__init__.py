"""Reports of a sweep: collection, tables, figures, HTML. ``build_all`` is what the CLI calls after a sweep."""

from __future__ import annotations


def build_all(sweep_dir, **options):
    """collect + tables + figures + report.html for ``sweep_dir``; returns the written paths.

    Never raises for a missing part: each stage that fails or has nothing to show leaves a note
    in the report (options: see ``bench.report.build.build_all``).
    """
    from bench.report.build import build_all as _build_all

    return _build_all(sweep_dir, **options)
