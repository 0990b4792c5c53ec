"""Subcommands of `pooled`, one module each (see `parties/cli.py`)."""
