"""The notebook's client snippets (tests/fixtures/clients.py), unchanged but for base URL, key
and model, pointed at the RAG API — with the scripted LLM double behind it so every answer
carries a `[1]` citation — plus reading the `citations` extension from each client."""

from __future__ import annotations

import json
import subprocess

import pytest
from pydantic import SecretStr

from opencite.app.api.server import create_app
from tests.app.api_server import live_api
from tests.fixtures.clients import CLIENTS, QUESTION, ensure_js_client

ANSWER = "Open source lets anyone inspect and improve the code [1]."
PAGE = ("https://blog.example/open-source", "Why open source matters",
        "Open-source software is important because anyone can inspect, fix and improve the code.")


pytestmark = pytest.mark.slow  # the client snippets, npm included


@pytest.fixture
def rag_api(llm_settings, scripted_llm):
    from tests.app.conftest import add_pages

    add_pages(llm_settings, [PAGE])
    llm_settings.llm.api_key = SecretStr(scripted_llm.api_key)
    llm_settings.api.api_key = SecretStr("rag-key")  # the clients send their key: check it passes
    scripted_llm.reply(ANSWER)
    with live_api(create_app(llm_settings), api_key="rag-key") as server:
        yield server


@pytest.mark.parametrize("snippet", list(CLIENTS))
def test_notebook_snippet_gets_a_cited_answer(snippet, rag_api, scripted_llm):
    text = CLIENTS[snippet](rag_api)
    assert text.strip() == ANSWER
    assert scripted_llm.requests, "the answer came through the RAG chain and its LLM"


def test_langchain_inside_an_lcel_chain(rag_api):
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model=rag_api.model, api_key=rag_api.api_key, base_url=rag_api.base_url)
    chain = ChatPromptTemplate.from_template("{question}") | llm | StrOutputParser()
    assert chain.invoke({"question": QUESTION}) == ANSWER
    streamed = "".join(chain.stream({"question": QUESTION}))
    assert streamed == ANSWER


def test_citations_extension_from_each_client(rag_api):
    from langchain_openai import ChatOpenAI
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai_like import OpenAILike
    from openai import OpenAI

    question = QUESTION
    # OpenAI Python: unknown fields land in model_extra, non-streaming and on the final chunk.
    client = OpenAI(base_url=rag_api.base_url, api_key=rag_api.api_key)
    resp = client.chat.completions.create(model=rag_api.model,
                                          messages=[{"role": "user", "content": question}])
    assert resp.model_extra["citations"][0]["url"] == PAGE[0]
    last = list(client.chat.completions.create(model=rag_api.model, stream=True,
                                               messages=[{"role": "user", "content": question}]))[-1]
    assert last.model_extra["citations"][0]["title"] == PAGE[1]

    # LangChain: the sources header through include_response_headers.
    llm = ChatOpenAI(model=rag_api.model, api_key=rag_api.api_key, base_url=rag_api.base_url,
                     include_response_headers=True)
    msg = llm.invoke(question)
    sources = json.loads(msg.response_metadata["headers"]["x-opencite-sources"])
    assert sources[0]["url"] == PAGE[0]

    # LlamaIndex: `raw` is the OpenAI response object.
    li = OpenAILike(model=rag_api.model, api_key=rag_api.api_key, api_base=rag_api.base_url,
                    is_chat_model=True, context_window=4096)
    raw = li.chat([ChatMessage(role="user", content=question)]).raw
    assert raw.model_extra["citations"][0]["url"] == PAGE[0]

    # openai npm: extra fields are plain properties of the final chunk.
    script = """
import OpenAI from "openai";
const c = new OpenAI({baseURL: process.env.B, apiKey: process.env.K});
const stream = await c.chat.completions.create({model: process.env.M, stream: true,
  messages: [{role: "user", content: "Why is open-source software important?"}]});
let citations = null;
for await (const chunk of stream) { if (chunk.citations) citations = chunk.citations; }
const resp = await c.chat.completions.create({model: process.env.M,
  messages: [{role: "user", content: "Why is open-source software important?"}]});
console.log(JSON.stringify({stream: citations, resp: resp.citations}));
"""
    js_dir = ensure_js_client()
    out = subprocess.run(["node", "--input-type=module", "-e", script], cwd=js_dir, capture_output=True,
                         text=True, timeout=120, check=True,
                         env={"PATH": __import__("os").environ["PATH"], "B": rag_api.base_url,
                              "K": rag_api.api_key, "M": rag_api.model})
    got = json.loads(out.stdout)
    assert got["stream"][0]["url"] == PAGE[0] and got["resp"][0]["url"] == PAGE[0]
