"""The `opencite` command line: one module per command group, on top of every other package."""

from opencite.cli.main import app, main

__all__ = ["app", "main"]
