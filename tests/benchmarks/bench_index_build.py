"""Building the index from precomputed vectors: opencite's write path against raw `collection.add`.

The same synthetic chunks (pages of --page-chunks chunks, 384-d random unit vectors, ~60 words,
the metadata the chunker writes) go into two fresh embedded Chroma collections created by
`open_index` (so both carry opencite's collection settings):

  raw      `collection.add` in batches of --batch chunks: the store's own speed;
  opencite `index_chunks` (LangChain indexing with the SQL record manager, Chroma upserts) on
           groups of pages of about `pipeline.GROUP_CHUNKS` chunks, then each group's registry rows,
           as `opencite ingest` stores pages (the BM25 listener is left out: it is not a Chroma write).

Prints both times, the ratio opencite / raw (target <= 1.5), the time to open the built index
again, and the 1-minute load average before and after (the machine is shared: figures are
"loaded" unless it stays below ~1). --profile FILE writes a cProfile of the opencite build.

    python tests/benchmarks/bench_index_build.py [--chunks 20000] [--page-chunks 10] [--batch 5000]
        [--profile out.prof] [--only raw|opencite] [--group 256] [--opencite-first]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from opencite.ingest import constants as C  # noqa: E402
from opencite.ingest.chunking import chunk_id  # noqa: E402
from opencite.store.index import open_index  # noqa: E402
from opencite.ingest.pages import index_chunks, link_neighbours  # noqa: E402
from opencite.ingest.pipeline import GROUP_CHUNKS, registry_for  # noqa: E402
from opencite.store.registry import SourceRecord  # noqa: E402
from opencite.settings import Settings  # noqa: E402

DIM = 384


class Precomputed(Embeddings):
    """Vectors computed beforehand (text -> row of a float32 matrix; lists of Python floats would take
    ~12 GB at 1M chunks), so the timings show the index, not the embedder. `_client` answers the
    dimension question `open_index` asks a new collection's embedder."""

    def __init__(self, matrix: np.ndarray, rows: dict[str, int]):
        self.matrix, self.rows = matrix, rows
        self._client = self

    def get_embedding_dimension(self) -> int:
        return DIM

    def of(self, texts: list[str]) -> np.ndarray:
        return self.matrix[[self.rows[t] for t in texts]]

    def embed_query(self, text: str) -> list[float]:
        return self.of([text])[0].tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.of(texts).tolist()


def make_pages(n: int, page_chunks: int, rng) -> tuple[list[list[Document]], Precomputed]:
    """n chunks in pages of `page_chunks`, with ids and neighbour links as ingest writes them."""
    words = np.array(["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=rng.integers(3, 10)))
                      for _ in range(5000)], dtype=object)
    ranks = np.minimum(rng.zipf(1.2, size=(n, 60)) - 1, len(words) - 1)
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    pages, rows = [], {}
    for p in range(0, n, page_chunks):
        url = f"https://bench.example/post/{p // page_chunks}"
        base = {C.SOURCE: url, C.TITLE: f"Post {p // page_chunks}", C.DESCRIPTION: "", C.LANGUAGE: "en",
                C.CONTENT_HASH: hashlib.sha256(url.encode()).hexdigest(), C.FETCHED_AT: "2026-11-26T00:00:00+00:00"}
        page = []
        for i in range(p, min(n, p + page_chunks)):
            text = f"{i} " + " ".join(words[ranks[i]])  # unique: the vectors are looked up by text
            page.append(Document(page_content=text, metadata=dict(base, **{C.HEADING_PATH: "Post > Part",
                                                                            C.CHUNK_INDEX: i - p})))
            rows[text] = i
        for chunk in page:
            chunk.id = chunk_id(chunk)
        link_neighbours(page)
        pages.append(page)
    return pages, Precomputed(vecs, rows)


def settings_in(root: Path) -> Settings:
    return Settings(data_dir=root / "data")


