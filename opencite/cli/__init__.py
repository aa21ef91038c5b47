"""The `opencite` command line: one module per command group, on top of every other package."""

from opencite.cli.clock import STARTED  # first: the command's clock starts before anything loads
from opencite.cli.main import app, main

__all__ = ["STARTED", "app", "main"]
