"""Synthetic scenes generated once per test process into a temporary data root (shared by the data tests)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

_ROOT: Path | None = None


def synthetic_root(*names: str) -> Path:
    """A data root holding the named synthetic scenes (generated on first request, then reused)."""
    global _ROOT
    from bench.data import synthetic
    from bench.data.registry import get_dataset

    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="bench-synth-"))
        atexit.register(shutil.rmtree, _ROOT, True)
    spec = get_dataset("synthetic")
    synthetic.ensure(_ROOT, [spec.scene(n) for n in names], show_progress=False)
    return _ROOT
