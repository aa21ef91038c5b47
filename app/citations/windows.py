"""A source as the checker reads it: its windows (runs of 1..n adjacent sentences, table rows
and code lines counting as sentences) and the haystack its names are looked for in. Cached by
the source's text: the chain builds them while the LLM writes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from opencite.app.answer import Source
from opencite.app.citations.figures import numbers_in
from opencite.app.citations.names import name_haystack
from opencite.app.citations.sentences import split_sentences
from opencite.app.citations.tables import TableRows, cells


@dataclass
class Window:
    n: int
    start: int
    end: int
    text: str
    parts: list[str]  # its sentences, plain text
    numbers: set[str]
    table: TableRows | None = None  # a window of table rows: them, their header, the table's row names
    prose: str | None = None  # its sentences that are not table rows (None: all of them)


def source_windows(sources: list[Source], size: int) -> list[Window]:
    return [Window(src.n, *w) for src in sources for w in _snippet_windows(src.snippet, size)]


@lru_cache(maxsize=4096)
def _snippet_windows(snippet: str, size: int) -> tuple[tuple, ...]:
    """A source's runs of 1..`size` adjacent sentences (a whole snippet without prose, e.g.
    code, is one window): a sentence of the answer often joins what two or three of the
    source's sentences say. Cached: the chain warms it while the LLM writes."""
    parts = split_sentences(snippet, tables=True)
    if not parts:
        text = snippet.strip()
        return ((0, len(snippet), text, [text], numbers_in(text), None, None),) if text else ()
    keys: dict[str, list[str]] = {}  # a table's header -> the first cells of its rows
    for p in parts:
        if p.context:
            keys.setdefault(p.context, []).append(cells(p.text)[0])
    out = []
    for i, s in enumerate(parts):
        for j in range(i, min(i + size, len(parts))):
            claims = [p.claim for p in parts[i:j + 1]]
            text = " ".join(claims)
            # A table row is scored with its header (what its cells mean); quoted without it.
            scored = [f"{_plain_row(p.context)}: {c}" if p.context else c for p, c in zip(parts[i:j + 1], claims)]
            # Its table rows (of the first table it reaches), checked as rows: what they name.
            header = next((p.context for p in parts[i:j + 1] if p.context), "")
            table = TableRows(header, tuple(p.text for p in parts[i:j + 1] if p.context == header),
                              tuple(keys[header])) if header else None
            prose = " ".join(p.claim for p in parts[i:j + 1] if not p.context) if header else None
            out.append((s.start, parts[j].end, text, scored, numbers_in(text), table, prose))
    return tuple(out)


@lru_cache(maxsize=4096)
def source_haystack(snippet: str, title: str, heading_path: str, size: int) -> str:
    """Where a source's names are looked for (its text, windows, title and headings). Cached, and
    the same string object each time, so the name matches cached by haystack hit without
    rehashing it: it was ~7 % of the time after the last token, rebuilt for every answer."""
    windows = " ".join(w[2] for w in _snippet_windows(snippet, size))
    return name_haystack(snippet, windows, title, heading_path)


def _plain_row(row: str) -> str:
    return " ".join(cell.strip() for cell in row.strip().strip("|").split("|") if cell.strip())
