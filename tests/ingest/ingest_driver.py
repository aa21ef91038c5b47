"""Runs the real `opencite ingest` in this process, with one step made to SIGKILL the process
(or to wait for a file) right after its N-th call. Used by the kill-safety and concurrency tests:

    python -m tests.ingest.ingest_driver <point> <n> <ingest args...>

point: add (vector store add), record (record manager update), cleanup (vector store delete),
registry (registry row write), extract (page extraction), hold (wait for <data_dir>/release
after the first vector store add, printing HOLDING).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def _after_nth(owner, name: str, n: int, action) -> None:
    original = getattr(owner, name)
    calls = {"n": 0}

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == n:
            action()
        return result

    setattr(owner, name, wrapper)


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    point, n, args = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    from langchain_chroma import Chroma
    from opencite.ingest import pipeline
    from opencite.store.records import RecordManager
    from opencite.store.registry import Registry

    pipeline.GROUP_CHUNKS = 1  # one page per store step: more steps to be killed between
    if point == "hold":
        release = Path(os.environ["OPENCITE_DATA_DIR"]) / "release"

        def hold() -> None:
            print("HOLDING", flush=True)
            while not release.exists():
                time.sleep(0.1)

        _after_nth(Chroma, "add_documents", 1, hold)
    else:
        targets = {
            "add": (Chroma, "add_documents"),
            "record": (RecordManager, "update"),
            "cleanup": (Chroma, "delete"),
            "registry": (Registry, "put"),
            "extract": (pipeline, "extract"),
        }
        owner, name = targets[point]
        _after_nth(owner, name, n, _kill)
    from opencite.cli import app

    sys.argv = ["opencite", "ingest", *args]
    app()


if __name__ == "__main__":
    main()
