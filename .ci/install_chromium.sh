#!/usr/bin/env bash
# Install Debian's chromium for the browser checks: the report's comparison videos play
# (tests/test_report_videos.py) and the viewer serves a rendered frame (tests/test_viewer_server.py).
# Under CI a missing chromium fails those tests (tests/browser.py).
#
#   sudo bash .ci/install_chromium.sh      # does nothing when chromium is already on PATH
set -euo pipefail

log() { echo "install_chromium: $*"; }

if command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null; then
    log "a chromium (or chrome) is already on PATH; nothing to install"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        exec sudo -n bash "$0" "$@"
    fi
    echo "install_chromium: must run as root to install packages; try: sudo bash $0" >&2
    exit 1
fi

log "installing chromium"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
log "chromium: $(command -v chromium)"
