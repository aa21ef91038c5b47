"""Streaming says what non-streaming says (live uvicorn, real chain + MiniLM index, scripted LLM):
the final stream chunk's `opencite.content` is the non-streamed `message.content` (repaired markers
included), with the same cited sources, annotations and attributions, whose offsets index it."""

from __future__ import annotations

import openai
import pytest
from pydantic import SecretStr

from opencite.app.api.server import create_app
from tests.app.api_server import live_api
from tests.app.rag.test_chain_attribution import numbers

Q = [{"role": "user", "content": "When was the Eiffel Tower completed?"}]


def sloppy(messages):
    n = numbers(messages)
    wrong = next(v for url, v in n.items() if url != "https://blog.example/paris")
    # a wrong marker (repointed), a fact only outside the prompt (found after), an unsupported claim
    return (f"The Eiffel Tower was completed in 1889 [{wrong}]. The Berlin Wall fell in 1989. "
            "The Eiffel Tower is made of cheese and 1,000 metres tall [1].")


@pytest.fixture
def api(llm_settings, scripted_llm):
    llm_settings.llm.api_key = SecretStr(scripted_llm.api_key)
    llm_settings.retrieval.k = 2
    scripted_llm.responder = sloppy
    with live_api(create_app(llm_settings)) as server:
        yield server


def test_stream_final_chunk_equals_the_non_streamed_answer(api):
    client = openai.OpenAI(base_url=api.base_url, api_key=api.api_key, max_retries=0)
    whole = client.chat.completions.create(model=api.model, messages=Q)
    chunks = list(client.chat.completions.create(model=api.model, messages=Q, stream=True,
                                                 stream_options={"include_usage": True}))
    final = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    message = whole.choices[0].message
    ext = final.model_extra["opencite"]

    # The repair changed the text the deltas carried; the final event carries the repaired text.
    assert ext["repaired"] and streamed.strip() != message.content
    assert ext["content"] == message.content
    assert ext["annotations"] == [a.model_dump() for a in message.annotations]
    assert final.model_extra["attributions"] == whole.model_extra["attributions"]
    assert final.model_extra["citations"] == whole.model_extra["citations"]
    assert final.model_extra["sources"] == whole.model_extra["sources"]
    # A found-after source travels in both, flagged, and is cited.
    found = [s for s in whole.model_extra["sources"] if s["found_after"]]
    assert [s["url"] for s in found] == ["https://blog.example/berlin"]
    assert found[0]["n"] in [c["n"] for c in whole.model_extra["citations"]]
    # Offsets index the text the client has.
    for s in final.model_extra["attributions"]["sentences"]:
        assert ext["content"][s["start_index"]:s["end_index"]] == s["text"]
    for a in ext["annotations"]:
        span = ext["content"][a["url_citation"]["start_index"]:a["url_citation"]["end_index"]]
        assert span in [s["text"] for s in final.model_extra["attributions"]["sentences"]]
    for a in final.choices[0].delta.model_extra["annotations"]:  # the delta's: the streamed text's
        assert streamed[a["url_citation"]["start_index"]:a["url_citation"]["end_index"]].strip()
    usage_chunk = chunks[-1]
    assert not usage_chunk.choices and usage_chunk.model_extra["opencite"] == ext
