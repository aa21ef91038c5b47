"""The BM25 index kept beside Chroma: a tantivy index of chunk text, keyed by chunk id.

Chroma stays the source of truth for chunk text and metadata; this index only answers "which
chunk ids match these words". It is one directory, `<index_dir>/bm25/<collection>.tantivy/`, plus
`<collection>.tantivy.json` beside it (format, analyser and the change marker of the last sync).
tantivy allows one writer at a time across processes (its lock file, released when the process
dies, even by SIGKILL) and any number of readers; a commit is atomic, so a process killed
mid-write leaves the last committed state, never a torn one.

Why tantivy and not SQLite FTS5 (the first candidate, measured in #14): at a million synthetic
chunks FTS5's `bm25()` scores every row matching any query term (top-100 p50 221 ms, p95 1060 ms;
build 708 s), while tantivy skips non-competitive blocks (block-max WAND: p50 1.7 ms, p95 10 ms;
build 82 s). Ranking is tantivy's Okapi BM25 (k1 1.2, b 0.75, Lucene's idf and one-byte field
norms). The analyser runs inside tantivy: words of two or more word characters, lower-cased,
Lucene's English stopwords, the Snowball English stemmer, the same tokens bm25s produced here before.
As in Lucene, a deleted chunk keeps counting in the term statistics until tantivy merges its
segment away.

Keeping in step with Chroma (`sync`): the chunk-id sets of both are compared and only the
difference is written — added chunks fetched from Chroma, vanished ones deleted. A missing index is
therefore rebuilt whole by the same code path. Ingest writes each page as it stores it
and readers follow Chroma through `ingest/bm25_keep.py`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import tantivy

from opencite.store import constants as C

log = logging.getLogger(__name__)

FORMAT_VERSION = 3
# The analyser is part of the index: queries are analysed by the same one (recorded in the state file).
ANALYSER = {"tokens": r"(?u)\b\w\w+\b", "lower": True, "stopwords": "english", "stemmer": "english"}
ANALYSER_NAME = "opencite_en"
BATCH = 1000  # chunks per Chroma get() while syncing
WRITER_HEAP = 128_000_000  # bytes of tantivy's indexing arena, shared by its threads
SYNC_COMMIT_INTERVAL = 10.0  # seconds: a long sync commits this often, so a killed one keeps its progress
WRITER_WAIT = 600.0  # seconds an ingest waits for a reader's sync to release the writer lock


@dataclass
class Chunk:
    id: str
    source: str
    text: str


class BM25IndexError(RuntimeError):
    pass


class BM25IndexBusy(BM25IndexError):
    """Another process holds the index's writer lock."""


def bm25_path(settings) -> Path:
    return settings.index_dir / "bm25" / f"{settings.chroma.collection}.tantivy"


def _state_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _legacy_paths(path: Path) -> list[Path]:
    """The SQLite FTS5 file of the same collection (the format before tantivy), with its WAL files."""
    sqlite = path.with_suffix(".sqlite3")
    return [sqlite, sqlite.with_name(sqlite.name + "-wal"), sqlite.with_name(sqlite.name + "-shm")]


def delete_bm25_index(settings) -> None:
    """Remove the BM25 index of the configured collection (and any earlier-format file of it)."""
    path = bm25_path(settings)
    shutil.rmtree(path, ignore_errors=True)
    for p in (_state_path(path), *_legacy_paths(path)):
        p.unlink(missing_ok=True)


@lru_cache(maxsize=1)
def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("id", stored=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("source", stored=False, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("text", stored=False, tokenizer_name=ANALYSER_NAME, index_option="freq")
    return builder.build()


@lru_cache(maxsize=1)
def analyser() -> tantivy.TextAnalyzer:
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(ANALYSER["tokens"]))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.stopword(ANALYSER["stopwords"]))
            .filter(tantivy.Filter.stemmer(ANALYSER["stemmer"]))
            .build())


def _batches(items: list, n: int = BATCH):
    for start in range(0, len(items), n):
        yield items[start:start + n]