def build_raw(root: Path, pages, vectors: Precomputed, batch: int) -> float:
    chunks = [c for page in pages for c in page]
    with open_index(settings_in(root), write=True, embeddings=vectors) as idx:
        t = time.perf_counter()
        for start in range(0, len(chunks), batch):
            part = chunks[start:start + batch]
            idx.collection.add(ids=[c.id for c in part], documents=[c.page_content for c in part],
                               metadatas=[c.metadata for c in part],
                               embeddings=vectors.of([c.page_content for c in part]))
        return time.perf_counter() - t


def build_opencite(root: Path, pages, vectors: Precomputed, profile: str = "", group_chunks: int = GROUP_CHUNKS) -> float:
    """Pages stored as `opencite ingest` stores them: a group of pages of about GROUP_CHUNKS chunks
    per `index_chunks` call, then the group's registry rows."""
    with open_index(settings_in(root), write=True, embeddings=vectors) as idx:
        registry = registry_for(idx)
        profiler = cProfile.Profile() if profile else None
        t = time.perf_counter()
        if profiler:
            profiler.enable()
        group: list[list[Document]] = []
        for n, page in enumerate(pages):
            group.append(page)
            if sum(map(len, group)) >= group_chunks or n == len(pages) - 1:
                index_chunks(idx, [c for p in group for c in p])
                registry.put(*[SourceRecord(url=p[0].metadata[C.SOURCE], requested_url=p[0].metadata[C.SOURCE],
                                            content_hash=p[0].metadata[C.CONTENT_HASH], chunks=len(p),
                                            outcome="new") for p in group])
                group = []
        elapsed = time.perf_counter() - t
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        assert idx.count() == sum(map(len, pages)), "opencite build stored a different number of chunks"
        return elapsed


def reopen_s(root: Path, vectors: Precomputed) -> float:
    """Opening the built index and answering one query (replays whatever HNSW has not persisted)."""
    t = time.perf_counter()
    with open_index(settings_in(root), embeddings=vectors) as idx:
        idx.collection.query(query_embeddings=vectors.matrix[:1], n_results=1)
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--chunks", type=int, default=20_000)
    p.add_argument("--page-chunks", type=int, default=10)
    p.add_argument("--batch", type=int, default=5000, help="chunks per raw collection.add")
    p.add_argument("--profile", default="", help="write a cProfile of the opencite build here")
    p.add_argument("--only", choices=["raw", "opencite"], default=None)
    p.add_argument("--opencite-first", action="store_true", help="build opencite's index first (order effects)")
    p.add_argument("--group", type=int, default=GROUP_CHUNKS, help="chunks per stored group (the pipeline's by default)")
    args = p.parse_args()

    pages, vectors = make_pages(args.chunks, args.page_chunks, np.random.default_rng(0))
    load_before = os.getloadavg()[0]
    times, opens = {}, {}
    for name in ("opencite", "raw") if args.opencite_first else ("raw", "opencite"):
        if args.only and name != args.only:
            continue
        root = Path(tempfile.mkdtemp(prefix=f"opencite-build-{name}-"))
        try:
            if name == "raw":
                times[name] = build_raw(root, pages, vectors, args.batch)
            else:
                times[name] = build_opencite(root, pages, vectors, args.profile, args.group)
            opens[name] = reopen_s(root, vectors)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(f"{name:>9}: {times[name]:7.1f} s  ({args.chunks / times[name]:,.0f} chunks/s)"
              f"  reopen + 1 query {opens[name]:.2f} s  load {os.getloadavg()[0]:.1f}", flush=True)
    if len(times) == 2:
        print(f"\n{args.chunks:,} chunks in pages of {args.page_chunks}, groups of ~{args.group}, raw batches of "
              f"{args.batch}: opencite / raw = {times['opencite'] / times['raw']:.2f}x (target <= 1.5x)  "
              f"load avg 1-min before {load_before:.1f} / after {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
