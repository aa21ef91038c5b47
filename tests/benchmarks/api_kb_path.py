"""What 3 KBs and scoped keys add to each API request, isolated from retrieval and the LLM.

End to end (bench_api's KB rows) the 16-client TTFT p50 is ~2 s and drifts by hundreds of ms
between rounds on this shared machine, so it cannot show a 1 ms difference. What differs between
a 1-KB API without keys and a 3-KB API with a keys file of 3 scoped keys is only the request path
before the chain runs:
  - ApiGuard: the Authorization header is found and its token hashed (sha256) and compared in
    constant time with every configured key (3 here; with no keys it is skipped);
  - KbModels.resolve: `opencite-rag/<kb>` is split and its name checked, the KB's kb.json looked
    for on disk (the default KB needs no look-up), the key's KBs checked;
  - KbModels.chain: for a KB other than the API's default, its kb.json is read to notice a KB
    deleted and made again, then the cached chain is used.
Retrieval and generation are the same code over the same pages in every KB, so they are held out:
both apps answer through `InstantChainDouble` (a test double of `RagChain` that streams one cited
token at once, with five sources) and run in this process behind httpx's ASGI transport, so no
HTTP server or socket noise either. Everything else is the real app (`create_app`): middleware,
metrics, request parsing, KB routing over real kb.json files, a real keys file, the SSE stream.

Each round sends 16 requests at once (16 clients) to one app; the rounds alternate A B B A so
drift hits both apps alike. Printed: p50 latency of each app (request to the whole one-token
answer, i.e. its first token), the difference, and its 95% interval from a bootstrap that resamples
pairs of adjacent rounds (requests in one round share its machine state). Also the in-process
cost of the routing and auth calls alone (key match + resolve + chain look-up) per request.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np

from opencite.app.answer_types import DoneEvent, RagAnswer, Source, SourcesEvent, TokenEvent

KB_NAMES = ["default", "docs", "blog"]
CLIENTS = 16


def kb_key(name: str) -> str:
    return f"sk-bench-{name}-key"


def kb_model(i: int) -> tuple[str, str]:
    """Request i of the 3-KB API: its model and the key scoped to that model's KB."""
    name = KB_NAMES[i % len(KB_NAMES)]
    return ("opencite-rag" if name == "default" else f"opencite-rag/{name}"), kb_key(name)


def write_keys(data_dir: Path) -> Path:
    """A keys file with one key per KB, each scoped to that KB only."""
    keys = data_dir / "keys.toml"
    keys.parent.mkdir(parents=True, exist_ok=True)
    keys.write_text("\n".join(f'[[keys]]\nname = "{n}-team"\nkey = "{kb_key(n)}"\nkbs = ["{n}"]\n'
                              for n in KB_NAMES))
    return keys


class InstantChainDouble:
    """A test double of `RagChain`: five sources, then one cited token, then the answer, at once."""

    SOURCES = [Source(n, f"Post {n}", f"https://blog.example/post-{n}",
                      f"Post {n} explains how teams run open models and answer with citations.", 0.5)
               for n in range(1, 6)]

    def answer(self, messages) -> RagAnswer:
        q = messages[-1]["content"]
        return RagAnswer(q, q, "Answer [1].", self.SOURCES, self.SOURCES[:1], 0,
                         usage={"prompt_tokens": 100, "completion_tokens": 3}, timings={},
                         finish_reason="stop")

    async def astream(self, messages, **options):
        yield SourcesEvent(self.SOURCES)
        yield TokenEvent("Answer [1].")
        yield DoneEvent(self.answer(messages))

    async def ainvoke(self, messages, **options):
        return self.answer(messages)


def build_apps(root: Path):
    """(1-KB app without keys, 3-KB app with 3 scoped keys), both over `InstantChainDouble`."""
    from opencite.app.api import create_app
    from opencite.ingest import kb
    from opencite.settings import Settings

    one = Settings(data_dir=root / "one-kb", api={"api_key": None, "keys_file": None})
    three = Settings(data_dir=root / "three-kbs", api={"api_key": None, "keys_file": write_keys(root / "three-kbs")})
    for name in KB_NAMES[1:]:
        kb.create(three, name)
    double = InstantChainDouble()
    return (create_app(one, chain=double, open_chain=lambda s: double),
            create_app(three, chain=double, open_chain=lambda s: double))


