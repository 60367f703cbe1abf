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

exec bash "$(dirname "$0")/apt_install.sh" latex pdflatex --no-install-recommends -- \
    texlive-latex-base texlive-latex-recommended
