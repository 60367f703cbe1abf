#!/usr/bin/env bash
# Install Debian packages for a tool the tests need, unless one of its commands is on PATH already.
#
#   bash .ci/apt_install.sh NAME "CMD [CMD...]" [apt-get install options...] -- PACKAGE [PACKAGE...]
#
# Re-runs itself with sudo when not root (and sudo needs no password); exit 1 when it cannot.
set -euo pipefail

name=$1 commands=$2
shift 2
log() { echo "install_$name: $*"; }

for cmd in $commands; do
    if command -v "$cmd" >/dev/null; then
        log "$cmd already on PATH ($(command -v "$cmd")); nothing to install"
        exit 0
    fi
done

if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        exec sudo -n bash "$0" "$name" "$commands" "$@"
    fi
    echo "install_$name: must run as root to install packages; try: sudo bash $0" >&2
    exit 1
fi

options=()
while [[ $1 != -- ]]; do options+=("$1"); shift; done
shift
log "installing $*"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${options[@]}" "$@" >/dev/null
log "installed: $*"