async def one_round(http, models, offset: int) -> list[float]:
    async def one(i):
        model, key = models(offset + i)
        body = {"model": model, "stream": True, "max_tokens": 32, "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": f"Question {offset + i}?"}]}
        start, start_cpu = time.perf_counter(), time.thread_time()
        resp = await http.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})
        elapsed, cpu = time.perf_counter() - start, time.thread_time() - start_cpu
        if resp.status_code != 200 or "Answer [1]." not in resp.text or not resp.text.endswith("[DONE]\n\n"):
            raise RuntimeError(f"{model}: {resp.status_code} {resp.text[:300]}")
        return elapsed, cpu
    return list(await asyncio.gather(*(one(i) for i in range(CLIENTS))))


async def measure_path(root: Path, rounds: int) -> dict:
    import httpx

    from opencite.app.api_keys import OPEN_ACCESS, load_keyring

    one_app, three_app = build_apps(root)
    models = {"one": lambda i: ("opencite-rag", "x"), "three": kb_model}
    clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
               for name, app in (("one", one_app), ("three", three_app))}
    lat = {"one": [], "three": []}
    async with clients["one"], clients["three"]:
        for name in lat:  # warm-up: opens every KB's chain, fills caches
            for r in range(4):
                await one_round(clients[name], models[name], r * CLIENTS)
        for r in range(rounds):
            order = ("one", "three") if r % 2 == 0 else ("three", "one")
            for name in order:
                lat[name].append(await one_round(clients[name], models[name], r * CLIENTS))

        # The routing and auth calls alone, one request at a time, in a tight loop.
        keyrings = {"one": None, "three": load_keyring(three_app.state.settings.api.keys_file, None)}
        path_us = {}
        for name, app in (("one", one_app), ("three", three_app)):
            kb_models, keyring, n = app.state.models, keyrings[name], 3000
            start = time.perf_counter()
            for i in range(n):
                model, secret = models[name](i)
                key = keyring.match(secret) if keyring else OPEN_ACCESS
                await kb_models.chain(kb_models.resolve(model, key))
            path_us[name] = (time.perf_counter() - start) / n * 1e6
    rows = {"requests": len(lat["one"]) * CLIENTS, "path_us": path_us}
    for clock, column in (("wall", 0), ("cpu", 1)):
        rows[clock] = compare(np.array(lat["one"])[..., column], np.array(lat["three"])[..., column])
    return rows


def compare(one: np.ndarray, three: np.ndarray) -> dict:
    """p50s of (rounds, CLIENTS) latencies and their difference, with a 95% bootstrap interval
    over pairs of adjacent rounds."""
    rounds = len(one)
    rng = np.random.default_rng(15)
    idx = rng.integers(0, rounds, (2000, rounds))
    diffs = [np.median(three[i]) - np.median(one[i]) for i in idx]
    low, high = np.percentile(diffs, [2.5, 97.5])
    return {"one_p50_ms": np.median(one) * 1e3, "three_p50_ms": np.median(three) * 1e3,
            "added_ms": (np.median(three) - np.median(one)) * 1e3, "ci_ms": (low * 1e3, high * 1e3)}

def print_path(rows: dict, rounds: int) -> None:
    print(f"\nbench_api request path (instant chain double, in-process ASGI): {CLIENTS} clients, "
          f"{rounds} alternating rounds, {rows['requests']} requests per API")
    for clock, label in (("wall", "wall clock"), ("cpu", "CPU time of the serving thread")):
        row = rows[clock]
        low, high = row["ci_ms"]
        print(f"{label:31}: 1 KB, no keys p50 {row['one_p50_ms']:7.3f} ms; 3 KBs + 3 scoped keys p50 "
              f"{row['three_p50_ms']:7.3f} ms; added p50 {row['added_ms']:+.3f} ms "
              f"(95% bootstrap interval {low:+.3f} .. {high:+.3f} ms) (target <= 1 ms)")
    print(f"routing + auth calls per request (key match, resolve, chain look-up), one at a time: "
          f"1 KB {rows['path_us']['one']:.1f} us, 3 KBs + keys {rows['path_us']['three']:.1f} us")
