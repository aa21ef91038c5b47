"""Page-level writes to the index, in a crash-safe order, and the hook that reports them.

Every write goes vector store → record manager → registry. A SIGKILL between two of them leaves
either vector-store ids without records (strays) or records without vectors (orphans), or a
registry that lags; `reconcile` at the start of every run repairs all three, so a killed run
followed by a new run ends equal to a clean run.

The hook: `add_page_listener(fn)` registers `fn(source, chunks)`, called after a page's chunks
are stored (`chunks` = its full new set of chunks, each with `.id`) and after a page is deleted
(`chunks` = []). A BM25 index keeps in step with the vector store through it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langchain_chroma import Chroma
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.indexing import index as lc_index
from sqlalchemy import text

from opencite.store import constants as C
from opencite.ingest.chunking import chunk_id
from opencite.store.index import OpenIndex
from opencite.store.registry import Registry

PageListener = Callable[[str, list[Document]], None]
_listeners: list[PageListener] = []


def add_page_listener(listener: PageListener) -> None:
    """Call `listener(source, chunks)` whenever a page's chunks are added, replaced or deleted."""
    if listener not in _listeners:
        _listeners.append(listener)


def remove_page_listener(listener: PageListener) -> None:
    if listener in _listeners:
        _listeners.remove(listener)


def notify_page_changed(source: str, chunks: list[Document], extra: Iterable[PageListener] = ()) -> None:
    for listener in [*_listeners, *extra]:
        listener(source, chunks)


def index_chunks(idx: OpenIndex, chunks: Sequence[Document], vectors: Mapping[str, Any] | None = None) -> dict:
    """Store the chunks of whole pages; each page's chunks from earlier versions are removed.

    LangChain's indexing API: chunks whose id is already recorded are not embedded again.
    vectors: text -> vector computed beforehand (the pipeline embeds a window of pages as one
    length-sorted stream); a text it lacks is embedded here. The group is one embedding call."""
    for chunk in chunks:
        chunk.id = chunk_id(chunk)
    link_neighbours(chunks)
    store = idx.store
    if vectors:
        # The same collection through Chroma's public constructor, its embeddings answered from `vectors`.
        store = Chroma(client=idx.client, collection_name=idx.collection.name,
                       embedding_function=Precomputed(vectors, idx.embeddings))
    return lc_index(
        chunks,
        idx.record_manager,
        store,
        cleanup="incremental",
        source_id_key=C.SOURCE,
        key_encoder=chunk_id,
        batch_size=max(len(chunks), 1),
    )


class Precomputed(Embeddings):
    """Vectors looked up by text; texts it lacks go to `fallback` (in one call)."""

    def __init__(self, vectors: Mapping[str, Any], fallback: Embeddings):
        self.vectors, self.fallback = vectors, fallback

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        missing = [t for t in dict.fromkeys(texts) if t not in self.vectors]
        found = dict(zip(missing, self.fallback.embed_documents(missing))) if missing else {}
        return [list(map(float, self.vectors[t])) if t in self.vectors else found[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.fallback.embed_query(text)


def link_neighbours(chunks: Sequence[Document]) -> None:
    """Each chunk names the ids of the chunks either side of it on its page version, so a reader
    fetches a hit's neighbours by id (a key lookup) instead of filtering the collection. Ids do not
    depend on this metadata, so adding it changes no id."""
    at = {(c.metadata[C.SOURCE], c.metadata.get(C.CONTENT_HASH), c.metadata[C.CHUNK_INDEX]): c for c in chunks}
    for (source, version, position), chunk in at.items():
        for key, step in ((C.PREV_CHUNK, -1), (C.NEXT_CHUNK, 1)):
            other = at.get((source, version, position + step))
            if other is not None:
                chunk.metadata[key] = other.id


def delete_page(idx: OpenIndex, registry: Registry, source: str, listeners: Iterable[PageListener] = ()) -> int:
    """Remove one page (its chunks, records and registry row). Returns the chunks removed."""
    rm = idx.record_manager
    keys = rm.list_keys(group_ids=[source])
    # Chunks with this source that no record knows (a crash before recording) go too.
    stray = idx.collection.get(where={C.SOURCE: source}, include=[])["ids"]
    ids = sorted(set(keys) | set(stray))
    if ids:
        idx.store.delete(ids)
    if keys:
        rm.delete_keys(keys)
    registry.delete(source)
    notify_page_changed(source, [], listeners)
    return len(ids)


def chunk_counts(idx: OpenIndex) -> dict[str, int]:
    """source -> number of recorded chunks, straight from the record manager's table."""
    rm = idx.record_manager
    with rm.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT group_id, COUNT(*) FROM upsertion_record WHERE namespace = :ns GROUP BY group_id"),
            {"ns": rm.namespace},
        )
        return {group: n for group, n in rows}


def reconcile(idx: OpenIndex, registry: Registry) -> dict[str, int]:
    """Repair what a killed run left behind. Returns counts of what was repaired."""
    rm = idx.record_manager
    in_store = set(idx.collection.get(include=[])["ids"])
    recorded = set(rm.list_keys())
    strays = sorted(in_store - recorded)  # stored, never recorded: killed before the record write
    orphans = sorted(recorded - in_store)  # recorded, no vector: killed during a cleanup
    for start in range(0, len(strays), 1000):
        idx.store.delete(strays[start:start + 1000])
    if orphans:
        rm.delete_keys(orphans)
    # A registry row that disagrees with the records (killed mid-page, or before the registry
    # write) is made stale: the next fetch is unconditional and the page is indexed again,
    # which embeds only what is missing and cleans up what is left over.
    counts = chunk_counts(idx)
    stale = 0
    for record in registry.all():
        if record.content_hash and counts.get(record.url, 0) != record.chunks:
            record.content_hash, record.etag, record.last_modified = "", None, None
            registry.put(record)
            stale += 1
    return {"strays": len(strays), "orphans": len(orphans), "stale": stale}
