"""Verified citations through the API, read by the OpenAI Python SDK as typed fields:
`message.annotations[i].url_citation` (url_citation annotations with text fragment URLs) and the
`attributions` extension, non-streaming and on the final stream chunk."""

from __future__ import annotations

import openai
import pytest
from openai.types.chat.chat_completion_message import Annotation
from pydantic import SecretStr

from opencite.app.api.server import create_app
from tests.app.api_server import live_api
from tests.app.rag.test_chain_attribution import numbers

Q = [{"role": "user", "content": "When was the Eiffel Tower completed?"}]


def wrong_then_missing(messages):
    n = numbers(messages)
    return (f"The Eiffel Tower was completed in 1889 [{n['https://blog.example/rome']}]. "
            "The Berlin Wall fell in 1989. The Eiffel Tower is made of cheese and 1,000 metres tall [1].")


@pytest.fixture
def api(llm_settings, scripted_llm):
    llm_settings.llm.api_key = SecretStr(scripted_llm.api_key)
    llm_settings.retrieval.k = 5
    scripted_llm.responder = wrong_then_missing
    with live_api(create_app(llm_settings)) as server:
        yield server


def client(api) -> openai.OpenAI:
    return openai.OpenAI(base_url=api.base_url, api_key=api.api_key, max_retries=0)


def test_non_streaming_annotations_are_typed_url_citations_with_text_fragments(api):
    resp = client(api).chat.completions.create(model=api.model, messages=Q)
    message = resp.choices[0].message
    sources = {s["url"]: s["n"] for s in resp.model_extra["sources"]}
    paris, berlin = sources["https://blog.example/paris"], sources["https://blog.example/berlin"]
    # The last sentence is in no source and no source says otherwise: not found, its marker kept.
    assert message.content == (f"The Eiffel Tower was completed in 1889 [{paris}]. The Berlin Wall fell in 1989 "
                               f"[{berlin}]. The Eiffel Tower is made of cheese and 1,000 metres tall [1].")
    assert all(isinstance(a, Annotation) for a in message.annotations)
    first, second, third = message.annotations
    assert "#:~:text=" not in third.url_citation.url  # no quote to open
    assert first.type == "url_citation"
    assert first.url_citation.url == "https://blog.example/paris#:~:text=The%20Eiffel%20Tower%20was%20completed%20in%201889."
    assert first.url_citation.title == "Paris facts"
    span = message.content[first.url_citation.start_index:first.url_citation.end_index]
    assert span == f"The Eiffel Tower was completed in 1889 [{paris}]."
    assert second.url_citation.url == "https://blog.example/berlin#:~:text=The%20Berlin%20Wall%20fell%20in%201989."
    att = resp.model_extra["attributions"]
    assert att["mode"] == "repair"
    assert [s["outcome"] for s in att["sentences"]] == ["repointed", "added", "unsupported"]
    assert att["counts"] == {"supported": 0, "repointed": 1, "added": 1, "unsupported": 1}
    assert [s["verdict"] for s in att["sentences"]] == ["supported", "supported", "not_found"]
    assert att["verdicts"] == {"supported": 2, "contradicted": 0, "not_found": 1}
    unsupported = att["sentences"][2]
    assert unsupported["markers"] == [1] and unsupported["original_markers"] == [1]
    assert message.content[unsupported["start_index"]:unsupported["end_index"]] == unsupported["text"]
    # Existing fields keep working.
    assert sorted(c["n"] for c in resp.model_extra["citations"]) == sorted([paris, berlin])


def test_final_stream_chunk_carries_annotations_and_attributions(api):
    chunks = list(client(api).chat.completions.create(model=api.model, messages=Q, stream=True))
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(final) == 1
    delta = final[0].choices[0].delta
    notes = [Annotation.model_validate(a) for a in delta.model_extra["annotations"]]
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    att = final[0].model_extra["attributions"]
    assert [s["outcome"] for s in att["sentences"]] == ["repointed", "added", "unsupported"]
    # The stream sent the text as written: the spans index that text, the URLs the supporting sources.
    rome = {s["url"]: s["n"] for s in final[0].model_extra["sources"]}["https://blog.example/rome"]
    first = notes[0].url_citation
    assert streamed[first.start_index:first.end_index] == f"The Eiffel Tower was completed in 1889 [{rome}]."
    assert first.url == "https://blog.example/paris#:~:text=The%20Eiffel%20Tower%20was%20completed%20in%201889."
    assert streamed[notes[1].url_citation.start_index:notes[1].url_citation.end_index] == \
        "The Berlin Wall fell in 1989."
