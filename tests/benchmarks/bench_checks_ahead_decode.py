"""What attribution's work while the LLM writes costs a local CPU engine's decode: the reason
`attribution.ahead=auto` only embeds ahead when the LLM is `opencite serve` on this machine.

llama.cpp serves the random-weight Qwen2.5-0.5B-shaped Q8_0 GGUF of bench_ask_cpu (2 threads,
the engine's defaults) and streams 150-token answers; meanwhile, in this process, a chain over the
10k-chunk KB of bench_attribution_latency does what it does while an answer streams, at the pace
of that answer's sentence ends (a 10-sentence reference answer spread over the decode's time):
nothing (`none`), `embed` (the sources' and each written sentence's vectors) or `check` (each
sentence decided as it ends, KB lookup included). Three ways interleaved, per answer; printed:
decode seconds for 150 tokens and the ratio to `none` measured in the same run. What `check`
saves after the last token is bench_attribution_latency's figure.

    python tests/benchmarks/bench_checks_ahead_decode.py [--answers 9]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ask_cpu import gguf_file  # noqa: E402
from bench_attribution_latency import grow, ten_sentence_answers  # noqa: E402
from bench_citations_devset import ROOT, SHARED, indexed_blog  # noqa: E402
from bench_cpu_engines import cpu_line  # noqa: E402

WAYS = ("none", "embed", "check")
SENTENCE_END = re.compile(r"[.!?\n]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--answers", type=int, default=9)
    ap.add_argument("--tokens", type=int, default=150)
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "opencite-bench-cpu-engines")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                    / "opencite" / "bench-devset")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"cpu: {cpu_line()} | load avg before: {os.getloadavg()}")
    model = gguf_file(args.workdir, 2)
    _, cached = indexed_blog(SimpleNamespace(corpus=SHARED / "corpus", cache=args.cache, model=None))
    work = Path(tempfile.mkdtemp(prefix="opencite-ahead-decode-"))
    env = dict(os.environ, OPENCITE_DATA_DIR=str(work / "data"), OPENCITE_SERVE__ENGINE="llamacpp",
               OPENCITE_SERVE__MODEL=str(model), OPENCITE_ATTRIBUTION__MODE="repair",
               OPENCITE_LLM__CONTEXT_WINDOW="32768")
    for key in ("OPENCITE_LLM__BASE_URL", "OPENCITE_LLM__MODEL", "OPENCITE_RETRIEVAL__SOURCE_TOKENS"):
        env.pop(key, None)
    cli = [sys.executable, "-m", "opencite.cli"]
    try:
        shutil.copytree(cached, work / "data")
        os.environ.update(env)
        for key in ("OPENCITE_LLM__BASE_URL", "OPENCITE_LLM__MODEL", "OPENCITE_RETRIEVAL__SOURCE_TOKENS"):
            os.environ.pop(key, None)
        subprocess.run(cli + ["serve", "--stop"], env=env, check=False)
        subprocess.run(cli + ["serve"], env=env, check=True)
        from opencite.settings import Settings

        settings = Settings()
        print(f"KB: {grow(settings, 10_000)} chunks")
        measure(settings, ten_sentence_answers(args.answers + 1), args.tokens)
    finally:
        subprocess.run(cli + ["serve", "--stop"], env=env, check=False)
        shutil.rmtree(work, ignore_errors=True)
    print(f"load avg after: {os.getloadavg()}")


def measure(settings, answers: list[tuple[str, str]], tokens: int) -> None:
    import httpx

    from opencite.app.rag.chain import RagChain
    from opencite.eval.run import RetrievalOnly, open_before_threads
    from opencite.serving.endpoint import resolve_llm

    sys.path.insert(0, str(ROOT))
    from tests.fixtures.scripted_llm import split_pieces  # how a streamed answer's pieces arrive

    engine = resolve_llm(settings)

    def decode() -> float:
        body = {"model": engine.model, "messages": [{"role": "user", "content": "Tell me about routers."}],
                "max_tokens": tokens, "temperature": 0, "stream": True}
        first = last = None
        with httpx.stream("POST", f"{engine.base_url}/chat/completions", json=body, timeout=600) as reply:
            for line in reply.iter_lines():
                if line.startswith("data: ") and '"content"' in line:
                    last = time.perf_counter()
                    first = first or last
        return last - first

    def chain(way: str) -> RagChain:
        copy = settings.model_copy(deep=True)
        copy.attribution.ahead = way
        return RagChain(copy)

    chains = {"embed": chain("embed"), "check": chain("check")}
    assert not chains["embed"].checks_ahead() and chains["check"].checks_ahead()
    retriever = RetrievalOnly(chains["embed"], settings, prompt=True)
    open_before_threads(retriever)
    pace = decode()  # warm-up; the decode's length spreads each answer's sentence ends
    seconds: dict[str, list[float]] = {way: [] for way in WAYS}
    for i, (question, answer) in enumerate(answers[1:]):
        sources = retriever.invoke([{"role": "user", "content": question}], k=settings.retrieval.k,
                                   retrieval_mode=settings.retrieval.mode).sources  # the chain's prompt
        for way in WAYS[i % 3:] + WAYS[:i % 3]:
            if way != "none":  # done during the prefill in the chain: before decoding here
                chains[way].warm_attribution(sources, "", None).result()
            worker = threading.Thread(target=write_along, args=(chains.get(way), sources, answer, pace, split_pieces))
            worker.start()
            seconds[way].append(decode())
            worker.join()
        print(f"answer {i + 1}: " + ", ".join(f"{way} {seconds[way][-1]:.2f} s" for way in WAYS), flush=True)
    base = statistics.median(seconds["none"])
    print(f"\n| while {tokens} tokens decode | p50 | mean | × none (p50) |\n|---|---|---|---|")
    for way in WAYS:
        p50 = statistics.median(seconds[way])
        print(f"| {way} | {p50:.2f} s | {statistics.mean(seconds[way]):.2f} s | {p50 / base:.3f} |")


def write_along(chain, sources, answer: str, pace: float, split_pieces) -> None:
    """The chain's work while an answer streams, each sentence end at its share of `pace`."""
    if chain is None:
        return
    from opencite.app.rag.checking import Groundwork

    groundwork, text, pieces, t0 = Groundwork(), "", split_pieces(answer), time.perf_counter()
    for j, piece in enumerate(pieces):
        text += piece
        if SENTENCE_END.search(piece):
            time.sleep(max(0.0, t0 + pace * (j + 1) / len(pieces) - time.perf_counter()))
            chain.warm_attribution(sources, text, groundwork).result()


if __name__ == "__main__":
    main()
