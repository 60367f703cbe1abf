#!/usr/bin/env bash
# Install Debian's chromium for the browser checks: the report's comparison videos play
# (tests/test_report_videos.py) and the viewer serves a rendered frame (tests/test_viewer_server.py).
# Under CI a missing chromium fails those tests (tests/browser.py).
#
#   sudo bash .ci/install_chromium.sh      # does nothing when chromium is already on PATH
set -euo pipefail

exec bash "$(dirname "$0")/apt_install.sh" chromium "chromium chromium-browser google-chrome" -- chromium
