"""The headless browser of the browser checks (the report's videos, the viewer)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_chromium() -> str:
    """chromium's path; skips the test where it is not installed, but fails it under CI (CI=true or 1):
    .ci/run installs it (.ci/install_chromium.sh), so a missing one there is a broken CI, not a skip."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail("chromium not on PATH under CI: .ci/run installs it with .ci/install_chromium.sh")
    pytest.skip("no chromium on PATH (.ci/install_chromium.sh installs it): the browser check needs one")
