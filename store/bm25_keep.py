"""Keeping the BM25 index (ingest/bm25.py) in step with Chroma, for ingest and for readers.

Ingest writes each page as it stores it (`BM25Keeper`, a page listener; it commits every few
seconds, and a run killed before a commit is repaired by the next run's sync). Readers call
`in_step_index`, which checks a cheap change marker (Chroma's count, the record manager's count and
latest write) and syncs when it moved — the way a replica with its own data dir follows an ingest
that ran on another host.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from opencite.store.bm25 import BM25Index, BM25IndexBusy, Chunk, bm25_path
from opencite.store.index import records_marker

log = logging.getLogger(__name__)

# A reader checks the change marker at most this share of its time (the check's cost grows with
# the collection: microseconds at a thousand chunks, tens of milliseconds at a million).
CHECK_SHARE = 0.02
MAX_CHECK_INTERVAL = 1.0  # seconds: the longest a reader may lag behind a write made elsewhere


def change_marker(collection, settings) -> str:
    """Moves whenever chunks are added to or removed from the collection: Chroma's count, and the
    record manager's count and latest write (a page replaced by one of equal size moves that)."""
    return json.dumps([collection.count(), records_marker(settings)])


_readers: dict[Path, BM25Index] = {}
_readers_lock = threading.Lock()


def in_step_index(collection, settings) -> BM25Index:
    """The BM25 index beside this collection for a reader, kept open per process and brought in
    step when the change marker moved (built whole when missing). Never waits for an ingest: while
    one holds the writer lock (it brings the index in step itself), the reader searches what is
    committed and tries again at its next check."""
    path = bm25_path(settings)
    with _readers_lock:
        ix = _readers.get(path)
        if ix is None or not path.exists():  # first use, or the index was deleted under us
            if ix is not None:
                ix.close()
            ix = _readers[path] = BM25Index(path)
        now = time.monotonic()
        if now - ix.checked_at >= ix.check_interval:
            marker = change_marker(collection, settings)
            # Spaced by what the marker check costs, not by a sync: one long build must not leave
            # a reader blind to later changes for minutes.
            ix.check_interval = min((time.monotonic() - now) / CHECK_SHARE, MAX_CHECK_INTERVAL)
            if marker != ix.marker():
                try:
                    changed = ix.sync(collection, marker, wait=0)
                    log.info("BM25 index %s brought in step with Chroma: %s", path, changed)
                except BM25IndexBusy:
                    log.debug("BM25 index %s is being written by another process; searching what is committed", path)
            ix.checked_at = time.monotonic()
        return ix


class BM25Keeper:
    """The ingest hook: a page listener that writes each page's chunks into the BM25 index as the
    pipeline stores them in Chroma. It holds the writer lock for the run, starts by syncing with
    Chroma (repairing what a killed run left, building a missing index) and ends by syncing again
    and recording the change marker, so readers see nothing to catch up on. Call `close()` when the
    run ends either way."""

    COMMIT_INTERVAL = 2.0  # seconds: how far readers may lag behind the ingest's pages

    def __init__(self, settings, idx, reindex: bool = False):
        self.settings, self.idx = settings, idx
        self.index = BM25Index(bm25_path(settings), commit_interval=self.COMMIT_INTERVAL, hold_writer=True)
        try:
            if reindex:
                self.index.clear()
            changed = self.index.sync(idx.collection)
        except BaseException:
            self.index.close()
            raise
        if any(changed.values()):
            log.info("BM25 index behind Chroma at the start of the run; brought in step: %s", changed)

    def __call__(self, source: str, chunks) -> None:
        self.index.replace_source(source, [Chunk(str(d.id), source, d.page_content) for d in chunks])

    def finish(self) -> None:
        marker = change_marker(self.idx.collection, self.settings)
        changed = self.index.sync(self.idx.collection, marker)
        if any(changed.values()):
            # Chroma holds chunks no listener reported (written by other means): Chroma wins.
            log.warning("BM25 index out of step with Chroma after ingest; brought in step: %s", changed)

    def close(self) -> None:
        self.index.close()
