"""Settings in code as evidence: `learning_rate=2e-4`, `--lora_r 16`, `revision="flax"` each give
one named setting one value, so a claim giving that setting another value is contradicted there
("the same place" of a figure or name, for code).

A claim gives a setting a value either as code writes it (`top_k=10`, `--lora_alpha 32`) or in
words: every word of a setting's name, spelled out ("a learning rate of 0.0003" for
`learning_rate`, "max new tokens of 100" for `max_new_tokens`), then a figure within a few words.
A setting named with a single word in prose ("rank", "revision") is too loose to bind and is
only compared when the claim writes it as code. Absent settings say nothing; a setting the
window writes twice with different values is compared with each (either may be the claim's).
"""

from __future__ import annotations

import re
from functools import lru_cache

from opencite.app.citations.figures import figure_found, figures_in
from opencite.app.citations.support import content_terms

# `key=value`, `key: value` (YAML, JSON, kwargs), or `--key value` / `--key=value` (a CLI flag);
# a key is an identifier, bare or quoted.
_VALUE = r"(?P<value>\"[^\"\n]{0,80}\"|'[^'\n]{0,80}'|[-+]?\d[\w.+-]*|[A-Za-z_][\w./-]*)"
_KEY_VALUE = re.compile(
    r"(?:--(?P<flag>[A-Za-z][\w-]*)(?:[ \t]*=[ \t]*|[ \t]+)|(?<![\w.-])[\"']?(?P<key>[A-Za-z_]\w*)[\"']?[ \t]*[=:][ \t]*)"
    + _VALUE + r"(?![\w.])")
_WORD = re.compile(r"[^\W_]+")
# After `key: Word`, another word that is no key of its own: the value is a phrase's first word.
_PHRASE = re.compile(r"[ \t]+[A-Za-z]+\b(?![ \t]*[:=])")
NEAR = 4  # words between a setting's spelled-out name and its value in a claim


def _key(name: str) -> str:
    return name.lower().replace("-", "_").strip("_")


@lru_cache(maxsize=8192)
def written_settings(text: str) -> tuple[tuple[str, str], ...]:
    """(key, value) for every setting the text writes as code, keys normalised (`--lora-r` ~ `lora_r`)."""
    out = []
    for m in _KEY_VALUE.finditer(text):
        name = m.group("flag") or m.group("key")
        if m.group("key") and "=" not in m.group(0):
            if "_" not in name:
                continue  # "Note: 5" is prose; `top_k: 5` and `k=5` are settings
            if m.group("value")[0].isalpha() and _PHRASE.match(text, m.end()):
                continue  # a definition list: "`top_p`: The cumulative probability of ..."
        out.append((_key(name), m.group("value").rstrip(".,;:")))  # a sentence's end is not the value's
    return tuple(out)


def _same(a: str, b: str) -> bool:
    if a.strip("\"'").lower() == b.strip("\"'").lower():
        return True
    fa, fb = figures_in(a), figures_in(b)
    return bool(fa and fb and figure_found(fa[0], fb))


@lru_cache(maxsize=8192)
def _spelled(claim: str, key: str) -> str | None:
    """The figure the claim gives the setting `key` in words, if it spells every word of its name."""
    parts = [p for p in key.split("_") if p]
    if len(parts) < 2:
        return None
    words = [(m.group(0).lower(), m.end()) for m in _WORD.finditer(claim)]
    terms = [next(iter(content_terms(w)), "") for w, _ in words]
    wanted = [next(iter(content_terms(p)), None) for p in parts]
    if any(t is None for t in wanted) or not set(wanted) <= set(terms):
        return None  # a stopword in the name ("max_new_tokens" keeps "max") cannot be checked
    last = max(i for i, t in enumerate(terms) if t in wanted)
    after = claim[words[last][1]:]
    figure = next(iter(figures_in(" ".join(after.split()[:NEAR + 1]))), None)
    return figure.text if figure is not None else None


def setting_conflict(claim: str, window: str) -> tuple[str, str] | None:
    """(the claim's words, the window's `key=value`) when the claim gives a setting the window
    writes a value the window never gives it; else None."""
    stated: dict[str, list[str]] = {}
    for key, value in written_settings(window):
        stated.setdefault(key, []).append(value)
    if not stated:
        return None
    claimed = {}
    for key, value in written_settings(claim):
        claimed.setdefault(key, value)
    for key in stated:
        if key not in claimed and (value := _spelled(claim, key)) is not None:
            claimed[key] = value
    for key, value in claimed.items():
        if key in stated and not any(_same(value, v) for v in stated[key]):
            return value, f"{key}={stated[key][0]}"
    return None
