"""The checkout this package runs from: the folder above ``bench/``, holding ``methods/``,
``datasets/``, ``results/`` and the git history that provenance records."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
