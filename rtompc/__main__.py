"""``python -m rtompc`` runs the CLI."""

import sys

from rtompc.cli import main

sys.exit(main())
