"""Words of opposite meaning (WordNet 3.0's antonyms of adjectives, adverbs and verbs, in
`antonyms.tsv`; see tools/wordnet_antonyms.py), read as text inflects them: "stronger" is a form
of "strong", "trails" of "trail", "better" of "good" and "well" (WordNet's exception lists)."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.resources import files

# Regular inflections: (ending, what replaces it) — "larger" -> "large", "copies" -> "copy".
_ENDINGS = (("est", ""), ("est", "e"), ("iest", "y"), ("er", ""), ("er", "e"), ("ier", "y"), ("s", ""),
            ("es", ""), ("ies", "y"), ("ed", ""), ("ed", "e"), ("ied", "y"), ("ing", ""), ("ing", "e"))
_DOUBLED = re.compile(r"([b-df-hj-np-tv-z])\1(?:est|er|ed|ing)$")  # "bigger" -> "big"


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    opposite: dict[str, set[str]] = {}
    irregular: dict[str, set[str]] = {}
    for line in files("opencite.app.citations").joinpath("antonyms.tsv").read_text().splitlines():
        if line.startswith("#") or not line:
            continue
        kind, _, word, other = line.split("\t")
        if kind == "antonym":
            opposite.setdefault(word, set()).add(other)
            opposite.setdefault(other, set()).add(word)
        else:
            irregular.setdefault(word, set()).add(other)
    return ({w: frozenset(o) for w, o in opposite.items()}, {w: frozenset(o) for w, o in irregular.items()})


@lru_cache(maxsize=20_000)
def lemmas(word: str) -> frozenset[str]:
    """The lexicon's words this word is a form of (itself included when it is one)."""
    opposite, irregular = _table()
    w = word.lower()
    out = {w} | set(irregular.get(w, ()))
    out |= {w[: -len(end)] + repl for end, repl in _ENDINGS if w.endswith(end) and len(w) > len(end) + 2}
    if m := _DOUBLED.search(w):
        out.add(w[: m.start(1) + 1])
    return frozenset(x for x in out if x in opposite)


@lru_cache(maxsize=20_000)
def opposites(word: str) -> frozenset[str]:
    """The words of opposite meaning to any reading of this one."""
    opposite, _ = _table()
    return frozenset().union(*(opposite[x] for x in lemmas(word)))
