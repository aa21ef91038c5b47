"""Retrieval over the index that `ingest/` owns. Dense for now; the retrieval work adds
bm25 / hybrid / MMR / rerank here behind the same `retrieve()` signature."""

from __future__ import annotations

from langchain_core.documents import Document

from opencite.ingest.index import OpenIndex
from opencite.settings import Settings

MODES = ("dense", "bm25", "hybrid")


def retrieve(
    index: OpenIndex, query: str, k: int, settings: Settings, mode: str | None = None
) -> list[tuple[Document, float]]:
    """Top-k (document, score) pairs, best first; score: higher is more relevant."""
    mode = mode or settings.retrieval.mode
    if mode not in MODES:
        raise ValueError(f"retrieval mode {mode!r} is unknown; use one of {', '.join(MODES)}")
    if mode != "dense":
        raise ValueError(
            f"retrieval mode {mode!r} is not available in this build; use 'dense' "
            "(OPENCITE_RETRIEVAL__MODE=dense)"
        )
    return dense(index, query, k)


def dense(index: OpenIndex, query: str, k: int) -> list[tuple[Document, float]]:
    # The collection uses cosine space: LangChain's relevance score is 1 - cosine distance.
    return index.store.similarity_search_with_relevance_scores(query, k=k)
