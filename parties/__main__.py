"""`python -m parties ...` is the `pooled` command."""

import sys

from parties.cli import main

sys.exit(main())
