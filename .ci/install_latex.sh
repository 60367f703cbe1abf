#!/usr/bin/env bash
# Install pdflatex from Debian for the test that compiles every generated LaTeX table
# (tests/test_report_tables.py test_latex_compiles; under CI a missing pdflatex fails it).
#
#   sudo bash .ci/install_latex.sh      # does nothing when pdflatex is already on PATH
#
# What the tables need (bench/report/tables.py): they emit no \usepackage of their own; the rules
# \toprule, \midrule, \cmidrule, \bottomrule are booktabs', which the including document loads;
# \multicolumn, \providecommand, \textbf/\underline/\textit and the math symbols are LaTeX's own.
#   texlive-latex-base         pdflatex, the LaTeX kernel, article, Computer Modern fonts
#   texlive-latex-recommended  booktabs
# --no-install-recommends: no documentation, no extra fonts, no latex-extra.
set -euo pipefail

log() { echo "install_latex: $*"; }

if command -v pdflatex >/dev/null; then
    log "pdflatex already on PATH ($(command -v pdflatex)); nothing to install"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        exec sudo -n bash "$0" "$@"
    fi
    echo "install_latex: must run as root to install packages; try: sudo bash $0" >&2
    exit 1
fi

log "installing texlive-latex-base texlive-latex-recommended"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends texlive-latex-base texlive-latex-recommended >/dev/null
log "pdflatex: $(command -v pdflatex)"
