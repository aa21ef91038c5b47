"""Names in text: capitalised words and identifiers (mixed case, digits, `snake_case`, dotted or
hyphenated product names, hub ids, instance types), compared on their letters and digits whatever
the separators and case ("Llama-2-70b" ~ "Llama 2 70B", "StabilityAI" ~ "Stability AI"); a hub id's
namespace ("meta-llama/") and lower-case affixes joined to a name ("-chat-hf", "X-based") may be
missing from the source. A small bare number right after a name is its version ("Llama 3"), checked
with it. Used by the numbers-and-names check (facts.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

from opencite.app.citations.figures import SCIENTIFIC
from opencite.app.citations.support import stopwords


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")


_ATOM = re.compile(r"[a-z]+|\d+")


NAME_TOKEN = re.compile(r"[A-Za-z0-9][\w./:-]*[A-Za-z0-9]|[A-Z]")


NAME_VERSION = re.compile(r"\b([A-Z][\w-]*)[ \t]+(\d{1,2})\b(?![.,]\d)(?![ \t]*(?:%|percent\b))")


@dataclass(frozen=True)
class Name:
    text: str  # as written ("Llama-2-70b-chat-hf", "Llama 3")
    forms: tuple[str, ...]  # letters-and-digits forms accepted, longest first
    key: str  # the name's letters with its digits as '#': another version of it has the same key
    soft: bool = False  # a capitalised first word: maybe a name, maybe only the sentence's start


def flat(text: str) -> str:
    return "".join(_ATOM.findall(text.lower()))


def _spaced(text: str) -> str:
    """Lower-case letters and digits, each run its own atom: 'Llama-2-70B' -> 'llama 2 70 b'."""
    return " ".join(_ATOM.findall(text.lower()))


def _parts(text: str) -> list[str]:
    return [p for p in re.split(r"[\s./:_=-]+", text) if p]


def _name(text: str) -> Name | None:
    variants = [_parts(text)]
    if "/" in text:  # a hub id: its namespace may be left out
        variants.append(_parts(text.split("/", 1)[1]))
    forms: list[list[str]] = []
    for parts in variants:
        forms.append(parts)
        # Lower-case words joined to a name ("-chat-hf", "X-based", "ml.g5..."): may be left out.
        tail = list(parts)
        while len(tail) > 1 and re.fullmatch(r"[a-z]+", tail[-1]):
            tail = tail[:-1]
            forms.append(tail)
        head = list(parts)
        while len(head) > 1 and re.fullmatch(r"[a-z]+", head[0]):
            head = head[1:]
            forms.append(head)
    forms_flat = [f for f in dict.fromkeys(flat("".join(p)) for p in forms) if f and not f.isdigit()]
    if not forms_flat:
        return None
    return Name(text, tuple(sorted(forms_flat, key=len, reverse=True)), re.sub(r"\d+", "#", flat(text)))


def names_in(text: str, *, first_word_too: bool = False) -> list[Name]:
    """Proper nouns, product names and identifiers (not stopwords; a small number after a name is
    its version, "Llama 3")."""
    stop = stopwords()
    out: dict[str, Name] = {}
    versioned_spans = []
    for m in NAME_VERSION.finditer(text):
        if m.group(1).lower() not in stop:
            name = _name(f"{m.group(1)} {m.group(2)}")
            if name:
                out[name.forms[0]] = name
                versioned_spans.append(m.span(1))
    first = re.match(r"[^\w]*(\w+)", text)
    for m in NAME_TOKEN.finditer(text):
        token = m.group(0).rstrip(".:/-")
        if any(a <= m.start() < b for a, b in versioned_spans):
            continue
        if not _looks_like_name(token):
            continue
        if token.lower() in stop or token.isdigit() or len(token) < 2:
            continue
        soft = bool(not first_word_too and first and m.start() == first.start(1) and token[:1].isupper()
                    and token[1:].islower() and token.isalpha())  # "Compared with ...": maybe only a capital
        if (re.fullmatch(r"[vV]?\d[\d,.]*[a-zA-Z%]{0,3}", token) or re.fullmatch(r"\d+[-x×]\w+", token)
                or re.fullmatch(SCIENTIFIC, token)):
            continue  # a figure ("70B", "16GB", "v4.31.0", "4-bit", "8x", "3e5"), checked as one
        name = _name(token)
        if name:
            out.setdefault(name.forms[0], replace(name, soft=soft))
    return list(out.values())


def _looks_like_name(token: str) -> bool:
    if token[:1].isupper() or any(ch.isupper() for ch in token[1:]):
        return True
    if "_" in token or re.search(r"[a-z]\.[a-z]", token):  # snake_case, dotted.names
        return True
    return bool(re.search(r"[a-z]\d|\d[a-z]{2,}", token, re.IGNORECASE)) and not re.fullmatch(r"\d+[a-z]{1,3}", token)


def name_haystack(*texts: str) -> str:
    """Where names are looked for, prepared once per source: its letters and digits, one atom
    per run, CamelCase split too ("StabilityAI" -> "stability ai")."""
    joined = " ".join(texts)
    return " " + _spaced(joined) + " " + _spaced(_CAMEL.sub(" ", joined)) + " "


@lru_cache(maxsize=8192)
def _form_pattern(form: str) -> re.Pattern:
    # Any split of the form into the haystack's atoms: "llama270b" ~ "llama 2 70 b".
    return re.compile(r"(?<![a-z0-9])" + " ?".join(re.escape(ch) for ch in form) + r"(?![a-z0-9])")


def name_found(name: Name | str, haystack: str) -> bool:
    if isinstance(name, str):
        name = _name(name) or Name(name, (flat(name),), name)
    return _forms_found(name.forms, haystack)


@lru_cache(maxsize=65536)
def _forms_found(forms: tuple[str, ...], haystack: str) -> bool:
    return any(_form_pattern(form).search(haystack) for form in forms)


@lru_cache(maxsize=4096)
def _version_pattern(key: str) -> re.Pattern | None:
    if "#" not in key or not re.search(r"[a-z]", key):
        return None
    return re.compile(r"(?<![A-Za-z0-9])" + r"[\W_]*".join(
        (r"\d+(?:\.\d+)*" if part == "#" else "[\\W_]*".join(re.escape(ch) for ch in part))
        for part in re.findall(r"#|[a-z]+", key)) + r"(?![0-9])", re.IGNORECASE)


def name_conflict(name: Name, window_text: str) -> str | None:
    """Another version of the same name in the window ("Llama 3" where it says "Llama 2";
    "Mistral-7B-v0.1" where it says "v0.2"): the source's words, or None."""
    pattern = _version_pattern(name.key)
    if pattern is None:
        return None
    for m in pattern.finditer(window_text):
        if flat(m.group(0)) not in name.forms:
            return m.group(0)
    return None

