"""Fast checks of the web chat with Streamlit's AppTest (in-process): sidebar, asking,
history, new chat, feedback stored with question, answer and sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import opencite.app.ui

UI = str(Path(opencite.app.ui.__file__).with_name("chat.py"))


@pytest.fixture
def app(llm_settings, settings_env, scripted_llm, monkeypatch):
    monkeypatch.setenv("OPENCITE_LLM__BASE_URL", scripted_llm.base_url)
    monkeypatch.setenv("OPENCITE_LLM__MODEL", scripted_llm.model)
    monkeypatch.setenv("OPENCITE_LLM__API_KEY", scripted_llm.api_key)
    monkeypatch.setenv("OPENCITE_LLM__CONTEXT_WINDOW", "4096")
    st.cache_resource.clear()
    st.cache_data.clear()
    at = AppTest.from_file(UI, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    yield at
    st.cache_resource.clear()


def texts(at) -> str:
    return "\n".join(t.value for t in at.text) + "\n".join(m.value for m in at.markdown)


def test_sidebar_shows_endpoint_model_index_and_controls(app, scripted_llm):
    side = "\n".join(t.value for t in app.sidebar.text)
    assert scripted_llm.base_url in side and "model: scripted-double" in side
    assert "chunks: 5" in side
    assert any("online" in s.value for s in app.sidebar.success)
    assert [s.label for s in app.sidebar.slider] == ["sources (k)", "temperature"]
    assert app.sidebar.button[0].label == "New chat"


def test_ask_keeps_history_feedback_is_stored_and_new_chat_clears(app, scripted_llm, llm_settings):
    scripted_llm.reply("Paris [1], not [8].")
    app.sidebar.slider[0].set_value(2)
    app.sidebar.slider[1].set_value(0.5)
    app.chat_input[0].set_value("What is the capital of France?").run()
    assert not app.exception, app.exception
    assert scripted_llm.requests[-1]["temperature"] == 0.5
    assert scripted_llm.requests[-1]["messages"][-1]["content"].count("<source id=") == 2
    msgs = app.session_state["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant"]
    assert msgs[1]["content"] == "Paris [1], not ." and msgs[1]["dropped_markers"] == 1
    md = "\n".join(m.value for m in app.main.markdown)
    assert f"(#src-{msgs[1]['id']}-1)" in md  # the marker links to its card
    # The card shows the chunk as safe markdown (escaped page text).
    assert "Paris is the capital of France\\." in md

    # 👍 on the answer: one JSONL line with question, answer and sources.
    fb = app.get("feedback")[0]
    fb.set_value(1).run()
    lines = (llm_settings.runtime_dir / "feedback.jsonl").read_text().splitlines()
    saved = json.loads(lines[-1])
    assert saved["rating"] == "up" and saved["question"] == "What is the capital of France?"
    assert saved["answer"] == "Paris [1], not ." and saved["sources"][0]["url"] == "https://blog.example/paris"

    # A follow-up sends the history (condense call first), then New chat clears it.
    scripted_llm.reply("Capital of France, again?", "Still Paris [1].")
    app.chat_input[0].set_value("And again?").run()
    assert len(app.session_state["messages"]) == 4
    assert "Paris [1], not ." in scripted_llm.requests[-2]["messages"][-1]["content"]
    app.sidebar.button[0].click().run()
    assert app.session_state["messages"] == []


@pytest.mark.slow  # more Streamlit script runs; the fast tier keeps sidebar, ask/history/feedback and auth
def test_llm_down_shows_error_and_sources(app, scripted_llm):
    scripted_llm.fail(503)
    app.chat_input[0].set_value("What is the capital of France?").run()
    assert any("503" in e.value for e in app.main.error)
    # The sources still show, as safe markdown (escaped page text).
    assert "Paris is the capital of France\\." in "\n".join(m.value for m in app.main.markdown)


@pytest.mark.slow  # more Streamlit script runs; the fast tier keeps sidebar, ask/history/feedback and auth
def test_kb_picker_and_retrieval_mode_choose_what_answers(app, scripted_llm, llm_settings):
    from opencite.store import kb
    from tests.app.conftest import add_pages

    kb.create(llm_settings, "space")
    add_pages(kb.kb_settings(llm_settings, "space"),
              [("https://space.example/moon", "Moon facts", "The Moon is 384,400 km from the Earth.")])
    app.run()
    picker = app.sidebar.selectbox[0]
    assert picker.label == "knowledge base" and picker.options == ["default", "space"]
    assert picker.value == "default"
    assert app.sidebar.selectbox[1].label == "retrieval mode"
    app.chat_input[0].set_value("What is the capital of France?").run()
    assert len(app.session_state["messages"]) == 2

    app.sidebar.selectbox[0].set_value("space").run()
    assert app.session_state["messages"] == []  # another KB: a new conversation
    assert "chunks: 1" in "\n".join(t.value for t in app.sidebar.text)
    app.sidebar.selectbox[1].set_value("bm25").run()
    scripted_llm.reply("384,400 km [1].")
    app.chat_input[0].set_value("How far is the Moon?").run()
    assert not app.exception, app.exception
    answer = app.session_state["messages"][-1]
    assert answer["kb"] == "space"
    assert [s["url"] for s in answer["sources"]] == ["https://space.example/moon"]


@pytest.mark.slow  # more Streamlit script runs; the fast tier keeps sidebar, ask/history/feedback and auth
def test_a_thumbs_down_takes_a_note_that_is_stored(app, scripted_llm, llm_settings):
    scripted_llm.reply("Rome [1].")
    app.chat_input[0].set_value("What is the capital of France?").run()
    assert not app.text_input  # no note box before a 👎
    app.get("feedback")[0].set_value(0).run()
    note = app.text_input[0]
    assert note.label == "What was wrong? (optional)"
    note.input("Wrong city, cites Rome")  # in a form: sent with the submit
    next(b for b in app.button if b.label == "Send note").click().run()
    assert not app.exception, app.exception
    lines = [json.loads(x) for x in llm_settings.feedback_path.read_text().splitlines()]
    assert [(x["rating"], x["note"]) for x in lines] == [("down", ""), ("down", "Wrong city, cites Rome")]
    assert lines[-1]["answer"] == "Rome [1]." and lines[-1]["kb"] == "default"


@pytest.mark.slow  # more Streamlit script runs; the fast tier keeps sidebar, ask/history/feedback and auth
def test_a_reload_finds_the_conversation_and_the_history_lists_it(app, scripted_llm):
    scripted_llm.reply("Paris [1].")
    app.chat_input[0].set_value("What is the capital of France?").run()
    browser, chat = app.query_params["b"], app.query_params["c"]
    assert browser and chat

    # A reload: a new session with the same URL.
    again = AppTest.from_file(UI, default_timeout=60)
    again.query_params["b"], again.query_params["c"] = browser, chat
    again.run()
    assert [m["content"] for m in again.session_state["messages"]] == ["What is the capital of France?", "Paris [1]."]
    # New chat: an empty conversation, the old one in the history list; clicking it brings it back.
    again.sidebar.button[0].click().run()
    assert again.session_state["messages"] == [] and again.query_params["c"] != chat
    old = next(b for b in again.sidebar.button if b.label == "What is the capital of France?")
    old.click().run()
    assert again.query_params["c"] == chat and len(again.session_state["messages"]) == 2

    # Another browser (another id) sees none of it.
    other = AppTest.from_file(UI, default_timeout=60)
    other.query_params["b"], other.query_params["c"] = "f" * 32, chat
    other.run()
    assert other.session_state["messages"] == []
    assert [b.label for b in other.sidebar.button] == ["New chat"]


def test_password_and_trusted_header_auth(app, monkeypatch):
    monkeypatch.setenv("OPENCITE_UI__PASSWORD", "s3cret-pass")
    from opencite.settings import get_settings

    get_settings.cache_clear()
    at = AppTest.from_file(UI, default_timeout=60)
    at.run()
    assert not at.chat_input and at.text_input[0].label == "Password"
    at.text_input[0].input("wrong")
    at.button[0].click().run()
    assert any("Wrong password" in e.value for e in at.error) and not at.chat_input
    at.text_input[0].input("s3cret-pass")
    at.button[0].click().run()
    assert at.chat_input, "signed in: the chat shows"

    monkeypatch.setenv("OPENCITE_UI__TRUSTED_USER_HEADER", "X-Forwarded-User")
    get_settings.cache_clear()
    at = AppTest.from_file(UI, default_timeout=60)
    at.run()
    assert not at.chat_input and "X-Forwarded-User" in at.error[0].value
