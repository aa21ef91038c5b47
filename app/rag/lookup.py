"""Support looked up beyond the prompt (docs/retrieval.md "Support looked up beyond the prompt").

After generation, answer sentences that no prompt source supports are searched for in the
answer's knowledge base (the chain's own index): one batched hybrid query for all of them — their
texts embedded in one call, one Chroma query with every vector, one BM25 search each, fused per
sentence like `retrieval.hybrid`. The best chunks not already in the prompt (round robin over the
sentences, chunks of the prompt's own pages before others, at most `retrieval.lookup_passages`)
join attribution as extra sources numbered after the prompt's, `found_after=True`. Attribution
then runs again with them; only the sentences the prompt did not support take the new result
(`merge`), so what the prompt supports never moves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from langchain_core.documents import Document

from opencite.app.answer import Source
from opencite.app.citations.verdicts import Attribution, tally
from opencite.app.citations.sentences import claim_text
from opencite.app.rag import fusion, passages
from opencite.app.rag.chain_run import numbered_sources
from opencite.app.rag.retrieval import bm25_index, documents_by_id, with_table_header
from opencite.store import constants as C
from opencite.store.index import OpenIndex
from opencite.settings import Settings

DEPTH = 20  # candidates per sentence and list before fusion
MAX_SENTENCES = 20  # unsupported sentences looked up per answer (the first ones)


def unsupported(result: Attribution) -> list[int]:
    """Indices of the sentences no source supported."""
    return [i for i, s in enumerate(result.sentences) if s.outcome == "unsupported"]


def claim_of(sentence) -> str:
    """The text attribution verified for this sentence (the same string, so its vector is kept)."""
    return claim_text(sentence.text)


@dataclasses.dataclass(frozen=True)
class Ranked:
    """One claim's candidates in the index: its dense hits, and the fused hybrid ranking."""

    dense: tuple[str, ...]
    fused: tuple[tuple[str, float], ...]


def rank(index: OpenIndex, settings: Settings, claims: list[str],
         embed: Callable[[list[str]], Sequence] | None = None) -> list[Ranked]:
    """One batched hybrid query for the claims: their vectors in one call, one Chroma query with
    all of them, one BM25 search each, fused per claim like `retrieval.hybrid`."""
    if not claims:
        return []
    cfg = settings.retrieval
    vectors = [list(map(float, v)) for v in (embed or index.embeddings.embed_documents)(claims)]
    # Ids and distances only: the texts are read for the few candidates the round robin reaches.
    got = index.collection.query(query_embeddings=vectors, n_results=DEPTH, include=["distances"])
    lexical = bm25_index(index, settings)
    return [Ranked(tuple(ids), tuple(fusion.fuse([[(cid, 1.0 - float(d)) for cid, d in zip(ids, distances)],
                                                  lexical.search(claim, DEPTH)],
                                                 cfg.fusion, [cfg.dense_weight, cfg.bm25_weight], cfg.rrf_k)))
            for claim, ids, distances in zip(claims, got["ids"], got["distances"])]


