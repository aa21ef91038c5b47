"""Runs the real `opencite sync` in this process, storing one page per group and printing
`STORED n` after each vector-store write (then pausing briefly), so a test can SIGTERM or
SIGKILL it mid-run:

    python -m tests.ingest.sync_driver <sync args...>
"""

from __future__ import annotations

import sys
import time


def main() -> None:
    from langchain_chroma import Chroma

    from opencite.ingest import pipeline

    pipeline.GROUP_CHUNKS = 1  # one page per store step: a signal always lands between pages
    original = Chroma.add_documents
    calls = {"n": 0}

    def add_documents(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        calls["n"] += 1
        print(f"STORED {calls['n']}", flush=True)
        time.sleep(0.3)  # room for the test's signal to land mid-run
        return result

    Chroma.add_documents = add_documents
    from opencite.cli import app

    sys.argv = ["opencite", "sync", *sys.argv[1:]]
    app()


if __name__ == "__main__":
    main()
