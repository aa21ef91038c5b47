"""The numbers-and-names check of attribution: the facts a claim states that a similar-sounding
passage must not get wrong.

- Figures, versions and dates (`numbers_in`) must appear in the supporting window.
- Proper nouns and product names (`names_in`) must appear in the source (its text, title or
  heading). A small bare number right after a name is the name's version ("Llama 3", "GPT 4"):
  it is checked as part of that name, not as a figure of the window.
- CamelCase is split on both sides, so "Stability AI" matches "StabilityAI" (and "MB" matches
  "1MB").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from opencite.app.citations.support import stopwords

_TOKEN = re.compile(r"[\w][\w.,+/-]*[\w]|\w")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[A-Za-z])")  # a unit written on its number: "1MB"
_NAME = re.compile(r"\b[A-Z][\w-]*")
# "Llama 3", "Phi 2": one or two digits after a capitalised word, not a decimal, a unit or a %.
_NAME_VERSION = re.compile(r"\b([A-Z][\w-]*)[ \t]+(\d{1,2})\b(?![.,]\d)(?![ \t]*(?:%|percent\b))")


# Where a sentence joining two pages' facts divides: "Mixtral supports 32k tokens; Llama 3 8K".
_CLAUSE = re.compile(r"[;:()]|(?<!\d),|,(?!\d)|\b(?:and|versus|vs\.?|while|whereas|but|than|compared (?:with|to))\b",
                     re.IGNORECASE)


@dataclass(frozen=True)
class ClaimFacts:
    numbers: frozenset[str]  # each must be in the supporting window
    names: frozenset[str]  # each must be in the source; "llama 3" for a versioned name


def claim_facts(claim: str) -> ClaimFacts:
    stop = stopwords()
    versions, spans = set(), []
    for m in _NAME_VERSION.finditer(claim):
        if m.group(1).lower() not in stop:
            versions.add(f"{_CAMEL.sub(' ', m.group(1)).lower()} {m.group(2)}")
            spans.append(m.span(2))
    rest = claim
    for a, b in reversed(spans):  # the versions' digits are not figures of the window
        rest = rest[:a] + " " * (b - a) + rest[b:]
    return ClaimFacts(frozenset(numbers_in(rest)), frozenset(names_in(claim) | versions))


def clause_facts(claim: str) -> list[ClaimFacts]:
    """The facts of each clause of a claim that states any."""
    facts = [claim_facts(clause) for clause in _CLAUSE.split(claim)]
    return [f for f in facts if f.numbers or f.names]


def numbers_in(text: str) -> set[str]:
    """Figures, versions and dates, normalised: '128,256' -> '128256', 'v1.4.0' -> '1.4.0',
    '32K' -> '32k'."""
    out = set()
    for tok in _TOKEN.findall(text):
        if any(ch.isdigit() for ch in tok):
            tok = tok.lower().replace(",", "").strip(".-+/")
            out.add(tok[1:] if tok[:1] == "v" and tok[1:2].isdigit() else tok)
    return out


def names_in(text: str) -> set[str]:
    """Proper nouns and product names: capitalised or mixed-case words that are not stopwords
    (CamelCase split into its words)."""
    stop = stopwords()
    return {w.lower() for w in _NAME.findall(_CAMEL.sub(" ", text))
            if w.lower() not in stop and not w.isdigit() and len(w) > 1}


def number_found(number: str, window_numbers: set[str]) -> bool:
    if number in window_numbers:
        return True
    core = re.match(r"[\d.]+", number)  # "45b" matches "45" followed by "billion"
    return bool(core) and any(re.match(r"[\d.]+", w) and re.match(r"[\d.]+", w).group() == core.group()
                              for w in window_numbers)


def name_haystack(*texts: str) -> str:
    """Where names are looked for, prepared once per source."""
    return _DIGIT_LETTER.sub(" ", _CAMEL.sub(" ", " ".join(texts))).lower()


def name_found(name: str, haystack: str) -> bool:
    pattern = r"[\s-]*".join(re.escape(part) for part in name.split(" "))  # "llama 3" ~ "Llama-3"
    return re.search(rf"(?<!\w){pattern}(?!\w)", haystack) is not None
