"""The RAG API over a real index with llama.cpp behind it (the tiny random-weight GGUF): a streamed
and a non-streamed answer come back in OpenAI's shape with their sources. Random weights:
structure, not wording."""

from __future__ import annotations

import pytest
from openai import OpenAI
from pydantic import SecretStr

from opencite.app.api.server import create_app
from tests.app.api_server import live_api

pytestmark = pytest.mark.slow  # a real llama.cpp server

QUESTION = [{"role": "user", "content": "What is the capital of Italy?"}]


@pytest.fixture
def api_on_llamacpp(indexed, llamacpp_engine):
    indexed.llm.base_url = llamacpp_engine.base_url
    indexed.llm.model = llamacpp_engine.model
    indexed.llm.api_key = SecretStr(llamacpp_engine.api_key)
    indexed.llm.context_window = 2048  # the fixture's n_ctx
    indexed.llm.max_tokens = 16
    with live_api(create_app(indexed)) as server:
        yield OpenAI(base_url=server.base_url, api_key="unused"), server.model


def test_non_streamed_answer(api_on_llamacpp):
    client, model = api_on_llamacpp
    reply = client.chat.completions.create(model=model, messages=QUESTION)
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.model_extra["sources"][0]["url"] == "https://blog.example/rome"


def test_streamed_answer(api_on_llamacpp):
    client, model = api_on_llamacpp
    chunks = list(client.chat.completions.create(model=model, messages=QUESTION, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks and chunks[-1].choices[0].finish_reason in ("stop", "length")
    assert isinstance(text, str)


@pytest.mark.parametrize("stream", [False, True])
def test_the_answer_stops_at_max_tokens(api_on_llamacpp, stream):
    """The engine gets the cap under the name it reads: random weights rarely stop on their own, so
    without it the answer would run on to the context window."""
    client, model = api_on_llamacpp
    if stream:
        chunks = list(client.chat.completions.create(model=model, messages=QUESTION, max_tokens=4, stream=True,
                                                     stream_options={"include_usage": True}))
        usage = next(c.usage for c in reversed(chunks) if c.usage)
    else:
        usage = client.chat.completions.create(model=model, messages=QUESTION, max_tokens=4).usage
    assert 1 <= usage.completion_tokens <= 4
