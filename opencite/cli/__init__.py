"""The `opencite` command line: one module per command group, on top of every other package."""

import time

# When the command started (this package is the first thing it imports): `ask --timings` counts
# the first and last token from here, as the person waiting sees them.
STARTED = time.perf_counter()

from opencite.cli.main import app, main  # noqa: E402

__all__ = ["STARTED", "app", "main"]
