"""``python -m ntga`` runs the command line."""

import sys

from ntga.cli import main

sys.exit(main())
