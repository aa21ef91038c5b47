"""Attribution time added after the last token, for 10-sentence answers over a 10k-chunk KB
(issue #24: p95 <= 150 ms on a 2-core machine).

The KB: the shared blog's index (built once and cached, as bench_citations_devset does), copied
and grown to --chunks with synthetic pages written through the ingest's own write path
(`index_chunks` with the blog chunks' vectors, the BM25 index kept in step): every page a copy
of a blog page under another URL, so near-duplicates compete in the KB lookup.

Each answer: the sentences of one dev-set test answer, then of the following ones, to 10
sentences (the later ones are mostly not in the prompt's sources, so the KB lookup runs, the
costly case). The sources: what the chain retrieves for the first answer's question at the CPU
engine's source budget. As in a streamed answer, attribution's work on the sources and on all
sentences but the last is done while the LLM writes (`warm_attribution`, waited for here);
what is timed is `RagChain.attribute` after the last token: the last sentence, every sentence's
scoring and facts, the lookup and its second pass.

    python tests/benchmarks/bench_attribution_latency.py [--chunks 10000] [--answers 30]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_citations_devset import ROOT, SHARED, indexed_blog  # noqa: E402
from bench_cpu_engines import cpu_line  # noqa: E402
from bench_query_latency import pct  # noqa: E402


def grow(settings, chunks: int) -> int:
    """Synthetic pages (copies of blog pages under new URLs) until the collection holds `chunks`."""
    from langchain_core.documents import Document

    from opencite.ingest.pages import index_chunks
    from opencite.store import constants as C
    from opencite.store.bm25_keep import BM25Keeper
    from opencite.store.index import open_index

    with open_index(settings, write=True) as idx:
        have = idx.collection.count()
        got = idx.collection.get(include=["documents", "metadatas", "embeddings"])
        pages: dict[str, list[int]] = {}
        for i, meta in enumerate(got["metadatas"]):
            pages.setdefault(meta[C.SOURCE], []).append(i)
        keeper = BM25Keeper(settings, idx)
        try:
            copy = 0
            while have < chunks:
                for source, rows in pages.items():
                    if have >= chunks:
                        break
                    url = f"https://copy{copy}.example/{source.split('://', 1)[-1]}"
                    docs, vectors = [], {}
                    for i in rows:
                        meta = {k: v for k, v in got["metadatas"][i].items() if k not in (C.PREV_CHUNK, C.NEXT_CHUNK)}
                        meta[C.SOURCE] = url
                        docs.append(Document(page_content=got["documents"][i], metadata=meta))
                        vectors[got["documents"][i]] = got["embeddings"][i]
                    index_chunks(idx, docs, vectors)
                    keeper(url, docs)
                    have += len(docs)
                copy += 1
            keeper.finish()
        finally:
            keeper.close()
        return idx.collection.count()


def ten_sentence_answers(n: int) -> list[tuple[str, str]]:
    items = [json.loads(line) for line in (ROOT / "data" / "eval" / "citations-dev-test.jsonl")
             .read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for start in range(min(n, len(items))):
        sentences: list[str] = []
        for item in items[start:] + items[:start]:
            sentences += [s["text"] for s in item["sentences"]]
            if len(sentences) >= 10:
                break
        out.append((items[start]["question"], " ".join(sentences[:10])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chunks", type=int, default=10_000)
    ap.add_argument("--answers", type=int, default=30)
    ap.add_argument("--budget", type=int, default=1500, help="source tokens in the prompt (the CPU default)")
    ap.add_argument("--corpus", type=Path, default=SHARED / "corpus")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                    / "opencite" / "bench-devset")
    args = ap.parse_args()
    print(f"cpu: {cpu_line()} | load avg before: {os.getloadavg()}")
    _, cached = indexed_blog(SimpleNamespace(corpus=args.corpus, cache=args.cache, model=None))
    work = Path(tempfile.mkdtemp(prefix="opencite-attr-latency-"))
    try:
        shutil.copytree(cached, work / "data")
        os.environ.update(OPENCITE_DATA_DIR=str(work / "data"), OPENCITE_RETRIEVAL__SOURCE_TOKENS=str(args.budget),
                          OPENCITE_ATTRIBUTION__MODE="repair")
        from opencite.settings import Settings

        settings = Settings()
        t = time.perf_counter()
        size = grow(settings, args.chunks)
        print(f"KB: {size} chunks (grown in {time.perf_counter() - t:.0f} s)")
        measure(settings, ten_sentence_answers(args.answers))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load avg after: {os.getloadavg()}")


def measure(settings, answers: list[tuple[str, str]]) -> None:
    from opencite.app.rag.budget import fit_prompt
    from opencite.app.rag.chain import RagAnswer, RagChain
    from opencite.app.citations.sentences import split_sentences
    from opencite.eval.run import RetrievalOnly, open_before_threads

    chain = RagChain(settings)
    retriever = RetrievalOnly(chain, settings)
    open_before_threads(retriever)
    counter = chain.counter()
    after, lookups, sentences_checked = [], [], []
    for i, (question, answer) in enumerate(answers):
        sources = retriever.invoke([{"role": "user", "content": question}], k=settings.retrieval.k,
                                   retrieval_mode=settings.retrieval.mode).sources
        sources = fit_prompt(question, sources, counter, settings.llm.context_window or 32768,
                             settings.llm.max_tokens, chain.source_tokens()).sources
        split = split_sentences(answer)
        written = answer[: split[-1].start] if split else ""
        chain.warm_attribution(sources, written).result()  # done while the LLM wrote
        t = time.perf_counter()
        done = chain.attribute(RagAnswer(question, question, answer, sources, [], 0))
        dt = time.perf_counter() - t
        if i == 0:
            continue  # the first call loads what later ones reuse (BM25 reader, caches)
        after.append(dt * 1000)
        lookups.append(done.timings.get("lookup_s", 0.0) * 1000)
        sentences_checked.append(len(done.attribution.sentences) if done.attribution else 0)
    print(f"\n{len(after)} answers of 10 sentences ({statistics.median(sentences_checked):.0f} checked p50)\n")
    print("| after the last token | p50 | p95 | max |\n|---|---|---|---|")
    print(f"| attribution (ms) | {statistics.median(after):.0f} | {pct(after, 0.95):.0f} | {max(after):.0f} |")
    print(f"| of which the KB lookup (ms) | {statistics.median(lookups):.0f} | {pct(lookups, 0.95):.0f} "
          f"| {max(lookups):.0f} |")


if __name__ == "__main__":
    main()
