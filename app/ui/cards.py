"""The web chat's answer and source cards: compact cards (one bold line, no page-wide heading)
whose chunk text is safe markdown with the supporting quotes highlighted, and answers whose
unsupported sentences are marked. Nothing from a page is rendered as HTML (see safe_markdown)."""

from __future__ import annotations

import html

import streamlit as st

from opencite.app.ui.safe_markdown import safe_markdown
from opencite.app.ui.render import (anchor, escape_md, highlights_for, link_markers, mark_unsupported,
                                    quote_link, safe_url, sources_of)


def answer_markdown(record: dict) -> str:
    text = mark_unsupported(record["content"], record)
    return link_markers(text, record["id"], len(record.get("sources") or []))


def attribution_caption(record: dict) -> None:
    attribution = record.get("attribution") or {}
    counts = attribution.get("counts")
    if counts and any(counts.values()):
        verdicts = attribution.get("verdicts") or {}
        flagged = [f"{verdicts[v]} {label}" for v, label in (("contradicted", "contradicted"),
                                                              ("not_found", "unverified")) if verdicts.get(v)]
        unchecked = attribution.get("unchecked") or 0
        st.caption("citations checked: " + " · ".join([f"{v} {k}" for k, v in counts.items() if v] + flagged
                                                      + ([f"{unchecked} not checked"] if unchecked else [])))


def source_cards(message_id: str, record: dict) -> None:
    sources = sources_of(record)
    if not sources:
        return
    cited = set(record.get("cited") or [])
    shown = [s for s in sources if s.n in cited] or sources
    st.caption("Cited sources" if cited else "Retrieved sources (none cited)")
    for src in shown:
        card(message_id, record, src)
    rest = [s for s in sources if s not in shown]
    if rest:
        with st.expander(f"Other retrieved sources ({len(rest)})"):
            for src in rest:
                card(message_id, record, src)


def card(message_id: str, record: dict, src) -> None:
    with st.container(border=True, key=f"card-{message_id}-{src.n}"):
        # The jump target of the [n] links (an id only: no heading, the card stays compact).
        st.html(f'<span id="{html.escape(anchor(message_id, src.n))}"></span>')
        url = safe_url(quote_link(record, src))
        link = (f"[{escape_md(src.url)}]({url.replace(')', '%29').replace(' ', '%20')})" if url
                else escape_md(src.url))
        meta = f"score {src.score:.3f}" + (f" · {escape_md(src.heading_path)}" if src.heading_path else "")
        st.markdown(f"**\\[{src.n}\\] {escape_md(src.title)}** · {link} · :gray[{meta}]")
        st.markdown(safe_markdown(src.snippet, highlights_for(record, src.n)))
