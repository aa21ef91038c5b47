"""Retrieval over the index that `ingest/` owns: dense, BM25 or hybrid, then optionally a
cross-encoder rerank and MMR diversification, all behind one `retrieve()` signature."""

from __future__ import annotations

from langchain_core.documents import Document

from opencite.app import fusion
from opencite.ingest.bm25 import BM25Index, in_step_index
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
    cfg = settings.retrieval
    post = bool(cfg.mmr or cfg.reranker_model)
    if mode == "dense" and not post:
        return dense(index, query, k)
    depth = max(k, cfg.fetch_k)
    # How many hits leave this stage: all of the pool for MMR, the reranker's share, or k.
    keep = depth if cfg.mmr else max(k, cfg.rerank_candidates) if cfg.reranker_model else k
    if mode == "dense":
        hits = dense(index, query, keep)
    elif mode == "bm25":
        hits = bm25(index, query, keep, settings)
    else:
        hits = hybrid(index, query, depth, settings, keep)
    if cfg.reranker_model:
        pool = hits[: max(k, cfg.rerank_candidates)]
        order = fusion.rerank(cfg.reranker_model, query, [d.page_content for d, _ in pool], cfg.reranker_device)
        hits = [(pool[i][0], score) for i, score in order] + hits[len(pool):]
    if cfg.mmr:
        hits = diversify(index, query, hits, k, cfg.mmr_lambda)
    return hits[:k]


def dense(index: OpenIndex, query: str, k: int) -> list[tuple[Document, float]]:
    # The collection uses cosine space: the score is the cosine similarity, 1 - distance. (LangChain's
    # relevance scores are the same numbers but warn when an unrelated chunk scores below 0.)
    return [(doc, 1.0 - distance) for doc, distance in index.store.similarity_search_with_score(query, k=k)]


def bm25(index: OpenIndex, query: str, k: int, settings: Settings) -> list[tuple[Document, float]]:
    ranked = bm25_index(index, settings).search(query, k)
    docs = documents_by_id(index, [i for i, _ in ranked])
    return [(docs[i], s) for i, s in ranked if i in docs]


def hybrid(
    index: OpenIndex, query: str, depth: int, settings: Settings, keep: int | None = None
) -> list[tuple[Document, float]]:
    """Both lists `depth` deep, fused, the best `keep` returned; documents come from Chroma
    for BM25-only hits."""
    cfg = settings.retrieval
    dense_hits = dense(index, query, depth)
    by_id = {str(d.id): d for d, _ in dense_hits}
    lexical = bm25_index(index, settings).search(query, depth)
    fused = fusion.fuse(
        [[(str(d.id), s) for d, s in dense_hits], lexical],
        cfg.fusion,
        [cfg.dense_weight, cfg.bm25_weight],
        cfg.rrf_k,
    )[: keep or depth]
    missing = [i for i, _ in fused if i not in by_id]
    by_id.update(documents_by_id(index, missing))
    return [(by_id[i], s) for i, s in fused if i in by_id]


def documents_by_id(index: OpenIndex, ids: list[str]) -> dict[str, Document]:
    if not ids:
        return {}
    got = index.collection.get(ids=ids, include=["documents", "metadatas"])
    return {
        i: Document(page_content=text or "", metadata=meta or {}, id=i)
        for i, text, meta in zip(got["ids"], got["documents"], got["metadatas"])
    }


def diversify(index: OpenIndex, query: str, hits, k: int, lambda_mult: float):
    """MMR over the candidates' stored vectors (Chroma's, so nothing is embedded twice)."""
    if len(hits) <= 1:
        return hits
    ids = [str(d.id) for d, _ in hits]
    got = index.collection.get(ids=ids, include=["embeddings"])
    vectors = dict(zip(got["ids"], got["embeddings"]))
    keep = [h for h, i in zip(hits, ids) if i in vectors]
    picked = fusion.mmr(index.embeddings.embed_query(query), [vectors[str(d.id)] for d, _ in keep], k, lambda_mult)
    return [keep[i] for i in picked]


def bm25_index(index: OpenIndex, settings: Settings) -> BM25Index:
    """The BM25 index beside this Chroma collection, in step with it (ingest/bm25.py keeps it)."""
    return in_step_index(index.collection, settings)
