"""A figure in its place: the claim's figure written in the window, but only next to other words,
while another value of its kind stands next to the claim's words. "Grouped-query attention is
used so that the 13B model can run inference quickly" against a window listing "(7B, 13B, 70B)"
and then "grouped-query attention for fast inference of the 70B model": 13B is found, and yet
the window states 70B in the claim's place — a contradiction, as a figure the window leaves out
and replaces is (facts.py)."""

from __future__ import annotations

import re

from opencite.app.citations.facts import stem
from opencite.app.citations.figures import Figure, figure_conflict
from opencite.app.citations.support import stopwords

_WORD = re.compile(r"[^\W\d_]+")  # words of letters: figures and identifiers with digits are not context
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n")
SIDE = 3  # content words taken each side of a figure


def places(text: str, figures: list[Figure]) -> list[tuple[Figure, frozenset[str]]]:
    """Each figure as written in the text, with the content words around it (SIDE each side,
    within its sentence). Figures written otherwise (number words) are left out."""
    stop = stopwords()
    out, pos = [], 0
    for f in figures:
        at = text.find(f.text, pos)
        if at < 0:
            continue
        pos = at + len(f.text)
        start = max((m.end() for m in _SENTENCE_END.finditer(text, 0, at)), default=0)
        end = next((m.start() for m in _SENTENCE_END.finditer(text, pos)), len(text))
        before = [stem(w) for w in _WORD.findall(text[start:at]) if w.lower() not in stop]
        after = [stem(w) for w in _WORD.findall(text[pos:end]) if w.lower() not in stop]
        out.append((f, frozenset(before[-SIDE:] + after[:SIDE])))
    return out


def misplaced(claim: str, figures: tuple[Figure, ...], window: str, window_figures: list[Figure],
              found: list[str]) -> list[tuple[str, str]]:
    """(the claim's figure, the window's rival) for each figure of the claim the window writes
    (`found`) only where none of the claim's words around it are, while a rival of its kind (same
    unit or magnitude, another value the claim does not state) has two or more of them around it."""
    mine = dict(places(claim, list(figures)))
    theirs = places(window, window_figures)
    claimed = frozenset().union(*(f.values for f in figures))
    out = []
    for figure in figures:
        context = mine.get(figure)
        if figure.text not in found or not context:
            continue
        if any(f.values & figure.values and context & c for f, c in theirs):
            continue  # written next to some of the claim's words: in its place
        rivals = [(len(context & c), f) for f, c in theirs if not f.values & claimed
                  and figure_conflict(figure, [f]) is not None]
        shared, rival = max(rivals, key=lambda r: r[0], default=(0, None))
        if shared >= 2:
            out.append((figure.text, rival.text))
    return out
