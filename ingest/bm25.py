"""The BM25 index kept beside Chroma: SQLite FTS5 over pre-tokenised chunk text, keyed by chunk id.

Chroma stays the source of truth for chunk text and metadata; this index only answers "which
chunk ids match these words". It is one SQLite file, `<index_dir>/bm25/<collection>.sqlite3`, in
WAL mode: one writer at a time (SQLite's own lock), readers never blocked. Every change is a
transaction, so a process killed mid-write leaves the last committed state, never a torn one.

Ranking is FTS5's built-in `bm25()` (Okapi BM25, k1 1.2, b 0.75, as Lucene's defaults). FTS5's
tokenizer only splits on spaces here: the text stored is already analysed in Python the way bm25s
analyses it (lower case, English stopwords, Snowball English stemmer via PyStemmer), and queries
go through the same analyser.

Keeping in step with Chroma (`sync`): the chunk-id sets of both are compared and only the
difference is written — added chunks fetched from Chroma, vanished ones deleted. A missing index is
therefore rebuilt whole by the same code path. Ingest writes each page as it stores it
(`BM25Keeper`, a page listener); readers call `in_step_index`, which checks a cheap change marker
(Chroma's count, the record manager's count and latest write) and syncs when it moved — the way a
replica with its own data dir follows an ingest that ran on another host.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import bm25s
import Stemmer

from opencite.ingest import constants as C
from opencite.ingest.index import records_marker

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
# The analyser is part of the index: queries must be tokenised the same way (recorded in `meta`).
TOKENIZER = {"stopwords": "en", "stemmer": "english", "lower": True}
BATCH = 1000  # chunks per transaction and per Chroma get() while syncing
# A reader checks the change marker at most this share of its time (the check's cost grows with
# the collection: microseconds at a thousand chunks, tens of milliseconds at a million).
CHECK_SHARE = 0.02
MAX_CHECK_INTERVAL = 1.0  # seconds: the longest a reader may lag behind a write made elsewhere

SCHEMA = """
CREATE TABLE IF NOT EXISTS chunks (rowid INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, source TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_source ON chunks(source);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(tokens, tokenize="unicode61 remove_diacritics 0 tokenchars '_'");
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass
class Chunk:
    id: str
    source: str
    text: str


class BM25IndexError(RuntimeError):
    pass


def bm25_path(settings) -> Path:
    return settings.index_dir / "bm25" / f"{settings.chroma.collection}.sqlite3"


def delete_bm25_index(settings) -> None:
    """Remove the BM25 file of the configured collection (with SQLite's WAL and shared-memory files)."""
    path = bm25_path(settings)
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)


@lru_cache(maxsize=1)
def _stemmer():
    return Stemmer.Stemmer(TOKENIZER["stemmer"])


