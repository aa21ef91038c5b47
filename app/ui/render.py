"""Pure helpers of the web chat: safe Markdown, citation links, source cards data, feedback.

Everything that came from a scraped page (titles, URLs, snippets) is shown as text: titles are
Markdown-escaped, snippets go through `st.text`, and the answer is rendered with Streamlit's
Markdown, which never enables raw HTML (unsafe_allow_html stays False).
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlparse

from opencite.app.rag.chain import RagAnswer, Source

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&$=:])")
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_write_lock = threading.Lock()
NOTE_MAX_CHARS = 500


def escape_md(text: str) -> str:
    """Markdown-inert text: every special character backslash-escaped, newlines flattened."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def anchor(message_id: str, n: int) -> str:
    return f"src-{message_id}-{n}"


def link_markers(answer: str, message_id: str, n_sources: int) -> str:
    """`[2]` -> a link to source card 2 of this message (numbers outside the sources untouched;
    the chain already removed those)."""

    def repl(m: re.Match) -> str:
        numbers = [int(x) for x in re.findall(r"\d+", m.group(1))]
        if not numbers or any(n < 1 or n > n_sources for n in numbers):
            return m.group(0)
        return "".join(f"[\\[{n}\\]](#{anchor(message_id, n)})" for n in numbers)

    return _MARKER.sub(repl, answer)


def safe_url(url: str) -> str | None:
    """A URL fit for a link (http/https only), else None: show it as text."""
    try:
        scheme = urlparse(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


def answer_record(answer: RagAnswer) -> dict:
    """The chat history entry for an answer (plain data kept in session state)."""
    return {
        "role": "assistant",
        "content": answer.answer,
        "question": answer.question,
        "standalone_question": answer.standalone_question,
        "sources": [asdict(s) for s in answer.sources],
        "cited": [s.n for s in answer.cited],
        "dropped_markers": answer.dropped_markers,
        "error": answer.error,
        "error_kind": answer.error_kind,
        "attribution": answer.attribution.to_dict() if answer.attribution else None,
    }


def highlights_for(record: dict, n: int) -> list[tuple[int, int]]:
    """Spans of source n's chunk that support the sentences citing it."""
    spans = []
    for s in (record.get("attribution") or {}).get("sentences", []):
        if n in s["markers"]:
            spans += [(e["start"], e["end"]) for e in s["evidence"] if e["n"] == n and e["supports"]]
    return spans


def quote_link(record: dict, src: Source) -> str:
    """The source's URL opening the page at its first supporting quote (a text fragment)."""
    from opencite.app.citations.text_fragment import fragment_url

    for s in (record.get("attribution") or {}).get("sentences", []):
        for e in s["evidence"]:
            if e["n"] == src.n and e["supports"] and src.n in s["markers"]:
                return fragment_url(src.url, e["quote"], src.snippet)
    return src.url


def mark_unsupported(answer: str, record: dict) -> str:
    """The answer with each sentence no source supports visibly marked (never hidden): a
    contradicted one with the source's words that differ, one not found as unverified."""
    sentences = [s for s in (record.get("attribution") or {}).get("sentences", [])
                 if s["outcome"] == "unsupported" and answer[s["start"]:s["end"]] == s["text"]]
    for s in sorted(sentences, key=lambda s: -s["start"]):
        answer = answer[:s["start"]] + verdict_markdown(s) + answer[s["end"]:]
    return answer


def verdict_markdown(sentence: dict) -> str:
    """A flagged sentence as the chat shows it (`text` is the answer's own markdown)."""
    verdict = sentence.get("verdict")
    text = sentence["text"]
    if verdict == "contradicted":
        differs = [d for e in sentence.get("evidence", []) if e.get("contradicts") for d in e.get("differs") or []]
        said = "; ".join(f"“{escape_md(d['source'])}”" for d in differs[:2])
        return (f":red-background[{text}] :red[**✗ contradicted**"
                + (f" — the source says {said}" if said else "") + "]")
    if verdict == "not_found":
        return f":orange-background[{text}] :orange[**? unverified**]"
    return f":red-background[{text}] :red[**⚠ unsupported**]"


def sources_of(record: dict) -> list[Source]:
    return [Source(**s) for s in record.get("sources") or []]


def save_feedback(path: Path, record: dict, rating: str, *, endpoint: str = "", model: str = "",
                  note: str = "") -> dict:
    """Append one feedback line (question, answer, sources, rating, note) to a JSONL file. A later
    line for the same message supersedes it (`opencite feedback export` keeps the last)."""
    line = {
        "time": datetime.now(timezone.utc).isoformat(),
        "rating": rating,  # "up" | "down"
        "question": record.get("question"),
        "standalone_question": record.get("standalone_question"),
        "answer": record.get("content"),
        "sources": record.get("sources"),
        "cited": record.get("cited"),
        "error": record.get("error"),
        "endpoint": endpoint,
        "model": model,
        "message_id": record.get("id"),
        "kb": record.get("kb") or "default",
        "note": " ".join(note.split())[:NOTE_MAX_CHARS],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with _write_lock, path.open("a", encoding="utf-8") as f:  # one whole line per write
        f.write(json.dumps(line, ensure_ascii=False) + "\n")
    return line
