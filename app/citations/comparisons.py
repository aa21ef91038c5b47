"""Orders a sentence states between two of its own figures: "reaches 50.2, above the 43.5 of
Idefics2", "74.0 on DocVQA, up from 67.3". When its supporting sources state both figures (one in
the supporting window, the other there or elsewhere in the source: a table's row holds one
model's score, the row it is compared with stands apart), the order is a fact of the source too:
"50.2 … below the 43.5" is contradicted by the source's 50.2 and 43.5, whatever else it says.

Only a comparative word standing between the two figures counts, and only figures compared as
values: "10 points higher than", "2x faster than" state a difference or a ratio (the comparative
right after the figure), and figures of different units or magnitudes, or versions, are not
compared. A negation between them ("not above") leaves the order unread.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

from opencite.app.citations.figures import Figure, figure_found, figures_in
from opencite.app.citations.names import name_found

_COMPARATIVE = re.compile(
    r"\b(?:(?P<up>above|higher|more|greater|larger|bigger|ahead\s+of|up\s+from|exceed(?:s|ed|ing)?"
    r"|beat(?:s|ing)?|outperform(?:s|ed|ing)?)"
    r"|(?P<down>below|lower|less|fewer|smaller|behind|down\s+from|trail(?:s|ed|ing)?))\b", re.IGNORECASE)
_WORD = re.compile(r"[\w'’.-]+")
_NEGATION = re.compile(r"\b(?:not|no|never|n't|without)\b|n['’]t\b", re.IGNORECASE)
MAX_WORDS_TO_SECOND = 5  # "above the 43.5", "just above StarCoder's 33.6", "than Llama 2 7B's 45.3"


@lru_cache(maxsize=20_000)
def stated_orders(claim: str) -> tuple[tuple[Figure, Figure, bool, str], ...]:
    """(first figure, second figure, whether the first is stated the greater, the words that say
    it) for each comparative word between two comparable figures of the claim."""
    out = []
    for m in _COMPARATIVE.finditer(claim):
        left, right = claim[:m.start()], claim[m.end():]
        before, after = figures_in(left), figures_in(right)
        if not before or not after:
            continue
        a, b = before[-1], after[0]
        at, bt = left.rfind(a.text), right.find(b.text)
        if at < 0 or bt < 0:
            continue  # written as words: not located, not read
        gap_a, gap_b = left[at + len(a.text):], right[:bt]
        if "," not in gap_a and len(_WORD.findall(gap_a)) < 2:
            continue  # "10 points higher", "2x faster": a difference or a ratio, not the compared value
        if len(_WORD.findall(gap_b)) > MAX_WORDS_TO_SECOND or _NEGATION.search(gap_a + " " + gap_b):
            continue
        if a.is_version or b.is_version or a.unit != b.unit or a.magnitude != b.magnitude:
            continue
        out.append((a, b, m.group("up") is not None, claim[at:m.end() + bt + len(b.text)]))
    return tuple(out)


def order_conflict(claim: str, window: list[Figure], haystack: str) -> tuple[str, str] | None:
    """(the claim's words, the source's two figures) when the window states one figure of a
    stated order and the source (`names.name_haystack`) the other, and their values say the other
    order; else None. (A table's row holds one model's score, the row it is compared with
    stands apart.)"""
    for a, b, greater, words in stated_orders(claim):
        in_a, in_b = figure_found(a, window), figure_found(b, window)
        if not (in_a or in_b) or not (in_a or name_found(a.text, haystack)) or not (in_b or name_found(b.text, haystack)):
            continue
        low_a, high_a = _bounds(a)
        low_b, high_b = _bounds(b)
        if (greater and high_a < low_b) or (not greater and low_a > high_b):
            return words, f"{a.text} … {b.text}"
    return None


def _bounds(figure: Figure) -> tuple[Decimal, Decimal]:
    values = [Decimal(v) for v in figure.values if not v.startswith("v:")]
    return min(values), max(values)
