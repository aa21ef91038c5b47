"""What 3 KBs and scoped keys add to each API request, isolated from retrieval and the LLM.

End to end (bench_api's KB rows) the 16-client TTFT p50 is ~2 s and drifts by hundreds of ms
between rounds on this shared machine, so it cannot show a 1 ms difference. What differs between
a 1-KB API without keys and a 3-KB API with a keys file of 3 scoped keys is only the request path
before the chain runs:
  - ApiGuard: the Authorization header is found and its token hashed (sha256) and compared in
    constant time with every configured key (3 here; with no keys it is skipped);
  - KbModels.answerer: `opencite-rag/<kb>` is split, the key's KBs checked, and for a KB other than
    `default` its record (kb.json) is stat'ed once, to 404 a deleted KB and to notice one made again;
    the record is read only when that stat changes (the default KB needs no look-up at all).
    (Before this benchmark the record was read and parsed on every request, plus two path
    look-ups: +2.4 ms CPU p50 at 16 clients, over the target.)
Retrieval and generation are the same code over the same pages in every KB, so they are held out:
both apps answer through `InstantChainDouble` (a test double of `RagChain` that streams one cited
token at once, with five sources) and run in this process behind httpx's ASGI transport, so no
HTTP server or socket noise either. Everything else is the real app (`create_app`): middleware,
metrics, request parsing, KB routing over real kb.json files, a real keys file, the SSE stream.

Each round sends 16 requests at once (16 clients) to each of three apps in a random order: the
1-KB app, a second identical 1-KB app (the control), the 3-KB app. Printed: p50 latency of each
(request to the whole one-token answer, i.e. its first token), what the 3-KB app adds over the 1-KB
one, and what the control "adds" (the method's own bias: it should straddle 0), each with a 95%
interval from a bootstrap that resamples rounds (requests in one round share its machine state).
Latency is given twice: wall clock, and CPU time of the one thread that serves and sends the
requests (`time.thread_time`), which leaves out the time other jobs on this shared machine hold the
cores and so gives a tighter interval; on an idle core the two agree. Also the cost of the routing
and auth calls alone (key match + KbModels.answerer), one request at a time.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np

from opencite.app.answer import DoneEvent, RagAnswer, Source, SourcesEvent, TokenEvent

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


def build_apps(root: Path) -> dict:
    """{"one": 1-KB app without keys, "control": another one like it, "three": 3-KB app with 3
    scoped keys}, all over `InstantChainDouble`."""
    from opencite.app.api.server import create_app
    from opencite.store import kb
    from opencite.settings import Settings

    three = Settings(data_dir=root / "three-kbs", api={"api_key": None, "keys_file": write_keys(root / "three-kbs")})
    for name in KB_NAMES[1:]:
        kb.create(three, name)
    double = InstantChainDouble()
    settings = {"one": Settings(data_dir=root / "one-kb", api={"api_key": None, "keys_file": None}),
                "control": Settings(data_dir=root / "control", api={"api_key": None, "keys_file": None}),
                "three": three}
    return {name: create_app(s, chain=double, open_chain=lambda s: double) for name, s in settings.items()}


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

    from opencite.app.api.keys import OPEN_ACCESS, load_keyring

    apps = build_apps(root)
    models = {"one": lambda i: ("opencite-rag", "x"), "control": lambda i: ("opencite-rag", "x"), "three": kb_model}
    clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api")
               for name, app in apps.items()}
    lat = {name: [] for name in apps}
    rng = np.random.default_rng(15)
    async with clients["one"], clients["control"], clients["three"]:
        for name in lat:  # warm-up: opens every KB's chain, fills caches
            for r in range(4):
                await one_round(clients[name], models[name], r * CLIENTS)
        for r in range(rounds):
            # A random order each round: neither drift nor the collector's rhythm favours one app.
            for name in rng.permutation(list(apps)):
                lat[name].append(await one_round(clients[name], models[name], r * CLIENTS))

        # The routing and auth calls alone, one request at a time, in a tight loop.
        keyrings = {"one": None, "three": load_keyring(apps["three"].state.settings.api.keys_file, None)}
        path_us = {}
        for name in keyrings:
            app = apps[name]
            kb_models, keyring, n = app.state.models, keyrings[name], 3000
            start = time.perf_counter()
            for i in range(n):
                model, secret = models[name](i)
                key = keyring.match(secret) if keyring else OPEN_ACCESS
                await kb_models.answerer(model, key)
            path_us[name] = (time.perf_counter() - start) / n * 1e6
    rows = {"requests": len(lat["one"]) * CLIENTS, "path_us": path_us}
    for clock, column in (("wall", 0), ("cpu", 1)):
        rows[clock] = compare(*(np.array(lat[name])[..., column] for name in ("one", "control", "three")))
    return rows


def compare(one: np.ndarray, control: np.ndarray, three: np.ndarray) -> dict:
    """p50s of (rounds, CLIENTS) latencies, what 3 KBs add and what the control app "adds" (the
    method's own bias), each with a 95% bootstrap interval over rounds (a round holds all three)."""
    idx = np.random.default_rng(16).integers(0, len(one), (2000, len(one)))
    row = {name: np.median(a) * 1e3 for name, a in (("one", one), ("control", control), ("three", three))}
    for name, other in (("added", three), ("bias", control)):
        diffs = [np.median(other[i]) - np.median(one[i]) for i in idx]
        row[name] = (np.median(other) - np.median(one)) * 1e3
        row[f"{name}_ci"] = tuple(np.percentile(diffs, [2.5, 97.5]) * 1e3)
    return row


def print_path(rows: dict, rounds: int) -> None:
    print(f"\nbench_api request path (instant chain double, in-process ASGI): {CLIENTS} clients, "
          f"{rounds} rounds of each API in random order, {rows['requests']} requests per API")
    for clock, label in (("wall", "wall clock"), ("cpu", "CPU time of the serving thread")):
        r = rows[clock]
        print(f"{label}: p50 1 KB, no keys {r['one']:.3f} ms; same again (control) {r['control']:.3f} ms; "
              f"3 KBs + 3 scoped keys {r['three']:.3f} ms")
        print(f"  3 KBs + scoped keys: added p50 {r['added']:+.3f} ms (95% bootstrap interval "
              f"{r['added_ci'][0]:+.3f} .. {r['added_ci'][1]:+.3f}) (target <= 1 ms); control minus 1 KB "
              f"{r['bias']:+.3f} ms ({r['bias_ci'][0]:+.3f} .. {r['bias_ci'][1]:+.3f})")
    print(f"routing + auth calls per request (key match, KbModels.answerer), one at a time: "
          f"1 KB {rows['path_us']['one']:.1f} us, 3 KBs + keys {rows['path_us']['three']:.1f} us")
