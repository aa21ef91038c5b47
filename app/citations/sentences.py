"""Sentences of a markdown text, with their character spans, for citation checking.

Markdown-aware: markdown-it-py finds the blocks, and only prose is split — paragraphs, list
items and quotes; headings, code blocks, HTML blocks and tables are not sentences to verify
(`tables=True` keeps table rows, one span each, for the sources' side, where a row can be the
evidence, with its table's header row as `context`; and the statements of code blocks, one span
each — a line, or a call whose arguments stand one per line — where an argument, a default or a
comment can be). Inside a block, NLTK's Punkt splitter (no trained data needed) cuts sentences, with
common abbreviations declared so "e.g." and "approx." do not end one; decimals and versions
("46.7B", "v1.4.0") never do. Inline code is masked while splitting. A citation marker written
after the full stop ("... capital. [1]") belongs to the sentence before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from markdown_it import MarkdownIt
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

# A citation marker as the chain writes it: [1] or [1, 3] (not a markdown link's [text](url)).
MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\](?!\()")
ABBREVIATIONS = {
    "e.g", "i.e", "etc", "vs", "cf", "al", "approx", "ca", "fig", "figs", "eq", "no", "nos", "vol",
    "dr", "mr", "mrs", "ms", "prof", "sr", "jr", "st", "inc", "ltd", "co", "corp", "dept", "est",
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "u.s", "u.k",
}
_LINE_PREFIX = re.compile(r"[ \t]*(?:>[ \t]?)*[ \t]*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+)?")
_INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.DOTALL)
_LEADING_MARKERS = re.compile(r"\s*(?:\[\d+(?:\s*,\s*\d+)*\]\s*)+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,;:!?])")
_md = MarkdownIt("commonmark").enable("table")
_CODE_STRING = re.compile(r"\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\\\n]|\\.)*'")  # a one-line string literal
_CODE_COMMENT = re.compile(r"(?:^|\s)(?:#|//).*")
MAX_STATEMENT_LINES = 12


@dataclass(frozen=True)
class Sentence:
    start: int  # character offsets in the text; text[start:end] is the sentence, markers included
    end: int
    text: str
    markers: tuple[int, ...]  # numbers cited in the sentence, in order, repeats removed
    context: str = ""  # a table row's header row (what its cells mean), for scoring

    @property
    def claim(self) -> str:
        """The sentence as plain text without its citation markers (what is verified)."""
        return claim_text(self.text)


@lru_cache(maxsize=20_000)
def claim_text(sentence: str) -> str:
    """A sentence as plain text without its citation markers: what is verified and looked up.
    Kept by text: a streamed answer's sentences are checked again as each new one ends."""
    text = plain_text(MARKER.sub(" ", sentence).replace("|", " "))
    return _SPACE_BEFORE_PUNCT.sub(r"\1", " ".join(text.split()))


@lru_cache(maxsize=1)
def _punkt() -> PunktSentenceTokenizer:
    params = PunktParameters()
    params.abbrev_types = set(ABBREVIATIONS)
    return PunktSentenceTokenizer(params)


def markers_in(text: str) -> tuple[int, ...]:
    seen: dict[int, None] = {}
    for group in MARKER.findall(text):
        for n in group.split(","):
            seen.setdefault(int(n), None)
    return tuple(seen)


def split_sentences(text: str, *, tables: bool = False) -> list[Sentence]:
    """The prose sentences of a markdown text, in order."""
    if not text.strip():
        return []
    line_starts = [0]
    # Line breaks as markdown-it counts them (it reads a lone \r as one too): its token maps are
    # line numbers in that count, and an LLM's text may hold any of them.
    for m in re.finditer("\r\n|\r|\n", text):
        line_starts.append(m.end())
    line_starts.append(len(text) + 1)

    def span(lines: list[int]) -> tuple[int, int]:
        return line_starts[lines[0]], min(line_starts[lines[1]], len(text))

    out: list[Sentence] = []
    header = ""
    tokens = _md.parse(text)
    for i, tok in enumerate(tokens):
        if tok.type == "paragraph_open" and tok.map:
            start, end = span(tok.map)
            out.extend(_split_block(text, start, end))
        elif tables and tok.type == "thead_open" and tok.map:
            start, end = span(tok.map)
            header = text[start:end].split("\n", 1)[0].strip()
        elif tables and tok.type == "tr_open" and tok.map and tokens[i + 1].type != "th_open":
            start, end = span(tok.map)
            row = text[start:end].strip()
            if row:
                s = start + text[start:end].index(row)
                out.append(Sentence(s, s + len(row), row, markers_in(row), header))
        elif tables and tok.type in ("fence", "code_block") and tok.map:
            out.extend(_code_statements(text, *span(tok.map)))
    return out


