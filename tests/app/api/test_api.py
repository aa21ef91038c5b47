"""The RAG API with the real chain, a real small index and the scripted LLM double behind it,
driven by the OpenAI Python SDK and raw HTTP against a live uvicorn."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
from pydantic import SecretStr

from opencite.app.api.server import create_app
from tests.app.api_server import live_api
from tests.app.conftest import PAGES

ANSWER = "Paris is the capital of France [1]."


@pytest.fixture
def llm_settings(llm_settings):
    # The shared fixture may assign a plain str; the settings tree types keys as SecretStr.
    llm_settings.llm.api_key = SecretStr(str(getattr(llm_settings.llm.api_key, "get_secret_value",
                                                     lambda: llm_settings.llm.api_key)()))
    return llm_settings


@pytest.fixture
def api(llm_settings, scripted_llm):
    scripted_llm.reply(ANSWER)
    with live_api(create_app(llm_settings)) as server:
        yield server


def client(api, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=api.base_url, api_key=api.api_key, max_retries=0, **kw)


def test_models_health_and_unknown_model(api):
    models = client(api).models.list()
    assert [m.id for m in models.data] == ["opencite-rag", "opencite-rag/default"]
    assert httpx.get(f"{api.url}/health").json()["status"] == "ok"
    with pytest.raises(openai.NotFoundError) as err:
        client(api).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert err.value.code == "model_not_found"
    assert err.value.body["param"] == "model"


def test_non_streaming_answer_carries_citations_both_ways(api, scripted_llm):
    resp = client(api).chat.completions.create(
        model=api.model, messages=[{"role": "user", "content": "What is the capital of France?"}])
    assert resp.choices[0].message.content == ANSWER
    assert resp.choices[0].finish_reason == "stop"
    cited = resp.model_extra["citations"]
    assert [c["n"] for c in cited] == [1]
    assert cited[0]["url"] == "https://blog.example/paris"
    assert "capital of France" in cited[0]["snippet"]
    assert len(resp.model_extra["sources"]) == len(PAGES)  # every page: fewer than settings.retrieval.k
    assert resp.usage.completion_tokens > 0


def test_streaming_with_usage_ends_with_citations_chunk(api):
    stream = client(api).chat.completions.create(
        model=api.model, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "What is the capital of France?"}])
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == ANSWER
    finish = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finish) == 1 and finish[0].model_extra["citations"][0]["n"] == 1
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens > 0
    assert chunks[-1].model_extra["citations"][0]["url"] == "https://blog.example/paris"


def test_request_fields_are_forwarded_to_the_llm(api, scripted_llm):
    client(api).chat.completions.create(
        model=api.model, messages=[{"role": "user", "content": "Capital of France?"}],
        temperature=0.3, top_p=0.9, max_completion_tokens=64, seed=7, stop=["\n\n"],
        frequency_penalty=0.5, presence_penalty=0.25, user="u-1")
    sent = scripted_llm.requests[-1]
    assert sent["temperature"] == 0.3 and sent["top_p"] == 0.9 and sent["seed"] == 7
    assert sent.get("max_tokens", sent.get("max_completion_tokens")) == 64
    assert sent["stop"] == ["\n\n"]
    assert sent["frequency_penalty"] == 0.5 and sent["presence_penalty"] == 0.25
    assert sent["user"] == "u-1"


def test_retrieval_extension_through_extra_body(api, scripted_llm):
    resp = client(api).chat.completions.create(
        model=api.model, messages=[{"role": "user", "content": "Capital of France?"}],
        extra_body={"retrieval": {"mode": "dense", "k": 2}})
    assert len(resp.model_extra["sources"]) == 2
    header = httpx.post(f"{api.base_url}/chat/completions", json={
        "model": api.model, "messages": [{"role": "user", "content": "Capital of France?"}],
        "retrieval": {"k": 1}}).headers["x-opencite-sources"]
    assert json.loads(header)[0]["url"] == "https://blog.example/paris"


def test_multi_turn_follow_up_is_condensed(api, scripted_llm):
    scripted_llm.responder = lambda messages: (
        "What is the capital of Germany?" if "conversation" in json.dumps(messages).lower()
        and len(scripted_llm.requests) == 1 else "Berlin [1].")
    resp = client(api).chat.completions.create(model=api.model, messages=[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tell me about France."},
        {"role": "assistant", "content": "France is in Europe."},
        {"role": "user", "content": "And Germany's capital?"},
    ])
    assert len(scripted_llm.requests) == 2  # condense, then answer
    assert "Germany" in resp.model_extra["standalone_question"]


@pytest.mark.parametrize("extra, param", [
    ({"n": 2}, "n"),
    ({"tools": [{"type": "function", "function": {"name": "f"}}]}, "tools"),
    ({"logprobs": True}, "logprobs"),
    ({"response_format": {"type": "json_object"}}, "response_format"),
    ({"frobnicate": 1}, "frobnicate"),
    ({"temperature": 5}, "temperature"),
    ({"retrieval": {"mode": "magic"}}, "retrieval.mode"),
])
def test_unsupported_or_invalid_fields_are_refused_with_param(api, extra, param):
    with pytest.raises(openai.BadRequestError) as err:
        client(api).chat.completions.create(
            model=api.model, messages=[{"role": "user", "content": "hi"}], extra_body=extra)
    assert err.value.status_code == 400
    assert err.value.body["param"] == param
    assert err.value.body["type"] == "invalid_request_error"


def test_malformed_bodies_get_openai_errors(api):
    bad_json = httpx.post(f"{api.base_url}/chat/completions", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    last_not_user = httpx.post(f"{api.base_url}/chat/completions", json={
        "model": api.model, "messages": [{"role": "assistant", "content": "x"}]})
    assert last_not_user.status_code == 400
    assert last_not_user.json()["error"]["param"] == "messages[0].role"
    image = httpx.post(f"{api.base_url}/chat/completions", json={"model": api.model, "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]}]})
    assert image.status_code == 400 and image.json()["error"]["param"] == "messages[0].content[0].type"
    missing = httpx.post(f"{api.base_url}/chat/completions", json={"messages": []})
    assert missing.status_code == 400 and set(missing.json()["error"]) == {"message", "type", "param", "code"}
    unknown_route = httpx.get(f"{api.url}/v1/nothing")
    assert unknown_route.status_code == 404 and "error" in unknown_route.json()


def test_request_size_limit_is_413(llm_settings):
    llm_settings.api.max_request_bytes = 2048
    with live_api(create_app(llm_settings)) as api:
        big = {"model": api.model, "messages": [{"role": "user", "content": "x" * 5000}]}
        resp = httpx.post(f"{api.base_url}/chat/completions", json=big)
        assert resp.status_code == 413 and resp.json()["error"]["code"] == "request_too_large"
        # chunked upload without Content-Length is cut off too
        body = json.dumps(big).encode()
        resp = httpx.post(f"{api.base_url}/chat/completions", content=iter([body[:1500], body[1500:]]),
                          headers={"content-type": "application/json"})
        assert resp.status_code == 413


def test_api_key_and_cors(llm_settings, scripted_llm):
    scripted_llm.reply(ANSWER)
    llm_settings.api.api_key = SecretStr("s3cret")
    llm_settings.api.cors_origins = ["http://ui.example"]
    with live_api(create_app(llm_settings), api_key="s3cret") as api:
        assert httpx.get(f"{api.url}/health").status_code == 200
        for path in ("/v1/models", "/v1/models/opencite-rag", "/openapi.json", "/docs"):
            resp = httpx.get(f"{api.url}{path}")
            assert resp.status_code == 401 and resp.json()["error"]["code"] == "invalid_api_key"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=api.base_url, api_key="wrong", max_retries=0).models.list()
        resp = client(api).chat.completions.create(
            model=api.model, messages=[{"role": "user", "content": "Capital of France?"}])
        assert resp.choices[0].message.content == ANSWER
        preflight = httpx.options(f"{api.base_url}/chat/completions", headers={
            "origin": "http://ui.example", "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type,x-stainless-os"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "http://ui.example"
        other = httpx.options(f"{api.base_url}/chat/completions", headers={
            "origin": "http://evil.example", "access-control-request-method": "POST"})
        assert "access-control-allow-origin" not in other.headers


def test_llm_down_is_503_before_streaming_and_error_chunk_after(llm_settings, scripted_llm):
    from tests.conftest import free_port

    down = llm_settings.model_copy(deep=True)
    down.llm.base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with live_api(create_app(down)) as api:
        for stream in (False, True):
            with pytest.raises(openai.InternalServerError) as err:
                out = client(api).chat.completions.create(
                    model=api.model, stream=stream, messages=[{"role": "user", "content": "France?"}])
                list(out) if stream else None
            assert err.value.status_code == 503 and err.value.code == "llm_unavailable"
        assert api.health()["active_generations"] == 0

    scripted_llm.reply("Paris is the capital of France and more words follow here [1].")
    scripted_llm.fail_after_chunks = 4  # the LLM drops the connection mid-answer
    with live_api(create_app(llm_settings)) as api:
        stream = client(api).chat.completions.create(
            model=api.model, stream=True, messages=[{"role": "user", "content": "France?"}])
        got = []
        with pytest.raises(openai.APIError) as err:
            for chunk in stream:
                got.append(chunk.choices[0].delta.content or "")
        assert "Paris" in "".join(got)
        assert err.value.body["code"] in ("llm_error", "llm_unavailable")
        assert api.health()["active_generations"] == 0


def test_too_many_concurrent_generations_is_429(llm_settings, scripted_llm):
    scripted_llm.reply("Paris is the capital of France, as many pages say [1].")
    scripted_llm.token_delay = 0.2
    llm_settings.api.max_concurrent_generations = 1
    with live_api(create_app(llm_settings)) as api:
        stream = client(api).chat.completions.create(
            model=api.model, stream=True, messages=[{"role": "user", "content": "France?"}])
        next(iter(stream))
        with pytest.raises(openai.RateLimitError) as err:
            client(api).chat.completions.create(model=api.model, messages=[{"role": "user", "content": "x"}])
        assert err.value.code == "rate_limit_exceeded"
        stream.close()


class ClosingSpy:
    """Wraps the real chain and records whether a stream was closed before its DoneEvent."""

    def __init__(self, chain):
        self.chain = chain
        self.closed_early = 0
        self.completed = 0

    async def ainvoke(self, messages, **options):
        return await self.chain.ainvoke(messages, **options)

    async def astream(self, messages, **options):
        done = False
        try:
            async for event in self.chain.astream(messages, **options):
                done = done or hasattr(event, "answer")
                yield event
        finally:
            if done:
                self.completed += 1
            else:
                self.closed_early += 1


def test_client_disconnect_mid_stream_frees_the_generation(llm_settings, scripted_llm):
    from opencite.app.rag.chain import RagChain

    scripted_llm.reply(" ".join(["word"] * 200) + " [1].")
    scripted_llm.token_delay = 0.05
    spy = ClosingSpy(RagChain(llm_settings))
    with live_api(create_app(llm_settings, chain=spy)) as api:
        with httpx.stream("POST", f"{api.base_url}/chat/completions", json={
                "model": api.model, "stream": True,
                "messages": [{"role": "user", "content": "France?"}]}) as resp:
            lines = resp.iter_lines()
            seen = [next(lines) for _ in range(6)]
            assert any("word" in line for line in seen)
            assert api.health()["active_generations"] == 1
        # the client hung up after a few tokens of a ~10 s answer
        for _ in range(100):
            health = api.health()
            if health["active_generations"] == 0 and spy.closed_early:
                break
            asyncio.run(asyncio.sleep(0.05))
        assert health["active_generations"] == 0
        assert health["cancelled_generations"] == 1
        assert spy.closed_early == 1 and spy.completed == 0


@pytest.mark.slow  # 32 concurrent streams
def test_32_concurrent_streaming_clients_get_correct_answers(llm_settings, scripted_llm):
    cities = {"France": "Paris", "Italy": "Rome", "Germany": "Berlin", "Spain": "Madrid"}

    def responder(messages):
        question = messages[-1]["content"]
        for country, city in cities.items():
            if f"capital of {country}?" in question:
                return f"{city} is the capital of {country} [1]."
        return "Unknown."

    scripted_llm.responder = responder
    # The double is a ThreadingHTTPServer with a listen backlog of 5: widen it so 32 answers can
    # open their LLM connections at once (a real LLM server has a deep backlog).
    scripted_llm._server.server.socket.listen(128)
    with live_api(create_app(llm_settings)) as api:
        async def ask(i: int, aclient: openai.AsyncOpenAI):
            country = list(cities)[i % 4]
            stream = await aclient.chat.completions.create(
                model=api.model, stream=True,
                messages=[{"role": "user", "content": f"What is the capital of {country}?"}])
            text, citations = "", None
            async for chunk in stream:
                if chunk.choices:
                    text += chunk.choices[0].delta.content or ""
                    if chunk.choices[0].finish_reason:
                        citations = chunk.model_extra["citations"]
            return country, text, citations

        async def main():
            async with openai.AsyncOpenAI(base_url=api.base_url, api_key="x", max_retries=0) as ac:
                return await asyncio.gather(*(ask(i, ac) for i in range(32)))

        results = asyncio.run(main())
        assert len(results) == 32
        for country, text, citations in results:
            assert text == f"{cities[country]} is the capital of {country} [1].", text
            assert citations and citations[0]["url"] == f"https://blog.example/{cities[country].lower()}"
        assert api.health()["active_generations"] == 0


@pytest.mark.slow  # `opencite api` as a subprocess
def test_opencite_api_command_serves_models_and_health(settings_env, monkeypatch):
    import subprocess
    import sys

    from tests.conftest import free_port, wait_http

    port = free_port()
    monkeypatch.setenv("OPENCITE_API__API_KEY", "cli-key")
    proc = subprocess.Popen([sys.executable, "-m", "opencite.cli", "api", "--port", str(port),
                             "--log-level", "warning"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=120, proc=proc)
        assert httpx.get(f"http://127.0.0.1:{port}/health").json()["active_generations"] == 0
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 401
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers={"authorization": "Bearer cli-key"})
        assert models.json()["data"][0]["id"] == "opencite-rag"
    finally:
        proc.terminate()
        proc.wait(30)
