"""opencite web chat (Streamlit script; start it with `opencite ui`).

Streams the chain's answer, links [n] markers to compact source cards with the supporting quotes
highlighted (ui_cards), marks unsupported sentences, keeps conversations across reloads (ui_history),
stores 👍/👎 feedback in <data_dir>/runtime/feedback.jsonl and signs users in when configured
(ui_auth). Page text is never HTML (safe_markdown).
"""

from __future__ import annotations

import argparse
import sys
import uuid

import streamlit as st
import streamlit.components.v1 as components

from opencite.app.rag.chain import DoneEvent, ErrorEvent, RagChain, SourcesEvent, TokenEvent
from opencite.app.rag.llm import model_status
from opencite.app.ui.auth import require_user
from opencite.app.ui.cards import answer_markdown, attribution_caption, source_cards
from opencite.app.ui.history import ChatStore, bootstrap_script, new_id, owner_of, valid_id
from opencite.app.ui.render import NOTE_MAX_CHARS, answer_record, escape_md, save_feedback
from opencite.store import kb as kbs
from opencite.settings import get_settings

st.set_page_config(page_title="opencite", page_icon="📚", layout="wide")
MODES = ["dense", "bm25", "hybrid"]


def start_kb() -> str:
    """The KB the picker starts on: `opencite ui --kb NAME` passes it after `--`."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--kb", default=kbs.DEFAULT_KB)
    return parser.parse_known_args(sys.argv[1:])[0].kb


@st.cache_resource(show_spinner="Opening the index…")
def get_chain(kb: str) -> RagChain:
    chain = RagChain(kbs.kb_settings(get_settings(), kb))
    _ = chain.index  # open now: a wrong embedding model shows up before the first question
    return chain


def current_kb() -> str:
    return st.session_state.get("kb") or start_kb()


@st.cache_data(ttl=10, show_spinner=False)
def endpoint_status(base_url: str, api_key: str, model: str) -> tuple[bool, str]:
    from opencite.serving.endpoint import LLMEndpoint

    return model_status(LLMEndpoint(base_url, api_key, model))


def on_feedback(message_id: str, with_note: bool = False) -> None:
    value = st.session_state.get(f"fb-{message_id}")
    if value is None:
        return
    record = next((m for m in st.session_state.messages if m.get("id") == message_id), None)
    if record is None:
        return
    chain = get_chain(record.get("kb") or current_kb())
    note = st.session_state.get(f"note-{message_id}", "") if with_note else ""
    save_feedback(get_settings().feedback_path, record, "up" if value == 1 else "down",
                  endpoint=chain.endpoint.base_url, model=chain.endpoint.model, note=note)
    st.toast("Thanks, note saved." if note else "Thanks, feedback saved.")


def note_form(message_id: str) -> None:
    """After a 👎: one line on what was wrong; it travels into `opencite feedback export`."""
    with st.form(f"noteform-{message_id}", border=False, enter_to_submit=True):
        st.text_input("What was wrong? (optional)", key=f"note-{message_id}", max_chars=NOTE_MAX_CHARS,
                      placeholder="e.g. wrong page cited, outdated, missed the question")
        st.form_submit_button("Send note", on_click=on_feedback, args=(message_id, True))


def kb_picker() -> str:
    """The knowledge base select box; switching KB starts a new chat (answers of one KB do not
    continue another's conversation)."""
    names = [k.name for k in kbs.list_kbs(get_settings())]
    first = start_kb()
    st.session_state.setdefault("kb", first if first in names else kbs.DEFAULT_KB)
    with st.sidebar:
        return st.selectbox("knowledge base", names, key="kb", on_change=new_chat)


def chat_store() -> ChatStore:
    return ChatStore(get_settings().runtime_dir / "chats", st.session_state.owner)


def open_conversation(user: str | None) -> None:
    """This browser's (or user's) conversation named in the URL, or a new one. The browser id lives
    in localStorage and the URL; the chat id in the URL, so a reload finds the same conversation."""
    browser = st.query_params.get("b")
    if not valid_id(browser):
        browser = st.query_params["b"] = new_id()
    components.html(bootstrap_script(browser), height=0)
    st.session_state.owner = owner_of(browser, user)
    chat_id = st.query_params.get("c")
    if st.session_state.get("chat_id") == chat_id and "messages" in st.session_state:
        return
    chat = chat_store().load(chat_id) if valid_id(chat_id) else None
    if chat is None:
        new_chat()
        return
    st.session_state.chat_id = chat_id
    st.session_state.messages = chat["messages"]
    if chat.get("kb") and kbs.exists(get_settings(), chat["kb"]):
        st.session_state.kb = chat["kb"]


def new_chat() -> None:
    st.session_state.chat_id = st.query_params["c"] = new_id()
    st.session_state.messages = []


def open_chat(chat_id: str) -> None:
    st.query_params["c"] = chat_id
    st.session_state.pop("chat_id", None)  # open_conversation loads it on this rerun


def history_list() -> None:
    chats = [c for c in chat_store().list() if c["title"]]
    if not chats:
        return
    with st.sidebar:
        st.subheader("History")
        for chat in chats:
            current = chat["id"] == st.session_state.chat_id
            st.button(chat["title"], key=f"chat-{chat['id']}", width="stretch", on_click=open_chat,
                      args=(chat["id"],), type="primary" if current else "secondary",
                      help=f"{chat['kb']} · {chat['updated']}")


def sidebar(chain: RagChain | None, index_error: str | None) -> tuple[int, float, str]:
    s = get_settings()
    with st.sidebar:
        st.button("New chat", icon=":material/add_comment:", width="stretch", on_click=new_chat)
        st.subheader("LLM")
        if chain is not None:
            ep = chain.endpoint
            ok, detail = endpoint_status(ep.base_url, ep.api_key, ep.model)
            st.text(f"endpoint: {ep.base_url}\nmodel: {ep.model}\ncontext window: {ep.context_window}")
            (st.success if ok else st.error)(("online: " if ok else "offline: ") + escape_md(detail))
        st.subheader("Index")
        if index_error:
            st.error(escape_md(index_error))
        elif chain is not None:
            count = chain.index.count()
            st.text(f"chunks: {count}\nembedding: {chain.index.model}\ncollection: {chain.settings.chroma.collection}")
            if count == 0:
                st.warning(f"The index is empty. Run `opencite ingest --kb {current_kb()} URL ...`.")
        st.subheader("Answer settings")
        mode = st.selectbox("retrieval mode", MODES, index=MODES.index(s.retrieval.mode), key="mode")
        k = st.slider("sources (k)", 1, 20, s.retrieval.k, key="k")
        temperature = st.slider("temperature", 0.0, 1.5, float(s.llm.temperature), 0.05,
                                key="temperature")
    return k, temperature, mode


def show_message(record: dict) -> None:
    with st.chat_message(record["role"]):
        if record["role"] == "user":
            st.text(record["content"])
            return
        message_id = record["id"]
        if record.get("content"):
            st.markdown(answer_markdown(record))
            attribution_caption(record)
        if record.get("error"):
            st.error(escape_md(record["error"]))
        if record.get("dropped_markers"):
            st.caption(f"{record['dropped_markers']} citation marker(s) pointing to no source were removed.")
        source_cards(message_id, record)
        st.feedback("thumbs", key=f"fb-{message_id}", on_change=on_feedback, args=(message_id,))
        if st.session_state.get(f"fb-{message_id}") == 0:
            note_form(message_id)


def ask(chain: RagChain, question: str, k: int, temperature: float, mode: str) -> None:
    history = [{"role": m["role"], "content": m["content"]} for m in st.session_state.messages]
    st.session_state.messages.append({"role": "user", "content": question, "id": uuid.uuid4().hex})
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        done: dict = {}

        def tokens():
            for event in chain.stream(history + [{"role": "user", "content": question}],
                                      k=k, temperature=temperature, retrieval_mode=mode):
                if isinstance(event, TokenEvent):
                    yield event.text
                elif isinstance(event, SourcesEvent):
                    done["sources"] = event.sources
                elif isinstance(event, ErrorEvent):
                    done["error"] = event
                elif isinstance(event, DoneEvent):
                    done["answer"] = event.answer

        st.write_stream(tokens)
    record = answer_record(done["answer"])
    record["id"] = uuid.uuid4().hex[:12]
    record["kb"] = current_kb()
    st.session_state.messages.append(record)
    chat_store().save(st.session_state.chat_id, st.session_state.messages, current_kb())
    st.rerun()  # redraw with linked markers, source cards and feedback


def main() -> None:
    user = require_user(get_settings().ui)
    open_conversation(user)
    chain, index_error = None, None
    with st.sidebar:
        st.title("opencite")
        if user:
            st.caption(f"signed in as {escape_md(user)}")
    kb = kb_picker()
    try:
        chain = get_chain(kb)
    except Exception as exc:  # e.g. embedding model mismatch, a KB deleted meanwhile
        index_error = f"{type(exc).__name__}: {exc}"
    k, temperature, mode = sidebar(chain, index_error)
    st.header("Ask your pages")
    if not st.session_state.messages:
        st.caption("Answers cite the indexed pages with [n] markers; click one to jump to its source.")
    for record in st.session_state.messages:
        show_message(record)
    history_list()
    question = st.chat_input("Ask a question about the indexed pages")
    if question and chain is not None:
        ask(chain, question, k, temperature, mode)
    elif question:
        st.error("The index could not be opened; see the sidebar.")


main()