def _code_statements(text: str, start: int, end: int) -> list[Sentence]:
    """A code block's statements, one span each: a line, or the lines of a call or literal whose
    brackets stay open across them (a call written one argument per line is one statement, as
    its reader takes it: "samples with top_k=10, max_length=200" names two of its lines).
    A statement longer than MAX_STATEMENT_LINES goes line by line."""
    out: list[Sentence] = []
    lines: list[tuple[int, int]] = []  # the statement's lines with a word in them
    depth, pos = 0, start

    def flush() -> None:
        spans = [(lines[0][0], lines[-1][1])] if len(lines) <= MAX_STATEMENT_LINES else lines
        out.extend(Sentence(a, b, text[a:b], ()) for a, b in spans)
        lines.clear()

    for line in text[start:end].splitlines(keepends=True):
        code = line.strip()
        if code and not code.startswith(("```", "~~~")):
            if re.search(r"\w", code):
                s = pos + line.index(code)
                lines.append((s, s + len(code)))
            bare = _CODE_COMMENT.sub("", _CODE_STRING.sub("", code))
            depth = max(0, depth + sum(bare.count(c) for c in "([{") - sum(bare.count(c) for c in ")]}"))
            if depth == 0 and lines:
                flush()
        pos += len(line)
    if lines:
        flush()
    return out


def _split_block(text: str, start: int, end: int) -> list[Sentence]:
    block = text[start:end]
    # Same length as the block: list/quote prefixes blanked, inline code masked, so Punkt's
    # spans are offsets into the original text.
    masked = []
    for line in block.splitlines(keepends=True):
        prefix = _LINE_PREFIX.match(line).end()
        masked.append(" " * prefix + line[prefix:])
    masked_block = _INLINE_CODE.sub(lambda m: m.group(1) + "x" * len(m.group(2)) + m.group(1), "".join(masked))
    spans = [[a, b] for a, b in _punkt().span_tokenize(masked_block)]
    # Markers after the full stop belong to the sentence before.
    for j in range(1, len(spans)):
        lead = _LEADING_MARKERS.match(masked_block, spans[j][0])
        if lead and lead.end() > spans[j][0]:
            marker_end = masked_block[:lead.end()].rstrip().__len__()
            spans[j - 1][1] = marker_end
            spans[j][0] = lead.end()
    sentences = []
    for a, b in spans:
        if b <= a:
            continue
        seen = masked_block[a:b]
        if not seen.strip():
            continue
        a += len(seen) - len(seen.lstrip())
        b -= len(seen) - len(seen.rstrip())
        sentence = text[start + a:start + b]
        sentences.append(Sentence(start + a, start + b, sentence, markers_in(sentence)))
    return sentences


def plain_text(markdown: str) -> str:
    """Markdown inline text as a reader sees it: emphasis, link targets and HTML tags dropped."""
    parts: list[str] = []
    for tok in _md.parse(markdown):
        if tok.type in ("fence", "code_block"):
            parts.append(tok.content)
        elif tok.type == "inline":
            for child in tok.children or []:
                if child.type in ("text", "code_inline"):
                    parts.append(child.content)
                elif child.type in ("softbreak", "hardbreak"):
                    parts.append(" ")
                elif child.type == "image":
                    parts.append(child.content)
            parts.append("\n")
    return "".join(parts).strip()