def tokenize(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(texts, lower=TOKENIZER["lower"], stopwords=TOKENIZER["stopwords"], stemmer=_stemmer(),
                          return_ids=False, show_progress=False)


def _batches(items: list, n: int = BATCH):
    for start in range(0, len(items), n):
        yield items[start:start + n]


class BM25Index:
    """Add / replace-by-source / delete, each committed at once; search; `sync` with Chroma."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()  # one connection per index object, shared by threads
        self.checked_at, self.check_interval = float("-inf"), 0.0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=60)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            with self._write():
                for statement in SCHEMA.strip().splitlines():  # executescript would commit
                    self._conn.execute(statement)
                meta = dict(self._conn.execute("SELECT key, value FROM meta"))
                expected = {"format": str(FORMAT_VERSION), "tokenizer": json.dumps(TOKENIZER, sort_keys=True)}
                if meta and {k: meta.get(k) for k in expected} != expected:
                    # A derived index from another analyser: empty it; the next sync refills it.
                    log.warning("BM25 index %s has another format or analyser; rebuilding it from Chroma", self.path)
                    self._conn.execute("DELETE FROM chunks")
                    self._conn.execute("DELETE FROM fts")
                    self._conn.execute("DELETE FROM meta")
                self._conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", expected.items())
        except sqlite3.DatabaseError as exc:
            raise self._unreadable(exc) from exc

    def _unreadable(self, why) -> BM25IndexError:
        return BM25IndexError(
            f"The BM25 index {self.path} is unreadable ({why}). Fix: delete {self.path} (and its -wal/-shm "
            "files); it is rebuilt from Chroma on the next search or ingest."
        )

    @contextmanager
    def _write(self):
        """One transaction holding SQLite's write lock from its start (BEGIN IMMEDIATE)."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _read(self, sql: str, params=()) -> list:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                raise self._unreadable(exc) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- reading ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._read("SELECT COUNT(*) FROM chunks")[0][0]

    def ids(self) -> list[str]:
        return [i for (i,) in self._read("SELECT id FROM chunks")]

    def marker(self) -> str | None:
        rows = self._read("SELECT value FROM meta WHERE key = 'marker'")
        return rows[0][0] if rows else None

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Top-k (chunk id, BM25 score) with score > 0, best first."""
        terms = sorted(set(tokenize([query])[0]))
        if not terms or k <= 0:
            return []
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        rows = self._read(
            "SELECT c.id, -f.rank FROM (SELECT rowid, rank FROM fts WHERE fts MATCH ? ORDER BY rank LIMIT ?) AS f "
            "JOIN chunks AS c ON c.rowid = f.rowid ORDER BY f.rank", (match, k))
        return [(i, float(s)) for i, s in rows if s > 0]

    # -- writing ---------------------------------------------------------------------------
    @staticmethod
    def _delete(conn, rowids: list[int]) -> None:
        conn.executemany("DELETE FROM fts WHERE rowid = ?", [(r,) for r in rowids])
        conn.executemany("DELETE FROM chunks WHERE rowid = ?", [(r,) for r in rowids])

    @staticmethod
    def _rowids(conn, ids: list[str]) -> list[int]:
        out: list[int] = []
        for batch in _batches(ids, 500):
            marks = ",".join("?" * len(batch))
            out += [r for (r,) in conn.execute(f"SELECT rowid FROM chunks WHERE id IN ({marks})", batch)]
        return out

    @classmethod
    def _insert(cls, conn, chunks: list[Chunk]) -> None:
        """Add or overwrite chunks by id (inside the caller's transaction)."""
        cls._delete(conn, cls._rowids(conn, [c.id for c in chunks]))
        for c, tokens in zip(chunks, tokenize([c.text for c in chunks])):
            rowid = conn.execute("INSERT INTO chunks(id, source) VALUES (?, ?)", (c.id, c.source)).lastrowid
            conn.execute("INSERT INTO fts(rowid, tokens) VALUES (?, ?)", (rowid, " ".join(tokens)))

    def add(self, chunks: Iterable[Chunk]) -> None:
        """Add or overwrite chunks by id."""
        for batch in _batches(list(chunks)):
            with self._write() as conn:
                self._insert(conn, batch)

    def delete_ids(self, ids: Iterable[str]) -> int:
        n = 0
        for batch in _batches(list(ids)):
            with self._write() as conn:
                rowids = self._rowids(conn, batch)
                self._delete(conn, rowids)
                n += len(rowids)
        return n

    def replace_source(self, source: str, chunks: Iterable[Chunk]) -> None:
        """The page `source` now has exactly these chunks (none: the page is gone). One transaction."""
        chunks = list(chunks)
        with self._write() as conn:
            self._delete(conn, [r for (r,) in conn.execute("SELECT rowid FROM chunks WHERE source = ?", (source,))])
            self._insert(conn, chunks)

    def delete_source(self, source: str) -> int:
        with self._write() as conn:
            rowids = [r for (r,) in conn.execute("SELECT rowid FROM chunks WHERE source = ?", (source,))]
            self._delete(conn, rowids)
        return len(rowids)

    def clear(self) -> None:
        with self._write() as conn:
            conn.execute("DELETE FROM chunks")
            conn.execute("DELETE FROM fts")
            conn.execute("DELETE FROM meta WHERE key = 'marker'")

    # -- keeping in step with Chroma -------------------------------------------------------
    def sync(self, collection, marker: str | None = None) -> dict[str, int]:
        """Make the chunk ids equal to the collection's by writing only the difference; record
        `marker` (the change marker read before the sync) when done.

        Our ids are listed before Chroma's, and each batch fetches its chunks from Chroma inside
        its own write transaction: an ingest writes Chroma first and this index second, so a page
        it changes meanwhile is either seen here or rewritten by it after this batch commits."""
        mine = set(self.ids())
        theirs = set(collection.get(include=[])["ids"])
        extra, missing = sorted(mine - theirs), sorted(theirs - mine)
        self.delete_ids(extra)
        for batch in _batches(missing):
            with self._write() as conn:
                got = collection.get(ids=batch, include=["documents", "metadatas"])
                self._insert(conn, [Chunk(i, str((m or {}).get(C.SOURCE, "")), t or "")
                                    for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])])
        if marker is not None:
            with self._write() as conn:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('marker', ?)", (marker,))
        return {"added": len(missing), "removed": len(extra)}


def change_marker(collection, settings) -> str:
    """Moves whenever chunks are added to or removed from the collection: Chroma's count, and the
    record manager's count and latest write (a page replaced by one of equal size moves that)."""
    return json.dumps([collection.count(), records_marker(settings)])


_readers: dict[Path, BM25Index] = {}
_readers_lock = threading.Lock()


def in_step_index(collection, settings) -> BM25Index:
    """The BM25 index beside this collection for a reader, kept open per process and brought in
    step when the change marker moved (built whole when missing). Never waits for an ingest: SQLite
    serialises the writes of both."""
    path = bm25_path(settings)
    with _readers_lock:
        ix = _readers.get(path)
        if ix is None or not path.exists():  # first use, or the file was deleted under us
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
                changed = ix.sync(collection, marker)
                log.info("BM25 index %s brought in step with Chroma: %s", path, changed)
            ix.checked_at = time.monotonic()
        return ix


class BM25Keeper:
    """The ingest hook: a page listener that writes each page's chunks into the BM25 index as the
    pipeline stores them in Chroma. It starts by syncing with Chroma (repairing what a killed run
    left, building a missing index) and ends by syncing again and recording the change marker, so
    readers see nothing to catch up on."""

    def __init__(self, settings, idx, reindex: bool = False):
        self.settings, self.idx = settings, idx
        self.index = BM25Index(bm25_path(settings))
        if reindex:
            self.index.clear()
        changed = self.index.sync(idx.collection)
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
        self.index.close()
