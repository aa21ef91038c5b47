"""The prompt's sources as passages: sentence windows around the best-matching sentences of the
retrieved chunks, filling a token budget in rank order (docs/retrieval.md "Prompt budget").

Each retrieved hit comes with its neighbour chunks (`retrieval.widened`): the hit's own sentences
are scored against the question, the neighbours only give the windows their context. Rounds in
rank order: round 1 gives every hit the window around its best sentence, round 2 the window around
its second best, and so on; then the rest of each text, nearest the hit first. Windows of one page
that overlap or touch are merged, and one page is one source whose excerpts are joined with " … ".

Scoring is lexical (the question's stemmed content words, weighted by how rare they are in the
candidates' sentences): nothing is embedded before the first token, and the chunks were already
chosen by the hybrid (dense + BM25) retrieval.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import lru_cache

from opencite.app.answer import Source
from opencite.app.citations.sentences import split_sentences
from opencite.app.citations.support import content_terms
from opencite.app.rag import prompts
from opencite.app.rag.tokens import TokenCounter
from opencite.store import constants as C

BEFORE, AFTER = 1, 1  # sentences taken before and after a chosen sentence
EXCERPT_GAP = "\n\n…\n\n"  # between excerpts of one page that are not adjacent
BLOCK_SEPARATOR = 2  # the blank line between source blocks (as in budget.py)
MAX_MISSES = 12  # windows in a row that did not fit before the fill stops
_LIST_PREFIX = re.compile(r"(?m)^[ \t]*(?:>[ \t]?)*[ \t]*(?:[-*+]|\d{1,9}[.)])?[ \t]*")


@dataclass
class Candidate:
    """One retrieved hit: the source it would be (snippet = its widened text), its page and
    position there, and the span of its own chunk in the text."""

    source: Source
    page: tuple
    position: int
    hit: tuple[int, int]
    units: list["_Unit"] = field(default_factory=list)


@dataclass
class _Unit:
    start: int
    end: int
    key: str  # the unit's words, normalised: the same sentence repeated (chunk overlap) counts once
    terms: frozenset[str] = frozenset()
    score: float | None = None  # None: not a sentence of the hit's own chunk
    header: str = ""  # a table row's header and delimiter lines, as the text writes them


def candidates(hits, sources: list[Source]) -> list[Candidate]:
    """`hits` are `retrieval.widened` triples (document, score, hit span); `sources` the same
    hits as numbered sources (`chain_run.numbered_sources`)."""
    out = []
    for (doc, _, span), src in zip(hits, sources):
        meta = doc.metadata or {}
        at = meta.get(C.CHUNK_INDEX)
        page = (src.url or src.chunk_id, meta.get(C.CONTENT_HASH) or "")
        out.append(Candidate(src, page, at if isinstance(at, int) and not isinstance(at, bool) else 0, span))
    return out


def select(question: str, cands: list[Candidate], counter: TokenCounter, budget: int) -> list[Source]:
    """The sources for the prompt: windows of the candidates filling `budget` tokens (each source
    block counted as `prompts.format_source` writes it, plus the separator), one source per page,
    numbered 1.. in the rank of the best hit of the page that got a window."""
    if not cands or budget <= 0:
        return []
    for cand in cands:
        cand.units = _units(cand.source.snippet, cand.hit)
    _score(question, cands)
    plans = [_plan(c) for c in cands]
    chosen: dict[int, set[int]] = {}  # candidate -> chosen unit indices
    seen: dict[tuple, set[str]] = {}  # page -> keys of the units it has
    cost: dict[tuple, int] = {}  # page -> tokens of its block
    first: dict[tuple, int] = {}  # page -> the candidate (rank) that opened it
    total, misses, cursors = 0, 0, [0] * len(cands)
    while misses < MAX_MISSES and any(cur < len(p) for cur, p in zip(cursors, plans)):
        for ci, cand in enumerate(cands):
            new: list[int] = []
            while cursors[ci] < len(plans[ci]) and not new:
                group = plans[ci][cursors[ci]]
                cursors[ci] += 1
                have, keys = chosen.get(ci, set()), seen.get(cand.page, set())
                new = [i for i in group if i not in have and cand.units[i].key not in keys]
            if not new:
                continue
            trial = {**chosen, ci: chosen.get(ci, set()) | set(new)}
            block = _block(cand.page, cands, trial, first.get(cand.page, ci))
            delta = counter.count(block) + BLOCK_SEPARATOR - cost.get(cand.page, 0)
            if total + delta > budget:
                misses += 1
                continue
            misses = 0
            chosen = trial
            seen.setdefault(cand.page, set()).update(cand.units[i].key for i in new)
            first.setdefault(cand.page, ci)
            cost[cand.page] = cost.get(cand.page, 0) + delta
            total += delta
        if budget - total < BLOCK_SEPARATOR + 8:
            break
    pages = sorted(first, key=first.get)
    out = []
    for n, page in enumerate(pages, start=1):
        lead = cands[first[page]].source
        out.append(replace(lead, n=n, snippet=_snippet(page, cands, chosen)))
    return out


def _block(page, cands, chosen, lead: int) -> str:
    src = cands[lead].source
    return prompts.format_source(100, src.title, src.url, _snippet(page, cands, chosen))


def _snippet(page, cands: list[Candidate], chosen: dict[int, set[int]]) -> str:
    """The page's chosen units as excerpts in page order: runs of adjacent units as the text
    between them reads, separate runs joined with an ellipsis."""
    parts = []
    for ci in sorted((ci for ci in chosen if cands[ci].page == page), key=lambda ci: cands[ci].position):
        cand = cands[ci]
        text = cand.source.snippet
        idx = sorted(chosen[ci])
        run_start = idx[0]
        for a, b in zip(idx, idx[1:] + [None]):
            if b is not None and b == a + 1:
                continue
            start = _line_start(text, cand.units[run_start].start)
            # Table rows without their header say nothing of what their cells are.
            head = cand.units[run_start].header
            parts.append((head + "\n" if head else "") + text[start:cand.units[a].end].strip())
            run_start = b
    return EXCERPT_GAP.join(p for p in parts if p)


def _line_start(text: str, start: int) -> int:
    """A sentence starting its line keeps the list or quote markup before it ("- ", "> ")."""
    line = text.rfind("\n", 0, start) + 1
    return line if not _LIST_PREFIX.sub("", text[line:start]).strip() else start


def _units(text: str, hit: tuple[int, int]) -> list[_Unit]:
    """The text cut into units that cover all of it: its prose sentences and table rows, and the
    blocks between them (headings, code) as units of their own. Sentences inside the hit's own
    chunk are the ones scored."""
    return [_Unit(*span) for span in _unit_spans(text, tuple(hit))]


@lru_cache(maxsize=512)
def _unit_spans(text: str, hit: tuple[int, int]) -> tuple[tuple, ...]:
    spans = []
    pos = 0
    for s in split_sentences(text, tables=True):
        if s.start < pos:
            continue
        gap = text[pos:s.start]
        if _LIST_PREFIX.sub("", gap).strip():
            spans.append((pos + len(gap) - len(gap.lstrip()), s.start - (len(gap) - len(gap.rstrip())), False, ""))
        spans.append((s.start, s.end, True, _table_head(text, s.start, s.context)))
        pos = s.end
    rest = text[pos:]
    if _LIST_PREFIX.sub("", rest).strip():
        spans.append((pos + len(rest) - len(rest.lstrip()), len(text) - (len(rest) - len(rest.rstrip())), False, ""))
    units = []
    for start, end, prose, head in spans:
        words = " ".join(text[start:end].split()).lower()
        inside = prose and start < hit[1] and end > hit[0]
        units.append(_Unit(start, end, words, frozenset(content_terms(text[start:end])) if inside else frozenset(),
                           0.0 if inside else None, head))
    if units and all(u.score is None for u in units):  # a hit without prose: its blocks count
        for u in units:
            if u.start < hit[1] and u.end > hit[0]:
                u.score = 0.0
    return tuple((u.start, u.end, u.key, u.terms, u.score, u.header) for u in units)


def _table_head(text: str, row_start: int, header: str) -> str:
    """A table row's header and delimiter lines: the last ones written before the row."""
    if not header:
        return ""
    at = text.rfind(header, 0, row_start)
    if at < 0:
        return ""
    lines = text[at:row_start].split("\n")
    return "\n".join(line.strip() for line in lines[:2]) if len(lines) > 2 else ""


