"""The BM25 index kept beside Chroma: a persisted bm25s index keyed by chunk id.

Chroma stays the source of truth for chunk text and metadata; this index only answers
"which chunk ids match these words". It lives in `<index_dir>/bm25/<collection>/` as
immutable version folders (`v-<timestamp>/`: the bm25s matrices, `chunks.jsonl` with id,
source and text per row, `manifest.json`) plus a `CURRENT` file naming the live version.
A save writes a new version folder, then replaces `CURRENT` atomically (write temp +
rename), so a killed ingest leaves the previous version live and nothing half-written is
ever read. Readers notice a new `CURRENT` and reload.

bm25s cannot add documents to a built index, so every save re-indexes the whole chunk list
(tokenising ~100k chunks takes seconds); ingest batches its changes and saves once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import bm25s
import numpy as np
import Stemmer
from filelock import FileLock

from opencite.ingest import constants as C

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CURRENT = "CURRENT"
IN_MEMORY = "<in memory>"  # version name of an index built from Chroma and not saved
# The tokenizer is part of the index: queries must be tokenised the same way.
TOKENIZER = {"stopwords": "en", "stemmer": "english", "lower": True}


@dataclass
class Chunk:
    id: str
    source: str
    text: str


class BM25IndexError(RuntimeError):
    pass


def bm25_dir(settings) -> Path:
    return settings.index_dir / "bm25" / settings.chroma.collection


def _stemmer():
    return Stemmer.Stemmer(TOKENIZER["stemmer"])


def tokenize(texts: list[str]) -> list[list[str]]:
    return bm25s.tokenize(
        texts,
        lower=TOKENIZER["lower"],
        stopwords=TOKENIZER["stopwords"],
        stemmer=_stemmer(),
        return_ids=False,
        show_progress=False,
    )


def ids_fingerprint(ids: Iterable[str]) -> str:
    h = hashlib.sha256()
    for i in sorted(ids):
        h.update(i.encode())
        h.update(b"\0")
    return h.hexdigest()


class BM25Index:
    """A BM25 index over chunks, with add / replace-by-source / delete-by-source and an
    atomic `save()`. Searching reloads when another process saved a newer version."""

    def __init__(self, directory: Path, k1: float = 1.2, b: float = 0.75):
        # k1/b only apply when (re)indexing; a saved index keeps the ones it was built with.
        self.directory = Path(directory)
        self.k1, self.b = k1, b
        self._version: str | None = None
        self._chunks: dict[str, Chunk] | None = None  # loaded lazily: only writers need text
        self._ids: list[str] = []
        self._retriever: bm25s.BM25 | None = None
        self._dirty = False

    # -- reading ---------------------------------------------------------------------------
    def current_version(self) -> str | None:
        try:
            return (self.directory / CURRENT).read_text().strip() or None
        except FileNotFoundError:
            return None

    def exists(self) -> bool:
        v = self.current_version()
        return v is not None and (self.directory / v / "manifest.json").exists()

    def manifest(self) -> dict | None:
        v = self.current_version()
        if v is None:
            return None
        try:
            return json.loads((self.directory / v / "manifest.json").read_text())
        except FileNotFoundError:
            return None

    def _refresh(self) -> None:
        """Load the live version unless it is the one in memory (or we hold unsaved edits)."""
        if self._dirty:
            return
        for attempt in range(3):
            v = self.current_version()
            if v == self._version or (v is None and self._version == IN_MEMORY):
                return
            if v is None:
                self._version, self._ids, self._retriever, self._chunks = None, [], None, None
                return
            vdir = self.directory / v
            try:
                ids = json.loads((vdir / "ids.json").read_text())
                retriever = bm25s.BM25.load(str(vdir), mmap=False, show_progress=False) if ids else None
                break
            except FileNotFoundError:
                if attempt < 2 and self.current_version() != v:
                    continue  # a writer switched versions and removed this one meanwhile
                raise self._unreadable(vdir, "files missing")
            except ValueError as exc:
                raise self._unreadable(vdir, exc) from exc
        self._version, self._ids, self._retriever, self._chunks = v, ids, retriever, None

    def _unreadable(self, vdir: Path, why) -> BM25IndexError:
        return BM25IndexError(
            f"The BM25 index in {vdir} is unreadable ({why}). Fix: delete {self.directory}; it is "
            "rebuilt from Chroma on the next search or ingest."
        )

    def __len__(self) -> int:
        self._refresh()
        return len(self._chunks) if self._chunks is not None else len(self._ids)

    def ids(self) -> list[str]:
        self._refresh()
        return list(self._chunks) if self._chunks is not None else list(self._ids)

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        """Top-k (chunk id, BM25 score) with score > 0, best first."""
        if self._dirty:
            self._rebuild_retriever()
        self._refresh()
        if self._retriever is None or not self._ids or k <= 0:
            return []
        vocab = self._retriever.vocab_dict
        tokens = [t for t in tokenize([query])[0] if t in vocab]
        if not tokens:
            return []
        scores = self._retriever.get_scores(tokens)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self._ids[i], float(scores[i])) for i in top if scores[i] > 0]

    # -- writing ---------------------------------------------------------------------------
    def _load_chunks(self) -> dict[str, Chunk]:
        if self._chunks is None:
            self._refresh()
            chunks: dict[str, Chunk] = {}
            if self._version is not None:
                with open(self.directory / self._version / "chunks.jsonl", encoding="utf-8") as f:
                    for line in f:
                        row = json.loads(line)
                        chunks[row["id"]] = Chunk(row["id"], row["source"], row["text"])
            self._chunks = chunks
        return self._chunks

    def add(self, chunks: Iterable[Chunk]) -> None:
        """Add or overwrite chunks by id."""
        store = self._load_chunks()
        for c in chunks:
            store[c.id] = c
        self._dirty = True

    def delete_ids(self, ids: Iterable[str]) -> int:
        store = self._load_chunks()
        n = 0
        for i in ids:
            if store.pop(i, None) is not None:
                n += 1
        self._dirty = self._dirty or n > 0
        return n

    def delete_source(self, source: str) -> int:
        store = self._load_chunks()
        return self.delete_ids([i for i, c in store.items() if c.source == source])

    def replace_source(self, source: str, chunks: Iterable[Chunk]) -> None:
        """The page `source` now has exactly these chunks."""
        self.delete_source(source)
        self.add(chunks)
        self._dirty = True

    def clear(self) -> None:
        self._chunks = {}
        self._dirty = True

    def _rebuild_retriever(self) -> None:
        store = self._load_chunks()
        self._ids = list(store)
        if self._ids:
            retriever = bm25s.BM25(k1=self.k1, b=self.b)
            retriever.index(tokenize([c.text for c in store.values()]), show_progress=False)
            self._retriever = retriever
        else:
            self._retriever = None

    def save(self, reindex: bool = True) -> None:
        """Write a new version, switch CURRENT to it atomically, drop older versions."""
        if reindex:
            self._rebuild_retriever()
        self.directory.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.directory) + ".lock"):
            version = f"v-{time.time_ns()}-{uuid.uuid4().hex[:6]}"
            tmp = self.directory / f".tmp-{version}"
            tmp.mkdir()
            try:
                store = self._chunks or {}
                with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as f:
                    for c in store.values():
                        f.write(json.dumps({"id": c.id, "source": c.source, "text": c.text}) + "\n")
                (tmp / "ids.json").write_text(json.dumps(self._ids))
                if self._retriever is not None:
                    self._retriever.save(str(tmp), show_progress=False)
                manifest = {
                    "format": FORMAT_VERSION,
                    "count": len(self._ids),
                    "ids_sha256": ids_fingerprint(self._ids),
                    "tokenizer": TOKENIZER,
                    "k1": self.k1,
                    "b": self.b,
                }
                (tmp / "manifest.json").write_text(json.dumps(manifest))
                _fsync_dir(tmp)
                os.replace(tmp, self.directory / version)
                pointer = self.directory / f".{CURRENT}.{uuid.uuid4().hex[:6]}"
                pointer.write_text(version)
                os.replace(pointer, self.directory / CURRENT)
                _fsync_dir(self.directory)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            self._version, self._dirty = version, False
            self._drop_old_versions(keep=version)

    def _drop_old_versions(self, keep: str) -> None:
        for p in self.directory.iterdir():
            if p.is_dir() and p.name != keep and (p.name.startswith("v-") or p.name.startswith(".tmp-")):
                shutil.rmtree(p, ignore_errors=True)

    # -- keeping in step with Chroma -------------------------------------------------------
    def load_from_chroma(self, collection, batch_size: int = 5000) -> int:
        """Like `rebuild_from_chroma` but in memory only (for a reader while a writer works)."""
        chunks: dict[str, Chunk] = {}
        total = collection.count()
        for offset in range(0, total, batch_size):
            got = collection.get(include=["documents", "metadatas"], limit=batch_size, offset=offset)
            for i, text, meta in zip(got["ids"], got["documents"], got["metadatas"]):
                chunks[i] = Chunk(i, str((meta or {}).get(C.SOURCE, "")), text or "")
        self._chunks = chunks
        self._rebuild_retriever()
        # Not saved: the next CURRENT written by anyone replaces this in-memory copy.
        self._dirty, self._version = False, IN_MEMORY
        return len(chunks)

    def rebuild_from_chroma(self, collection, batch_size: int = 5000) -> int:
        """Replace the whole index with the chunks stored in a Chroma collection; returns count."""
        n = self.load_from_chroma(collection, batch_size)
        self.save(reindex=False)
        return n

    def is_stale(self, collection, deep: bool = False) -> bool:
        """Missing, or its chunk count differs from Chroma's. deep=True also compares the id
        sets (chunk ids hash the chunk's content, so this catches edits too)."""
        m = self.manifest()
        if m is None or m.get("format") != FORMAT_VERSION or m.get("count") != collection.count():
            return True
        if deep:
            return m.get("ids_sha256") != ids_fingerprint(collection.get(include=[])["ids"])
        return False


class BM25Keeper:
    """The ingest hook: a page listener that keeps the BM25 index in step with Chroma during a
    run, saved once at the end (`finish`). A run that dies before `finish` leaves the BM25
    index behind Chroma; the next run (or the next search) sees it is stale and rebuilds."""

    def __init__(self, settings, idx, reindex: bool = False):
        self.idx = idx
        self.index = BM25Index(bm25_dir(settings), settings.retrieval.bm25_k1, settings.retrieval.bm25_b)
        if reindex:
            self.index.clear()
        elif self.index.is_stale(idx.collection, deep=True):
            self.index.rebuild_from_chroma(idx.collection)

    def __call__(self, source: str, chunks) -> None:
        self.index.replace_source(source, [Chunk(str(d.id), source, d.page_content) for d in chunks])

    def finish(self) -> None:
        if self.index._dirty:
            self.index.save()
        if self.index.is_stale(self.idx.collection):
            # Chroma holds chunks no listener reported (written by other means): trust Chroma.
            log.warning("BM25 index out of step with Chroma after ingest; rebuilding it from Chroma")
            self.index.rebuild_from_chroma(self.idx.collection)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