class BM25Index:
    """Add / replace-by-source / delete; search; `sync` with Chroma.

    Each write commits at once unless `commit_interval` (seconds) is set, as the ingest's keeper
    does: a commit costs ~0.1 s (it syncs files to disk), so per-page commits would dominate a
    sync of thousands of small pages. The writer lock is taken for each write and released after
    it, unless `hold_writer` is set (an ingest run holds it throughout)."""

    def __init__(self, path: Path, *, commit_interval: float = 0.0, hold_writer: bool = False):
        self.path = Path(path)
        self.commit_interval, self.hold_writer = commit_interval, hold_writer
        self._lock = threading.RLock()  # one writer per index object, shared by threads
        self._writer: tantivy.IndexWriter | None = None
        self._pending, self._committed_at = False, time.monotonic()
        self.checked_at, self.check_interval = float("-inf"), 0.0  # bm25_keep's reader checks
        expected = {"format": FORMAT_VERSION, "analyser": ANALYSER}
        try:
            fresh = not self.path.exists()
            self.path.mkdir(parents=True, exist_ok=True)
            self._index = tantivy.Index(_schema(), path=str(self.path), reuse=True)
            self._index.register_tokenizer(ANALYSER_NAME, analyser())
        except (ValueError, OSError) as exc:
            raise self._unreadable(exc) from exc
        state = self._state()
        if fresh:
            for p in _legacy_paths(self.path):  # a derived index of the earlier format
                p.unlink(missing_ok=True)
        if {k: state.get(k) for k in expected} != expected:
            if state:  # a derived index from another analyser: empty it; the next sync refills it
                log.warning("BM25 index %s has another format or analyser; rebuilding it from Chroma", self.path)
                self.clear()
            self._write_state(expected)

    def _unreadable(self, why) -> BM25IndexError:
        return BM25IndexError(
            f"The BM25 index {self.path} is unreadable ({why}). Fix: delete {self.path} (and "
            f"{_state_path(self.path).name} beside it); it is rebuilt from Chroma on the next search or ingest."
        )

    def _state(self) -> dict:
        try:
            return json.loads(_state_path(self.path).read_text())
        except (OSError, ValueError):
            return {}

    def _write_state(self, state: dict) -> None:
        target = _state_path(self.path)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, sort_keys=True))
        os.replace(tmp, target)

    # -- reading ---------------------------------------------------------------------------
    def _searcher(self) -> tantivy.Searcher:
        for attempt in range(3):
            try:
                self._index.reload()  # ~0.1 ms: picks up commits made by any process
                return self._index.searcher()
            except ValueError as exc:
                # A writer elsewhere may have just replaced the files this reload read about.
                if attempt == 2:
                    raise self._unreadable(exc) from exc
                time.sleep(0.05)

    def __len__(self) -> int:
        return self._searcher().num_docs

    def ids(self) -> list[str]:
        """The committed chunk ids (deleted chunks excluded even before their segment is merged)."""
        live = self._searcher().terms_with_prefix("id", "", filter_query=tantivy.Query.all_query())
        return [term for term, count in live if count]

    def marker(self) -> str | None:
        return self._state().get("marker")

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Top-k (chunk id, BM25 score), best first; each query word counts once."""
        terms = sorted(set(analyser().analyze(query)))
        if not terms or k <= 0:
            return []
        q = tantivy.Query.boolean_query(
            [(tantivy.Occur.Should, tantivy.Query.term_query(_schema(), "text", t)) for t in terms])
        searcher = self._searcher()
        hits = searcher.search(q, k, count=False).hits
        ranked = [(searcher.doc(address)["id"][0], float(score)) for score, address in hits]
        return sorted(ranked, key=lambda hit: (-hit[1], hit[0]))  # ties in id order, whichever segment holds them

    # -- writing ---------------------------------------------------------------------------
    def _acquire(self, wait: float) -> tantivy.IndexWriter:
        deadline = time.monotonic() + wait
        while self._writer is None:
            try:
                self._writer = self._index.writer(heap_size=WRITER_HEAP, num_threads=min(2, os.cpu_count() or 1))
            except ValueError as exc:
                if "LockBusy" not in str(exc):
                    raise self._unreadable(exc) from exc
                if time.monotonic() >= deadline:
                    raise BM25IndexBusy(
                        f"Another process is writing the BM25 index {self.path} (tantivy's writer lock). "
                        "Fix: wait for that ingest or sync to finish.") from exc
                time.sleep(0.05)
        return self._writer

    @contextmanager
    def _writing(self, wait: float, force_commit: bool = False):
        """The writer, for one write; then commit when due, and let the writer lock go unless it
        is held (also when the write failed: what was written is Chroma's truth either way)."""
        with self._lock:
            writer = self._acquire(wait)
            try:
                yield writer
            finally:
                self._pending = True
                if force_commit or time.monotonic() - self._committed_at >= self.commit_interval:
                    self.commit()
                elif not self.hold_writer:
                    self._release()

    def commit(self) -> None:
        with self._lock:
            self._commit_pending()
            if not self.hold_writer:
                self._release()

    def _commit_pending(self) -> None:
        if self._writer is not None and self._pending:
            self._writer.commit()
            self._pending = False
        self._committed_at = time.monotonic()

    def _release(self) -> None:
        if self._writer is not None:
            self._commit_pending()
            self._writer.wait_merging_threads()  # finishes merges, then drops the lock
            self._writer = None

    def close(self) -> None:
        """Commit what is pending and release the writer lock."""
        with self._lock:
            self._release()

    def _add(self, writer, chunks: list[Chunk], overwrite: bool = True) -> None:
        for c in chunks:
            if overwrite:
                writer.delete_documents_by_term("id", c.id)  # deletes only what was added before it
            writer.add_document(tantivy.Document(id=c.id, source=c.source, text=c.text))

    def add(self, chunks: Iterable[Chunk], wait: float = WRITER_WAIT) -> None:
        """Add or overwrite chunks by id."""
        chunks = list(chunks)
        with self._writing(wait) as writer:
            self._add(writer, chunks)

    def replace_source(self, source: str, chunks: Iterable[Chunk], wait: float = WRITER_WAIT) -> None:
        """The page `source` now has exactly these chunks (none: the page is gone); readers see
        the page's old chunks or its new ones, never a mix (one commit)."""
        chunks = list(chunks)
        with self._writing(wait) as writer:
            writer.delete_documents_by_term("source", source)
            self._add(writer, chunks)

    def delete_source(self, source: str, wait: float = WRITER_WAIT) -> int:
        """Remove the page's chunks; returns how many were committed before."""
        on_page = tantivy.Query.term_query(_schema(), "source", source)
        n = self._searcher().search(on_page, 1, count=True).count
        self.replace_source(source, [], wait)
        return n

    def clear(self, wait: float = WRITER_WAIT) -> None:
        with self._writing(wait, force_commit=True) as writer:
            writer.delete_all_documents()
        state = self._state()
        state.pop("marker", None)
        self._write_state(state)

    # -- keeping in step with Chroma -------------------------------------------------------
    def sync(self, collection, marker: str | None = None, wait: float = WRITER_WAIT) -> dict[str, int]:
        """Make the chunk ids equal to the collection's by writing only the difference; record
        `marker` (the change marker read before the sync) when done. Holds the writer lock
        throughout, so no other process writes this index meanwhile."""
        with self._writing(wait, force_commit=True) as writer:
            self._commit_pending()  # ids() lists what is committed
            mine = set(self.ids())
            theirs = set(collection.get(include=[])["ids"])
            extra, missing = sorted(mine - theirs), sorted(theirs - mine)
            for i in extra:
                writer.delete_documents_by_term("id", i)
            for batch in _batches(missing):
                got = collection.get(ids=batch, include=["documents", "metadatas"])
                self._add(writer, [Chunk(i, str((m or {}).get(C.SOURCE, "")), t or "")
                                   for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])],
                          overwrite=False)  # none of them is here: one delete per chunk would only cost
                self._pending = True
                if time.monotonic() - self._committed_at >= max(self.commit_interval, SYNC_COMMIT_INTERVAL):
                    self._commit_pending()
        if marker is not None:
            self._write_state({**self._state(), "marker": marker})
        return {"added": len(missing), "removed": len(extra)}
