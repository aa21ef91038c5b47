"""Every answer of the RAG API validates against OpenAI's published OpenAPI schemas
(tests/fixtures/openai_schemas.json, from openai/openai-openapi): completions, stream chunks,
the model list and errors, taken from a live API over the real chain and index."""

from __future__ import annotations

import json

import httpx
import pytest

from opencite.app.api.server import create_app
from tests.app.api_server import live_api
from tests.fixtures.openai_schemas import errors

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def api(llm_settings, scripted_llm):
    scripted_llm.reply("Paris is the capital of France [1].")
    with live_api(create_app(llm_settings)) as server:
        yield server


def post(api, **body) -> httpx.Response:
    return httpx.post(f"{api.base_url}/chat/completions", json={"model": api.model, **body}, timeout=60)


def sse_chunks(api, **body) -> list[dict]:
    with httpx.stream("POST", f"{api.base_url}/chat/completions", timeout=60,
                      json={"model": api.model, "stream": True, **body}) as r:
        assert r.status_code == 200
        lines = [line.removeprefix("data: ") for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


def test_completion_validates(api):
    r = post(api, messages=QUESTION)
    assert r.status_code == 200
    assert errors("CreateChatCompletionResponse", r.json()) == []


@pytest.mark.parametrize("include_usage", [False, True])
def test_every_stream_chunk_validates(api, include_usage):
    chunks = sse_chunks(api, messages=QUESTION, stream_options={"include_usage": include_usage})
    assert len(chunks) >= 3
    for chunk in chunks:
        assert errors("CreateChatCompletionStreamResponse", chunk) == []
    assert (chunks[-1].get("usage") is not None) == include_usage


def test_model_list_validates(api):
    r = httpx.get(f"{api.base_url}/models")
    assert errors("ListModelsResponse", r.json()) == []


def test_errors_validate(api, scripted_llm):
    bodies = [
        post(api, messages=QUESTION, model="gpt-4o"),                    # unknown model: 404
        post(api, messages=[]),                                          # invalid request: 400
        post(api, messages=QUESTION, temperature="hot"),                 # invalid value: 400
        httpx.get(f"{api.url}/v1/nope"),                                 # unknown route: 404
    ]
    scripted_llm.fail(500)
    bodies.append(post(api, messages=QUESTION))                         # LLM failure: 502
    for r in bodies:
        assert r.status_code >= 400
        assert errors("ErrorResponse", r.json()) == [], r.json()


def test_error_in_the_stream_validates(api, scripted_llm):
    scripted_llm.reply("Paris is the capital of France [1]. " * 5)
    scripted_llm.fail_after_chunks = 3  # the LLM drops the connection mid-answer
    chunks = sse_chunks(api, messages=QUESTION)
    assert "error" in chunks[-1]
    assert errors("ErrorResponse", chunks[-1]) == []
    for chunk in chunks[:-1]:
        assert errors("CreateChatCompletionStreamResponse", chunk) == []


def test_finish_reason_and_usage_are_the_llms(api, scripted_llm):
    scripted_llm.reply("Paris [1] is")
    scripted_llm.finish_reason = "length"
    chunks = sse_chunks(api, messages=QUESTION, stream_options={"include_usage": True})
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 3  # the LLM's count, not the chunks'
    body = post(api, messages=QUESTION).json()
    assert body["choices"][0]["finish_reason"] == "length" and body["usage"]["completion_tokens"] == 3