def find(index: OpenIndex, settings: Settings, claims: list[str], prompt: list[Source], limit: int,
         embed: Callable[[list[str]], Sequence] | None = None, ranked: dict[str, Ranked] | None = None,
         documents: dict[str, Document] | None = None) -> list[Source]:
    """Up to `limit` chunks of the index that best match the claims and are not already in the
    prompt's sources, as sources numbered after them (found_after). `embed` gives the claims'
    vectors in the index's embedding space (default: the index's embedder; the chain passes its
    scorer's, which has embedded these very sentences already). `ranked` (by claim) and
    `documents` (by chunk id) keep what earlier calls for the same answer read from the index;
    only the claims not in `ranked` are queried."""
    claims = [c for c in dict.fromkeys(claims) if c][:MAX_SENTENCES]
    if not claims or limit < 1:
        return []
    ranked = {} if ranked is None else ranked
    docs = {} if documents is None else documents
    new = [c for c in claims if c not in ranked]
    ranked.update(zip(new, rank(index, settings, new, embed)))
    lists = [ranked[c] for c in claims]
    # Candidates: a claim's dense hits, and the first `limit` of each fused list. Chunks that only
    # BM25 ranks lower are left out: taking them cost recall on the dev set's tune half.
    eligible = {cid for r in lists for cid in r.dense} | {cid for r in lists for cid, _ in r.fused[:limit]}
    # The prompt's pages first: the answer was written from them, so a fact their excerpts left
    # out most likely stands elsewhere on the same page (not on a sibling post that words it alike).
    pages = {s.url for s in prompt}
    on_page = {cid: str(doc.metadata.get(C.SOURCE) or "") for cid, doc in docs.items()}
    on_page |= _sources_of(index, sorted(eligible - set(on_page)))  # the chunks not read before
    lists = [Ranked(r.dense, tuple(sorted(r.fused, key=lambda hit: on_page.get(hit[0]) not in pages)))
             for r in lists]
    shown = [_norm(s.snippet) for s in prompt]  # what the prompt and the picks already hold
    picked: list[tuple[str, str, float]] = []  # (chunk id, its window around the claim, score)
    for depth in range(DEPTH):  # round robin: each sentence's best chunk first
        if len(picked) >= limit:
            break
        level = [(claim, r.fused[depth]) for claim, r in zip(claims, lists)
                 if depth < len(r.fused) and r.fused[depth][0] in eligible]
        docs |= documents_by_id(index, sorted({cid for _, (cid, _) in level} - set(docs)))
        for claim, (cid, score) in level:
            if len(picked) >= limit:
                break
            if cid not in docs:
                continue
            # Two sentences whose best chunk is the same each get their own window of it: the
            # one picked for the first may not hold the second's words.
            window = passages.focus(with_table_header(docs[cid].page_content, docs[cid].metadata), claim)
            if _norm(window) and not any(_norm(window) in text for text in shown):
                picked.append((cid, window, score))
                shown.append(_norm(window))
    hits = [(Document(page_content=window, metadata=docs[cid].metadata, id=cid), score)
            for cid, window, score in picked]
    start = max((s.n for s in prompt), default=0)
    return [dataclasses.replace(s, n=start + s.n, found_after=True) for s in numbered_sources(hits)]


def _sources_of(index: OpenIndex, ids: list[str]) -> dict[str, str]:
    """Each chunk's page URL (metadata only: the texts are read for the few the round robin reaches)."""
    if not ids:
        return {}
    got = index.collection.get(ids=ids, include=["metadatas"])
    return {i: str((meta or {}).get(C.SOURCE) or "") for i, meta in zip(got["ids"], got["metadatas"])}


def _norm(text: str) -> str:
    return " ".join((text or "").split())


def merge(answer: str, first: Attribution, second: Attribution,
          redo: list[int]) -> Attribution:
    """`first` (prompt sources only) with the sentences `redo` taken from `second` (prompt and
    found-after sources): the text rebuilt from the answer as written, each sentence as its pass
    wrote it, offsets and counts made again."""
    take = set(redo)
    if len(first.sentences) != len(second.sentences) or any(
            a.written_start != b.written_start for a, b in zip(first.sentences, second.sentences)):
        return second  # not the same sentences (never expected): the later pass whole
    pieces, out, pos, length = [], [], 0, 0
    for i, (a, b) in enumerate(zip(first.sentences, second.sentences)):
        s = b if i in take else a
        gap = answer[pos:s.written_start]
        pieces.append(gap)
        length += len(gap)
        out.append(dataclasses.replace(s, start=length, end=length + len(s.text)))
        pieces.append(s.text)
        length += len(s.text)
        pos = s.written_end
    pieces.append(answer[pos:])
    counts, verdicts = tally(out)
    return dataclasses.replace(first, text="".join(pieces), sentences=out, seconds=first.seconds + second.seconds,
                               counts=counts, verdicts=verdicts)


def referenced(extra: list[Source], result: Attribution) -> list[Source]:
    """The found-after sources up to the last one the result names (a marker or evidence), so
    every number it uses has its source and the numbering has no gap."""
    named = {n for s in result.sentences for n in (*s.markers, *s.original_markers, *(e.n for e in s.evidence))}
    last = max((s.n for s in extra if s.n in named), default=0)
    return [s for s in extra if s.n <= last]
