"""When the command started: the CLI package imports this first, so `ask --timings` counts the first
and last token from here, as the person waiting sees them."""

import time

STARTED = time.perf_counter()
