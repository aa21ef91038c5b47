"""Attribution time added after the last token, for 10-sentence answers over a 10k-chunk KB
(issue #24: p95 <= 150 ms on a 2-core machine).

The KB: the shared blog's index (built once and cached, as bench_citations_devset does), copied
and grown to --chunks with synthetic pages written through the ingest's own write path
(`index_chunks` with the blog chunks' vectors, the BM25 index kept in step): every page a copy
of a blog page under another URL, so near-duplicates compete in the KB lookup.

Each answer: the sentences of one dev-set test answer, then of the following ones, to 10
sentences (the later ones are mostly not in the prompt's sources, so the KB lookup runs, the
costly case). The sources: the prompt the chain builds for the first answer's question at the CPU
engine's source budget. As in a streamed answer, attribution's work on the sources and on all
sentences but the last is done while the LLM writes (`warm_attribution`, waited for here);
what is timed is `RagChain.attribute` after the last token. Two ways, in the same run: the
baseline only embeds while the LLM writes (after the last token: every sentence's scoring and
facts, the lookup and its second pass); the chain's way checks the written sentences ahead, so
what remains is the last sentence and what it changes.

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
    ap.add_argument("--budget", type=int, default=1200, help="source tokens in the prompt (the CPU default)")
    ap.add_argument("--stream", type=float, default=0, metavar="WORDS_PER_S",
                    help="instead: stream each answer through the chain from the scripted LLM double at this "
                         "pace and time the last token to the final event")
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
        if args.stream:
            measure_stream(settings, ten_sentence_answers(args.answers), args.stream)
        else:
            measure(settings, ten_sentence_answers(args.answers))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load avg after: {os.getloadavg()}")


def measure(settings, answers: list[tuple[str, str]]) -> None:
    """Both ways of working while the LLM writes (`attribution.ahead`), each on its own chain
    (its own vector cache) over the same index, alternating which goes first: `embed` warms the
    sources' and the written sentences' vectors (the baseline); `check` also checks the written
    sentences, KB lookup included, and keeps what it finds (`checking.Groundwork`)."""
    from opencite.app.rag.chain import RagAnswer, RagChain
    from opencite.app.rag.checking import Groundwork
    from opencite.app.citations.sentences import split_sentences
    from opencite.eval.run import RetrievalOnly, open_before_threads

    def ahead(way: str):
        copy = settings.model_copy(deep=True)
        copy.attribution.ahead = way
        return copy

    chains = {"embeds only": RagChain(ahead("embed")), "checks ahead": RagChain(ahead("check"))}
    retriever = RetrievalOnly(chains["embeds only"], settings, prompt=True)
    open_before_threads(retriever)
    after = {name: [] for name in chains}
    ahead = {name: [] for name in chains}  # the work done while the LLM wrote, for the record
    lookups = {name: [] for name in chains}
    texts: dict[str, list[str]] = {name: [] for name in chains}
    sentences_checked = []
    for i, (question, answer) in enumerate(answers):
        sources = retriever.invoke([{"role": "user", "content": question}], k=settings.retrieval.k,
                                   retrieval_mode=settings.retrieval.mode).sources  # the chain's prompt
        split = split_sentences(answer)
        written = answer[: split[-1].start] if split else ""
        for name in (list(chains) if i % 2 else list(chains)[::-1]):
            chain = chains[name]
            groundwork = Groundwork()
            t = time.perf_counter()
            chain.warm_attribution(sources, written, groundwork).result()  # done while the LLM wrote
            warmed = time.perf_counter() - t
            t = time.perf_counter()
            done = chain.attribute(RagAnswer(question, question, answer, sources, [], 0), groundwork=groundwork)
            dt = time.perf_counter() - t
            texts[name].append(done.answer)
            if i == 0:
                continue  # the first call loads what later ones reuse (BM25 reader, caches)
            after[name].append(dt * 1000)
            ahead[name].append(warmed * 1000)
            lookups[name].append(done.timings.get("lookup_s", 0.0) * 1000)
        if i:
            sentences_checked.append(len(done.attribution.sentences) if done.attribution else 0)
    same = sum(a == b for a, b in zip(*texts.values()))
    print(f"\n{len(sentences_checked)} answers of 10 sentences ({statistics.median(sentences_checked):.0f} "
          f"checked p50); answers identical both ways: {same} of {len(answers)}\n")
    print("| after the last token (ms) | p50 | p95 | max |\n|---|---|---|---|")
    for name in chains:
        print(f"| attribution, {name} | {statistics.median(after[name]):.0f} | {pct(after[name], 0.95):.0f} "
              f"| {max(after[name]):.0f} |")
        print(f"| of which the KB lookup | {statistics.median(lookups[name]):.0f} | {pct(lookups[name], 0.95):.0f} "
              f"| {max(lookups[name]):.0f} |")
    print("\n| while the LLM writes, all at once here (ms) | p50 | p95 |\n|---|---|---|")
    for name in chains:
        print(f"| {name} | {statistics.median(ahead[name]):.0f} | {pct(ahead[name], 0.95):.0f} |")
    base, new = after["embeds only"], after["checks ahead"]
    print(f"\nchecks ahead / embeds only: p50 {statistics.median(new) / statistics.median(base):.2f}, "
          f"p95 {pct(new, 0.95) / pct(base, 0.95):.2f}")


def measure_stream(settings, answers: list[tuple[str, str]], words_per_s: float) -> None:
    """The real streaming path: each answer comes from the scripted LLM double (a test double:
    exact text at a set pace; its pieces are words, spaces, digits and brackets) through
    `RagChain.stream`, which checks as sentences end; timed from the last token event to the
    final event. The double only sleeps between pieces, so the cores are free while it "decodes",
    unlike a local engine."""
    from pydantic import SecretStr

    sys.path.insert(0, str(ROOT))
    from tests.fixtures.scripted_llm import ScriptedLLMDouble, split_pieces

    from opencite.app.answer import DoneEvent, TokenEvent
    from opencite.app.rag.chain import RagChain

    double = ScriptedLLMDouble().start()
    try:
        settings.llm.base_url, settings.llm.model = double.base_url, double.model
        settings.llm.api_key, settings.llm.context_window = SecretStr(double.api_key), 32768
        chain = RagChain(settings)
        after, stream_s = [], []
        for i, (question, answer) in enumerate(answers):
            pieces = len(split_pieces(answer))
            double.token_delay = len(answer.split()) / words_per_s / pieces
            double.reply(answer)
            t0 = time.perf_counter()
            last = done = None
            for event in chain.stream([{"role": "user", "content": question}], max_tokens=2048):
                if isinstance(event, TokenEvent):
                    last = time.perf_counter()
                elif isinstance(event, DoneEvent):
                    done = time.perf_counter()
            if i and last is not None and done is not None:
                after.append((done - last) * 1000)
                stream_s.append(last - t0)
    finally:
        double.stop()
    print(f"\n{len(after)} answers of 10 sentences streamed at {words_per_s:g} words/s "
          f"({statistics.median(stream_s):.1f} s each p50)\n")
    print("| after the last token, streamed (ms) | p50 | p95 | max |\n|---|---|---|---|")
    print(f"| attribution, checks ahead | {statistics.median(after):.0f} | {pct(after, 0.95):.0f} | {max(after):.0f} |")


if __name__ == "__main__":
    main()
