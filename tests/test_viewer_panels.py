"""bench/viewer/panels.py: which panels a run offers (their images are the videos' panels,
bench.video.render.panel_image; tests/test_viewer_server.py renders each)."""

from __future__ import annotations

from bench.viewer.panels import BLUR_SIZE, BLURRED, DEPTH, SHARP, available


def test_panels_without_bpnet_leave_out_what_needs_it():
    assert available(True) == (SHARP, BLURRED, BLUR_SIZE, DEPTH)
    assert available(False) == (SHARP, DEPTH)
