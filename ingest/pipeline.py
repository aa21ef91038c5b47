"""One ingest run: discover → fetch (conditional) → extract → chunk → index, per-source outcomes.

Unchanged pages cost no embedding: a 304 to the conditional request (registry's etag /
last-modified) or an unchanged content hash on a 200 both end as `unchanged`. A failed
fetch/extract never touches what the page had in the index.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from langchain_core.documents import Document

from opencite.ingest.chunking import Chunker, LazyChunker
from opencite.ingest.discover import discover
from opencite.ingest.documents import ExtractionError, Fetched, Outcome, SourceDocument
from opencite.ingest.extract import extract
from opencite.ingest.fetch import fetch_many
from opencite.ingest.bm25 import BM25Keeper
from opencite.ingest.index import OpenIndex, open_index
from opencite.ingest.pages import PageListener, delete_page, index_chunks, notify_page_changed, reconcile
from opencite.ingest.registry import Registry, SourceRecord
from opencite.ingest.report import IngestReport, SourceReport
from opencite.settings import Settings

# Pages are stored in groups of about this many chunks: big enough that sorting a group by length
# leaves little padding to embed (6 % at 256 on the shared blog corpus, 17 % at 64), small enough
# that progress moves and a crash loses little work.
GROUP_CHUNKS = 256


class Progress(Protocol):
    def start_fetch(self, total: int) -> None: ...
    def fetched(self, fetched: Fetched) -> None: ...
    def start_embed(self, total: int) -> None: ...
    def embedded(self, n: int) -> None: ...


class _NoProgress:
    def start_fetch(self, total: int) -> None: ...
    def fetched(self, fetched: Fetched) -> None: ...
    def start_embed(self, total: int) -> None: ...
    def embedded(self, n: int) -> None: ...


@dataclass
class SourceSet:
    """What the user listed (see `discover`)."""

    urls: Sequence[str] = ()
    sitemaps: Sequence[str] = ()
    crawl: Sequence[str] = ()
    max_pages: int = 50
    from_files: Sequence[Path] = ()

    def is_empty(self) -> bool:
        return not (self.urls or self.sitemaps or self.crawl or self.from_files)


@dataclass
class _Pending:
    doc: SourceDocument
    chunks: list[Document]
    outcome: Outcome
    report: SourceReport = field(init=False)
    replaces: str | None = None  # the page key the listed URL led to before, when it changed


def registry_for(idx: OpenIndex) -> Registry:
    return Registry(idx.settings.record_manager_url, idx.record_manager.namespace, engine=idx.record_manager.engine)


def now_iso() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def run_ingest(settings: Settings, sources: SourceSet, *, prune: bool = False, reindex: bool = False,
               progress: Progress | None = None, listeners: Iterable[PageListener] = ()) -> IngestReport:
    """Bring the index in step with the listed sources. Raises the index's and discovery's clear
    errors (IndexBusyError, ModelMismatchError, ChromaUnreachableError, EmbeddingModelError,
    SourceListError) before anything is written."""
    progress = progress or _NoProgress()
    listeners = list(listeners)
    # Sources first: a bad source list must fail before the index is opened (or dropped by --reindex).
    urls = asyncio.run(discover(sources.urls, sitemaps=sources.sitemaps, crawl=sources.crawl,
                                max_pages=sources.max_pages, from_files=sources.from_files, cfg=settings.fetch))
    with open_index(settings, write=True, reindex=reindex) as idx:
        registry = registry_for(idx)
        if reindex:
            registry.clear()
        repaired = reconcile(idx, registry)
        report = IngestReport(repaired=repaired)
        # The BM25 index beside Chroma follows every page change as it is stored (a page listener).
        bm25 = BM25Keeper(settings, idx, reindex=reindex)
        listeners = [*listeners, bm25]
        known = registry.by_requested()
        validators = {u: (known[u].etag, known[u].last_modified) for u in urls if u in known}
        progress.start_fetch(len(urls))
        fetched = asyncio.run(fetch_many(urls, settings.fetch, validators=validators, on_done=progress.fetched))

        # Built on first use: pages that are all unchanged need no tokenizer or model.
        chunker = LazyChunker(lambda: Chunker.for_embeddings(idx.embeddings, settings.chunking))
        pending: list[_Pending] = []
        seen: dict[str, str] = {}  # source key -> requested URL, to catch two URLs of one page
        unchanged: list[SourceRecord] = []  # their new fetched-at and validators, written at once
        for item in fetched:
            entry = _classify(item, known.get(item.url), registry, chunker, seen, report, unchanged)
            if entry is not None:
                pending.append(entry)
        registry.put(*unchanged)

        _store(idx, registry, pending, progress, listeners, report)
        if prune:
            listed = set(urls) | set(seen)
            for record in registry.all():
                if record.requested_url not in listed and record.url not in listed:
                    n = delete_page(idx, registry, record.url, listeners)
                    report.add(SourceReport(record.url, record.requested_url, Outcome.PRUNED,
                                            "no longer in the source set", record.title, n))
        bm25.finish()
        return report


def _classify(item: Fetched, previous: SourceRecord | None, registry: Registry, chunker: Chunker,
              seen: dict[str, str], report: IngestReport, unchanged: list[SourceRecord]) -> _Pending | None:
    """The outcome of one fetched source; a _Pending when its chunks must be (re)stored, else
    None (an unchanged page's refreshed record goes to `unchanged`)."""
    fetched_at = now_iso()
    if item.skipped_reason:
        report.add(SourceReport(item.url, item.url, Outcome.SKIPPED, item.skipped_reason))
        return None
    if item.not_modified and previous is not None:
        previous.fetched_at, previous.outcome, previous.reason = fetched_at, Outcome.UNCHANGED.value, "not modified (304)"
        previous.etag, previous.last_modified = item.etag or previous.etag, item.last_modified or previous.last_modified
        unchanged.append(previous)
        seen[previous.url] = item.url
        report.add(SourceReport(previous.url, item.url, Outcome.UNCHANGED, "not modified (304)", previous.title, previous.chunks))
        return None
    try:
        if item.not_modified:  # a 304 although we hold nothing: we sent no validators for it
            raise ExtractionError("answered 304 Not Modified to an unconditional request")
        doc = extract(item, fetched_at=fetched_at)
    except Exception as exc:  # ExtractionError by contract; anything else is a bug, but still one line
        if not isinstance(exc, ExtractionError):
            exc = ExtractionError(f"unexpected {exc.__class__.__name__} while extracting: {exc}")
        _mark_failed(registry, previous, str(exc))
        kept = f" (kept its {previous.chunks} indexed chunks)" if previous and previous.chunks else ""
        report.add(SourceReport(previous.url if previous else item.url, item.url, Outcome.FAILED, f"{exc}{kept}",
                                previous.title if previous else "", previous.chunks if previous else 0))
        return None
    if doc.url in seen:
        report.add(SourceReport(doc.url, item.url, Outcome.SKIPPED, f"same page as {seen[doc.url]}", doc.title))
        return None
    seen[doc.url] = item.url
    old = registry.get(doc.url)
    if old is not None and old.content_hash == doc.content_hash:
        unchanged.append(_record(doc, old.chunks, Outcome.UNCHANGED, "content unchanged"))
        report.add(SourceReport(doc.url, item.url, Outcome.UNCHANGED, "content unchanged", doc.title, old.chunks))
        return None
    chunks = chunker.chunk(doc)
    outcome = Outcome.NEW if old is None else Outcome.UPDATED
    entry = _Pending(doc, chunks, outcome)
    entry.report = SourceReport(doc.url, item.url, outcome, "", doc.title, len(chunks))
    if previous is not None and previous.url != doc.url:  # the listed URL now leads to another page key
        entry.report.reason = f"replaces {previous.url}"
        entry.replaces = previous.url
    return entry


def _store(idx: OpenIndex, registry: Registry, pending: list[_Pending], progress: Progress,
           listeners: list[PageListener], report: IngestReport) -> None:
    progress.start_embed(sum(len(p.chunks) for p in pending))
    group: list[_Pending] = []
    for n, entry in enumerate(pending):
        group.append(entry)
        if sum(len(p.chunks) for p in group) >= GROUP_CHUNKS or n == len(pending) - 1:
            result = index_chunks(idx, [c for p in group for c in p.chunks])
            report.embedded += result["num_added"]
            report.deleted += result["num_deleted"]
            for p in group:
                registry.put(_record(p.doc, len(p.chunks), p.outcome, p.report.reason))
                notify_page_changed(p.doc.url, p.chunks, listeners)
                report.add(p.report)
                if p.replaces:
                    report.deleted += delete_page(idx, registry, p.replaces, listeners)
            progress.embedded(sum(len(p.chunks) for p in group))
            group = []


def _record(doc: SourceDocument, chunks: int, outcome: Outcome, reason: str = "") -> SourceRecord:
    return SourceRecord(url=doc.url, requested_url=doc.requested_url or doc.url, title=doc.title,
                        etag=doc.etag, last_modified=doc.last_modified, content_hash=doc.content_hash,
                        chunks=chunks, fetched_at=doc.fetched_at, outcome=outcome.value, reason=reason)


def _mark_failed(registry: Registry, previous: SourceRecord | None, reason: str) -> None:
    if previous is not None:  # keep what it had; only the outcome changes
        previous.outcome, previous.reason = Outcome.FAILED.value, reason
        registry.put(previous)
