"""Retrieval alone on a BEIR-format dataset (corpus.jsonl, queries.jsonl, qrels/test.tsv).

The corpus goes in as-is (`title + " " + text`, one document per entry, no chunking) into its
own Chroma collection opened through `open_index` (the project's embedder and index code) in a
separate data folder, so the product index is never touched. The built collection is kept:
a re-run with the same corpus and model only embeds the queries.

Retrieval is a function `(queries: {qid: text}) -> run {qid: {doc_id: score}}`; `RETRIEVERS`
maps a mode name to a factory of such functions, so other modes plug in beside `dense`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path
from typing import Callable

import pytrec_eval

from opencite.eval.metrics import Qrels, Run, top
from opencite.eval.progress import Silent, StepProgress
from opencite.store.embedder_choice import resolve_embedder
from opencite.store.index import OpenIndex, open_index
from opencite.settings import Settings

Retriever = Callable[[dict[str, str]], Run]
DEPTH = 100  # recall@100 needs a hundred results per query
# Chroma's default HNSW ef_search (100) equals DEPTH and loses 0.67 nDCG@10 on SciFact against
# exact search (63.84 vs 64.51); at 1000 the HNSW results equal exact search's there.
EF_SEARCH = 1000
ADD_BATCH = 512


class BeirFormatError(ValueError):
    pass


def load_beir(root: Path, split: str = "test") -> tuple[list[dict], dict[str, str], Qrels]:
    """(corpus, queries with judgements, qrels). Queries without judgements are left out."""
    root = Path(root)
    paths = [root / "corpus.jsonl", root / "queries.jsonl", root / "qrels" / f"{split}.tsv"]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise BeirFormatError(
            f"{root} is not a BEIR folder: missing {', '.join(missing)}. Fix: point at a folder "
            "holding corpus.jsonl, queries.jsonl and qrels/<split>.tsv.")
    corpus = list(_jsonl(paths[0], ("_id", "text")))
    queries = {q["_id"]: q["text"] for q in _jsonl(paths[1], ("_id", "text"))}
    qrels: Qrels = {}
    with open(paths[2], encoding="utf-8", newline="") as f:
        for line, row in enumerate(csv.DictReader(f, delimiter="\t"), start=2):
            try:
                qrels.setdefault(str(row["query-id"]), {})[str(row["corpus-id"])] = int(row["score"])
            except (KeyError, TypeError, ValueError) as exc:
                raise BeirFormatError(
                    f"{paths[2]} line {line}: expected columns query-id, corpus-id, score "
                    f"(an integer) under a header row ({exc}).") from exc
    queries = {q: t for q, t in queries.items() if q in qrels}
    if not queries:
        raise BeirFormatError(f"no query in {paths[1]} has a judgement in {paths[2]}.")
    return corpus, queries, qrels


def _jsonl(path: Path, required: tuple[str, ...]):
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BeirFormatError(f"{path} line {line_no}: not JSON ({exc.msg}).") from exc
            if not isinstance(obj, dict) or any(k not in obj for k in required):
                raise BeirFormatError(f"{path} line {line_no}: needs the fields {', '.join(required)}.")
            obj["_id"] = str(obj["_id"])
            yield obj


def document_text(doc: dict) -> str:
    # MTEB/BEIR's encoding of a document: title, a space, the text.
    return (str(doc.get("title") or "") + " " + str(doc["text"])).strip()


def beir_settings(settings: Settings, root: Path, cache_dir: Path | None = None) -> Settings:
    """The same settings pointed at a collection of its own in its own embedded Chroma."""
    root = Path(root).resolve()
    model = resolve_embedder(settings.embedding).model
    key = hashlib.sha1(f"{root}|{model}".encode()).hexdigest()[:10]
    name = re.sub(r"[^a-zA-Z0-9_-]", "-", root.name)[:40] or "beir"
    chroma = settings.chroma.model_copy(update={"url": None, "path": None, "collection": f"beir-{name}-{key}"})
    return settings.model_copy(update={"data_dir": Path(cache_dir or settings.data_dir / "beir"), "chroma": chroma})


def build_collection(index: OpenIndex, corpus: list[dict], progress: StepProgress | None = None) -> int:
    """Add the documents the collection lacks (all on the first run, none on a re-run)."""
    have = set()
    if index.count():
        have = set(index.collection.get(include=[])["ids"])
    todo = [d for d in corpus if d["_id"] not in have]
    progress = progress or Silent()
    progress.start(f"embedding {len(todo)} documents", len(todo))
    for i in range(0, len(todo), ADD_BATCH):
        batch = todo[i:i + ADD_BATCH]
        index.store.add_texts([document_text(d) for d in batch],
                              metadatas=[{"beir_id": d["_id"]} for d in batch],
                              ids=[d["_id"] for d in batch])
        progress.advance(len(batch))
    return len(todo)


def dense_retriever(index: OpenIndex, depth: int = DEPTH) -> Retriever:
    """Queries embedded as the app embeds them (query instruction included), searched in Chroma."""

    def retrieve(queries: dict[str, str]) -> Run:
        qids = list(queries)
        vectors = embed_queries(index, [queries[q] for q in qids])
        n = min(depth, index.count())
        run: Run = {}
        for i in range(0, len(qids), 64):
            got = index.collection.query(query_embeddings=vectors[i:i + 64], n_results=n, include=["distances"])
            for q, ids, dists in zip(qids[i:i + 64], got["ids"], got["distances"]):
                run[q] = {d: 1.0 - float(dist) for d, dist in zip(ids, dists)}  # cosine similarity
        return run

    return retrieve


def bm25_retriever(index: OpenIndex, settings: Settings, depth: int = DEPTH) -> Retriever:
    """The app's BM25 index over the same collection (built from Chroma on first use)."""
    from opencite.app.rag.retrieval import bm25_index

    def retrieve(queries: dict[str, str]) -> Run:
        bm = bm25_index(index, settings)
        return {q: dict(bm.search(text, depth)) for q, text in queries.items()}

    return retrieve


