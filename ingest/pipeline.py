"""One ingest run: discover → fetch (conditional) → extract → chunk → index, per-source outcomes.

Unchanged pages cost no embedding: a 304 to the conditional request (registry's etag /
last-modified) or an unchanged content hash on a 200 both end as `unchanged`. A failed
fetch/extract never touches what the page had in the index.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import numpy as np
from langchain_core.documents import Document

from opencite.ingest.chunking import Chunker, LazyChunker, chunk_id
from opencite.ingest.crawl import CrawlBounds, crawl
from opencite.ingest.discover import SourceListError, discover
from opencite.ingest.documents import ExtractionError, Fetched, Outcome, SourceDocument
from opencite.ingest.extract import extract
from opencite.ingest.fetch import STOPPED, fetch_many, open_fetcher
from opencite.store.bm25_keep import BM25Keeper
from opencite.store.index import OpenIndex, open_index
from opencite.ingest.pages import PageListener, delete_page, index_chunks, notify_page_changed, reconcile
from opencite.store.registry import Registry, SourceRecord
from opencite.ingest.report import IngestReport, SourceReport
from opencite.settings import Settings

# Pages are stored in groups of about this many chunks: small enough that progress moves, a stop
# request is honoured soon and a crash loses little work. Storing is cheap; embedding is not tied to it.
GROUP_CHUNKS = 256
# The chunks of up to this many pages' worth (whole pages) are embedded first, as one stream sorted
# by token length in token-budget batches (`store.embeddings.token_budget_batches`): short chunks in
# big batches, long ones in small, almost no padding. Their vectors (float32, 1.5 KB each for 384
# dims: 3 MB per window) are then stored group by group. The window bounds memory on a 100k-chunk
# run and how long a stop request waits; the shared blog (1,894 chunks) is one window.
EMBED_WINDOW = 2048


class Progress(Protocol):
    def start_fetch(self, total: int | None) -> None: ...
    def fetched(self, fetched: Fetched) -> None: ...
    def start_embed(self, total: int) -> None: ...
    def embedded(self, n: int) -> None: ...


class _NoProgress:
    def start_fetch(self, total: int | None) -> None: ...
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
    max_requests: int | None = None  # per crawl root; None: 3 x max_pages
    max_depth: int = 10

    def is_empty(self) -> bool:
        return not (self.urls or self.sitemaps or self.crawl or self.from_files)

    def bounds(self) -> CrawlBounds:
        if self.max_pages < 1:
            raise SourceListError(f"--max-pages {self.max_pages}: must be at least 1")
        if self.max_requests is not None and self.max_requests < 1:
            raise SourceListError(f"--max-requests {self.max_requests}: must be at least 1")
        return CrawlBounds(self.max_pages, self.max_requests, self.max_depth)


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
               progress: Progress | None = None, listeners: Iterable[PageListener] = (),
               should_stop: Callable[[], bool] | None = None) -> IngestReport:
    """Bring the index in step with the listed sources. Raises the index's and discovery's clear
    errors (IndexBusyError, ModelMismatchError, ChromaUnreachableError, EmbeddingModelError,
    SourceListError) before anything is written.

    prune: remove indexed pages that left the source set, and pages that answered 404/410 on two
    runs in a row (a transient failure keeps a page's chunks).
    should_stop: asked before each fetch and each group of pages stored; once it says yes the run
    ends cleanly (pages not reached keep what they had, nothing is pruned, report.interrupted)."""
    progress = progress or _NoProgress()
    listeners = list(listeners)
    # Sources first (crawls included: their bodies are the ones ingested): a bad source list must
    # fail before the index is opened (or dropped by --reindex).
    found = asyncio.run(discover(sources.urls, sitemaps=sources.sitemaps, from_files=sources.from_files,
                                 cfg=settings.fetch))
    crawled: list[Fetched] = []
    roots = list(dict.fromkeys([*sources.crawl, *found.crawl]))
    if roots:
        progress.start_fetch(None)
        crawled = asyncio.run(crawl_all(roots, sources.bounds(), settings.fetch, progress.fetched))
    with open_index(settings, write=True, reindex=reindex) as idx:
        registry = registry_for(idx)
        if reindex:
            registry.clear()
        repaired = reconcile(idx, registry)
        report = IngestReport(repaired=repaired)
        # The BM25 index beside Chroma follows every page change as it is stored (a page listener).
        bm25 = BM25Keeper(settings, idx, reindex=reindex)
        listeners = [*listeners, bm25]
        try:
            known = registry.by_requested()
            crawled_urls = {f.url for f in crawled}
            urls = [u for u in found.urls if u not in crawled_urls]
            to_fetch = [u for u in urls if not _lastmod_unchanged(known.get(u), found.lastmod.get(u), report)]
            validators = {u: (known[u].etag, known[u].last_modified) for u in to_fetch if u in known}
            progress.start_fetch(len(to_fetch))
            fetched = asyncio.run(fetch_many(to_fetch, settings.fetch, validators=validators, on_done=progress.fetched,
                                             should_stop=should_stop))

            # Built on first use: pages that are all unchanged need no tokenizer or model.
            chunker = LazyChunker(lambda: Chunker.for_embeddings(idx.embeddings, settings.chunking))
            run = _Run(registry, chunker, report, found.lastmod, prune)
            pending = [entry for item in [*fetched, *crawled]
                       if (entry := _classify(item, known.get(item.url), run)) is not None]
            registry.put(*run.unchanged)

            _store(idx, registry, pending, progress, listeners, report, should_stop or (lambda: False))
            if prune and not report.interrupted:
                for record in run.gone:
                    n = delete_page(idx, registry, record.url, listeners)
                    report.add(SourceReport(record.url, record.requested_url, Outcome.PRUNED,
                                            f"gone: {record.reason} on {record.gone} runs in a row",
                                            record.title, n))
                listed = set(found.urls) | crawled_urls | set(run.seen)
                for record in registry.all():
                    if record.requested_url not in listed and record.url not in listed:
                        n = delete_page(idx, registry, record.url, listeners)
                        report.add(SourceReport(record.url, record.requested_url, Outcome.PRUNED,
                                                "no longer in the source set", record.title, n))
            bm25.finish()
        finally:
            bm25.close()  # commits what was written and releases the writer lock, also when the run fails
        return report


async def crawl_all(roots: Sequence[str], bounds: CrawlBounds, cfg, on_done=None) -> list[Fetched]:
    async with open_fetcher(cfg) as fetcher:
        out: list[Fetched] = []
        for root in roots:
            out += await crawl(fetcher, root, bounds, on_done)
        return out


def _lastmod_unchanged(record: SourceRecord | None, lastmod: str | None, report: IngestReport) -> bool:
    """True (and reported unchanged) when the sitemap's <lastmod> for a page is no later than the
    one it had when the page was last fetched successfully: no request needed at all."""
    if record is None or not lastmod or not record.lastmod or not record.content_hash \
            or record.outcome == Outcome.FAILED.value:
        return False
    if datetime.fromisoformat(lastmod) > datetime.fromisoformat(record.lastmod):
        return False
    report.add(SourceReport(record.url, record.requested_url, Outcome.UNCHANGED,
                            "sitemap lastmod unchanged (not fetched)", record.title, record.chunks))
    return True


@dataclass
class _Run:
    """What classifying one run's fetched sources shares."""

    registry: Registry
    chunker: Chunker
    report: IngestReport
    lastmod: dict[str, str]
    prune: bool
    seen: dict[str, str] = field(default_factory=dict)  # source key -> requested URL (two URLs, one page)
    unchanged: list[SourceRecord] = field(default_factory=list)  # refreshed records, written at once
    gone: list[SourceRecord] = field(default_factory=list)  # 404/410 twice in a row: to prune


def _classify(item: Fetched, previous: SourceRecord | None, run: _Run) -> _Pending | None:
    """The outcome of one fetched source; a _Pending when its chunks must be (re)stored, else
    None (an unchanged page's refreshed record goes to `run.unchanged`)."""
    registry, report, seen = run.registry, run.report, run.seen
    fetched_at = now_iso()
    if item.skipped_reason:
        report.add(SourceReport(item.url, item.url, Outcome.SKIPPED, item.skipped_reason))
        if item.skipped_reason.startswith(STOPPED):
            report.interrupted = True
        return None
    if item.not_modified and previous is not None:
        previous.fetched_at, previous.outcome, previous.reason = fetched_at, Outcome.UNCHANGED.value, "not modified (304)"
        previous.etag, previous.last_modified = item.etag or previous.etag, item.last_modified or previous.last_modified
        previous.lastmod, previous.gone = run.lastmod.get(item.url) or previous.lastmod, 0
        run.unchanged.append(previous)
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
        if previous is not None:  # keep what it had; only the outcome changes
            previous.outcome, previous.reason, previous.failed_at = Outcome.FAILED.value, str(exc), fetched_at
            previous.gone = previous.gone + 1 if item.status in (404, 410) else 0
            registry.put(previous)
            if run.prune and previous.gone >= 2:
                run.gone.append(previous)
                return None
        kept = f" (kept its {previous.chunks} indexed chunks)" if previous and previous.chunks else ""
        report.add(SourceReport(previous.url if previous else item.url, item.url, Outcome.FAILED, f"{exc}{kept}",
                                previous.title if previous else "", previous.chunks if previous else 0))
        return None
    doc.sitemap_lastmod = run.lastmod.get(item.url)
    if doc.url in seen:
        report.add(SourceReport(doc.url, item.url, Outcome.SKIPPED, f"same page as {seen[doc.url]}", doc.title))
        return None
    seen[doc.url] = item.url
    old = registry.get(doc.url)
    if old is not None and old.content_hash == doc.content_hash:
        run.unchanged.append(_record(doc, old.chunks, Outcome.UNCHANGED, "content unchanged"))
        report.add(SourceReport(doc.url, item.url, Outcome.UNCHANGED, "content unchanged", doc.title, old.chunks))
        return None
    chunks = run.chunker.chunk(doc)
    outcome = Outcome.NEW if old is None else Outcome.UPDATED
    entry = _Pending(doc, chunks, outcome)
    entry.report = SourceReport(doc.url, item.url, outcome, "", doc.title, len(chunks))
    if previous is not None and previous.url != doc.url:  # the listed URL now leads to another page key
        entry.report.reason = f"replaces {previous.url}"
        entry.replaces = previous.url
    return entry


def _store(idx: OpenIndex, registry: Registry, pending: list[_Pending], progress: Progress,
           listeners: list[PageListener], report: IngestReport, should_stop: Callable[[], bool]) -> None:
    """Embed a window of pages' chunks (one length-sorted call), then store them in groups of whole
    pages with those vectors; should_stop is asked before each group (and so before each window)."""
    progress.start_embed(sum(len(p.chunks) for p in pending))
    group: list[_Pending] = []
    vectors: dict[str, np.ndarray] = {}
    window_end = 0
    for n, entry in enumerate(pending):
        if not group:
            if should_stop():  # between groups: every stored page is whole
                report.interrupted = True
                for p in pending[n:]:
                    report.add(SourceReport(p.doc.url, p.report.requested_url, Outcome.SKIPPED,
                                            STOPPED + " before it was stored", p.doc.title))
                return
            if n == window_end:
                window = _window(pending, n)
                window_end = n + len(window)
                vectors = _embed_window(idx, [c for p in window for c in p.chunks])
        group.append(entry)
        if sum(len(p.chunks) for p in group) >= GROUP_CHUNKS or n == window_end - 1:
            result = index_chunks(idx, [c for p in group for c in p.chunks], vectors)
            report.embedded += result["num_added"]
            report.deleted += result["num_deleted"]
            registry.put(*[_record(p.doc, len(p.chunks), p.outcome, p.report.reason) for p in group])
            for p in group:
                notify_page_changed(p.doc.url, p.chunks, listeners)
                report.add(p.report)
                if p.replaces:
                    report.deleted += delete_page(idx, registry, p.replaces, listeners)
            progress.embedded(sum(len(p.chunks) for p in group))
            group = []


def _window(pending: list[_Pending], start: int) -> list[_Pending]:
    """Whole pages from `start` up to EMBED_WINDOW chunks (at least one page)."""
    end, size = start, 0
    while end < len(pending) and (end == start or size + len(pending[end].chunks) <= EMBED_WINDOW):
        size += len(pending[end].chunks)
        end += 1
    return pending[start:end]


def _embed_window(idx: OpenIndex, chunks: list[Document]) -> dict[str, np.ndarray]:
    """Text -> vector for the window's chunks the index does not hold yet, in one embedding call
    (the embedder sorts it by token length and batches it by tokens). A chunk already recorded
    (a page indexed again after a killed run) is not embedded; the indexing step skips it too."""
    recorded = idx.record_manager.exists([chunk_id(c) for c in chunks]) if chunks else []
    texts = list(dict.fromkeys(c.page_content for c, done in zip(chunks, recorded) if not done))
    if not texts:
        return {}
    vectors = np.asarray(idx.embeddings.embed_documents(texts), dtype=np.float32)
    return dict(zip(texts, vectors))


def _record(doc: SourceDocument, chunks: int, outcome: Outcome, reason: str = "") -> SourceRecord:
    return SourceRecord(url=doc.url, requested_url=doc.requested_url or doc.url, title=doc.title,
                        etag=doc.etag, last_modified=doc.last_modified, content_hash=doc.content_hash,
                        chunks=chunks, fetched_at=doc.fetched_at, outcome=outcome.value, reason=reason,
                        lastmod=doc.sitemap_lastmod)


def setup_errors() -> tuple[type[BaseException], ...]:
    """Ingest's errors that mean "fix the input or the set-up": their messages name the input and
    the fix, so callers print them (the CLI) or record them (sync) instead of a traceback."""
    from opencite.ingest.discover import SourceListError
    from opencite.store.embedder_choice import EmbeddingModelError
    from opencite.store.errors import IndexError_

    return (IndexError_, EmbeddingModelError, SourceListError)