def _score(question: str, cands: list[Candidate]) -> None:
    """Each scored unit: the share of the question's content words it holds, each word weighted
    by its rarity among the scored units (a word every sentence has says little)."""
    asked = content_terms(question)
    scored = [u for c in cands for u in c.units if u.score is not None]
    if not asked or not scored:
        return
    df = Counter(t for u in scored for t in u.terms & asked)
    weight = {t: math.log(1 + len(scored) / (1 + df[t])) for t in asked}
    # Summed in a fixed order: a set's order changes with the process's hash seed, and float sums
    # with it, which broke ties between equal windows differently from run to run.
    whole = sum(weight[t] for t in sorted(asked))
    for u in scored:
        u.score = sum(weight[t] for t in sorted(u.terms & asked)) / whole


def _plan(cand: Candidate) -> list[list[int]]:
    """The order a candidate's units are offered in: the window around each scored sentence,
    best first (ties: earlier first), then every other unit, nearest the hit first."""
    units = cand.units
    scored = sorted((i for i, u in enumerate(units) if u.score is not None), key=lambda i: (-units[i].score, i))
    groups = [list(range(max(0, i - BEFORE), min(len(units), i + AFTER + 1))) for i in scored]
    if scored:
        lo, hi = min(scored), max(scored)
        rest = sorted(range(len(units)), key=lambda i: (max(lo - i, i - hi, 0), i))
        groups += [[i] for i in rest]
    return groups


def focus(text: str, query: str, before: int = BEFORE, after: int = AFTER) -> str:
    """The window of `text` around its sentence that best matches `query` (the lookup's extra
    passages: short, so attribution embeds little more); the whole text when none shares a word."""
    cand = Candidate(Source(0, "", "", text, 0.0), ("",), 0, (0, len(text)))
    cand.units = _units(text, (0, len(text)))
    _score(query, [cand])
    scored = [(u.score, -i) for i, u in enumerate(cand.units) if u.score]
    if not scored:
        return text.strip()
    best = -max(scored)[1]
    chosen = set(range(max(0, best - before), min(len(cand.units), best + after + 1)))
    return _snippet(("",), [cand], {0: chosen})