def hybrid_retriever(index: OpenIndex, settings: Settings, depth: int = DEPTH) -> Retriever:
    """Dense and BM25 lists `depth` deep, fused as the app fuses them (settings.retrieval)."""
    from opencite.app.rag.fusion import fuse

    def retrieve(queries: dict[str, str]) -> Run:
        cfg = settings.retrieval
        dense, lexical = dense_retriever(index, depth)(queries), bm25_retriever(index, settings, depth)(queries)
        return {q: dict(fuse([sorted(dense.get(q, {}).items(), key=lambda kv: -kv[1]), list(lexical[q].items())],
                             cfg.fusion, [cfg.dense_weight, cfg.bm25_weight], cfg.rrf_k)[:depth])
                for q in queries}

    return retrieve


def embed_queries(index: OpenIndex, texts: list[str]) -> list[list[float]]:
    """Queries as `embed_query` embeds them, batched when that is the same as embedding
    documents (no query instruction or prompt), one by one otherwise."""
    emb = index.embeddings
    if (emb.query_encode_kwargs or emb.encode_kwargs) == emb.encode_kwargs:
        return emb.embed_documents(texts)
    return [emb.embed_query(t) for t in texts]


RETRIEVERS: dict[str, Callable[[OpenIndex, Settings], Retriever]] = {
    "dense": lambda index, settings: dense_retriever(index),
    "bm25": lambda index, settings: bm25_retriever(index, settings),
    "hybrid": lambda index, settings: hybrid_retriever(index, settings),
}


def beir_metrics(qrels: Qrels, run: Run) -> dict[str, float]:
    """nDCG@10, recall@10, recall@100, MRR@10 in percent, averaged over every judged query
    (a query without results counts as 0)."""
    measures = {"ndcg_cut.10", "recall.10", "recall.100"}
    res = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate({q: run.get(q) or {} for q in qrels})
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(
        {q: top(run.get(q) or {}, 10) for q in qrels})
    n = len(qrels)

    def avg(d, key):
        return round(100 * sum(d.get(q, {}).get(key, 0.0) for q in qrels) / n, 2)

    return {"ndcg@10": avg(res, "ndcg_cut_10"), "recall@10": avg(res, "recall_10"),
            "recall@100": avg(res, "recall_100"), "mrr@10": avg(rr, "recip_rank")}


def run_beir(settings: Settings, root: Path, *, mode: str | None = None, cache_dir: Path | None = None,
             progress: StepProgress | None = None) -> dict:
    """Index (or reuse) the corpus, retrieve for every judged query, score. Returns the result
    dict that `eval beir` saves."""
    import time

    mode = mode or settings.retrieval.mode
    if mode not in RETRIEVERS:
        raise ValueError(f"retrieval mode {mode!r} is not available for BEIR; use one of {', '.join(RETRIEVERS)}")
    corpus, queries, qrels = load_beir(root)
    bs = beir_settings(settings, root, cache_dir)
    t0 = time.perf_counter()
    with open_index(bs, write=True) as index:
        # Before the build: an HNSW index this process has filled keeps the ef_search it had (8,000
        # random vectors, top 100: recall 0.51 when set after adding, 0.99 before), so the run that
        # embedded the corpus scored dense at 64.17 instead of 64.51.
        index.collection.modify(configuration={"hnsw": {"ef_search": EF_SEARCH}})
        added = build_collection(index, corpus, progress)
        t_index = time.perf_counter() - t0
        t1 = time.perf_counter()
        run = RETRIEVERS[mode](index, bs)(queries)
        t_search = time.perf_counter() - t1
    return {
        "dataset": str(Path(root).resolve()),
        "model": resolve_embedder(bs.embedding).model,
        "mode": mode,
        "collection": bs.chroma.collection,
        "documents": len(corpus),
        "queries": len(queries),
        "embedded_now": added,
        "hnsw_ef_search": EF_SEARCH,
        "metrics": beir_metrics(qrels, run),
        "seconds": {"index": round(t_index, 2), "retrieve": round(t_search, 2)},
        "run": {q: top(r, 10) for q, r in run.items()},
    }
