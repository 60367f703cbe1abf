"""``python -m bench.cli``: the same command line as the ``bench`` entry point."""

import sys

from bench.cli import main

sys.exit(main())
