"""Retrieval over the index that `ingest/` owns: dense, BM25 or hybrid, then optionally a
cross-encoder rerank and MMR diversification, all behind one `retrieve()` signature."""

from __future__ import annotations

import re

from langchain_core.documents import Document

from opencite.app.rag import fusion
from opencite.store import constants as C
from opencite.store.bm25 import BM25Index
from opencite.store.bm25_keep import in_step_index
from opencite.store.index import OpenIndex
from opencite.settings import Settings

MODES = ("dense", "bm25", "hybrid")


def retrieve(
    index: OpenIndex, query: str, k: int, settings: Settings, mode: str | None = None
) -> list[tuple[Document, float]]:
    """Top-k (document, score) pairs, best first; score: higher is more relevant."""
    hits = ranked(index, query, k, settings, mode)
    return with_neighbours(index, hits, settings.retrieval.neighbours)


def ranked(
    index: OpenIndex, query: str, k: int, settings: Settings, mode: str | None = None
) -> list[tuple[Document, float]]:
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


def with_neighbours(index: OpenIndex, hits, neighbours: int) -> list[tuple[Document, float]]:
    """Each hit's text widened to the `neighbours` chunks either side of it on the same page (a
    sentence-window retriever): a page often states the figure or name in the paragraph next to
    the one that matched the question. A chunk goes into one source only, the best-ranked hit's
    first (hits are never another hit's neighbours); ranks, scores, ids and metadata stay the hits'.
    At most two Chroma reads for all hits (`_neighbour_chunks`); chunks without a page position are
    left as they are."""
    return [(doc, score) for doc, score, _ in widened(index, hits, neighbours)]


def retrieve_spans(
    index: OpenIndex, query: str, k: int, settings: Settings, mode: str | None = None
) -> list[tuple[Document, float, tuple[int, int]]]:
    """`retrieve`, each hit with the span of its own chunk in its widened text (the prompt
    budget picks sentences of the hit and takes their windows from the text around it)."""
    return widened(index, ranked(index, query, k, settings, mode), settings.retrieval.neighbours)


def widened(index: OpenIndex, hits, neighbours: int) -> list[tuple[Document, float, tuple[int, int]]]:
    """`with_neighbours`, keeping where each hit's own chunk lies in its widened text."""
    page = [_page_of(doc) for doc, _ in hits]
    positioned = [doc for (doc, _), p in zip(hits, page) if p]
    chunks = {}
    for got in _neighbour_chunks(index, positioned, neighbours) if neighbours >= 1 and positioned else ():
        chunks.update({_key(meta): (text or "", meta) for text, meta in zip(got["documents"], got["metadatas"])})
    taken = {_key(doc.metadata) for doc, _ in hits}
    out = []
    for (doc, score), p in zip(hits, page):
        text, lead = doc.page_content, doc.metadata  # lead: the metadata of the text's first chunk
        start, end = 0, len(text)
        page_key, at = p or (None, 0)
        for step in (-1, 1) if p else ():  # the run of free chunks touching the hit on each side
            for distance in range(1, neighbours + 1):
                key = (*page_key, at + step * distance)
                if key not in chunks or key in taken:
                    break
                taken.add(key)
                if step < 0:  # the hit's text keeps its end; what comes before it grows
                    joined = join_adjacent(chunks[key][0], text)
                    start, end = start + len(joined) - len(text), end + len(joined) - len(text)
                    text, lead = joined, chunks[key][1]
                else:
                    text = join_adjacent(text, chunks[key][0])
        headed = with_table_header(text, lead)
        start, end = start + len(headed) - len(text), end + len(headed) - len(text)
        if headed is not doc.page_content:
            doc = Document(page_content=headed, metadata=doc.metadata, id=doc.id)
        out.append((doc, score, (start, end)))
    return out


def with_table_header(text: str, meta) -> str:
    """A text that starts inside a table (its first chunk's `table_header`), with the table's
    header and delimiter lines written above its rows, as the LLM and the checker must read them."""
    header = (meta or {}).get(C.TABLE_HEADER)
    if not header or not isinstance(header, str) or not _TABLE_LINE.match(text) or text.startswith(header):
        return text
    return f"{header}\n{text}"


def _neighbour_chunks(index: OpenIndex, hits: list[Document], neighbours: int):
    """Chroma reads that hold every neighbour of the hits. One chunk either side: by the ids ingest
    wrote on each chunk (a key lookup, ~4 ms for 10 hits at 10k chunks). Wider windows, and chunks
    stored before those ids were written: the hits' pages whole by one `$in` on the source (~20 ms;
    an `$or` of per-hit position ranges takes ~15x that). Measured loaded; positions outside the
    window and other page versions are never looked up."""
    links = (C.PREV_CHUNK, C.NEXT_CHUNK)
    linked = [neighbours == 1 and any(key in d.metadata for key in links) for d in hits]
    ids = sorted({d.metadata[key] for d, by_id in zip(hits, linked) if by_id for key in links if key in d.metadata})
    if ids:
        yield index.collection.get(ids=ids, include=["documents", "metadatas"])
    sources = sorted({d.metadata[C.SOURCE] for d, by_id in zip(hits, linked) if not by_id})
    if sources:
        yield index.collection.get(where={C.SOURCE: {"$in": sources}}, include=["documents", "metadatas"])


def _page_of(doc: Document):
    """(the chunk's page version, its position) or None without a position. The version (content
    hash) keeps a stale chunk of an older version of the page out."""
    meta = doc.metadata or {}
    at = meta.get(C.CHUNK_INDEX)
    if not isinstance(at, int) or isinstance(at, bool) or not meta.get(C.SOURCE):
        return None
    return _key(meta)[:-1], at


def _key(meta) -> tuple:
    meta = meta or {}
    return meta.get(C.SOURCE), meta.get(C.CONTENT_HASH) or "", meta.get(C.CHUNK_INDEX)


_TABLE_LINE = re.compile(r"\s{0,3}\|")


def join_adjacent(first: str, second: str, min_overlap: int = 20) -> str:
    """Two consecutive chunks of a page as one text: the overlap the chunker repeats at the start
    of the second (its last paragraphs, up to overlap_tokens) is kept once."""
    for size in range(min(len(first), len(second)), min_overlap - 1, -1):
        if first.endswith(second[:size]):
            return first + second[size:]
    if _TABLE_LINE.match(first.rsplit("\n", 1)[-1]) and _TABLE_LINE.match(second):
        return f"{first}\n{second}"  # one table the chunker cut between rows: a blank line would end it
    return f"{first}\n\n{second}"


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
