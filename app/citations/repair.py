"""Repair's text: the answer with each checked sentence's markers as attribution decided them."""

from __future__ import annotations

import re

from opencite.app.citations.sentences import MARKER

_END_PUNCT = re.compile(r"\s*([.!?:;]+[\"')\]*_]*)\s*$")


def rewrite(answer: str, results, mode: str) -> tuple[str, list[tuple[int, int]]]:
    """The answer with each checked sentence's markers as decided (mode `repair`), and each
    sentence's span in that text."""
    pieces, spans, pos, length = [], [], 0, 0
    for sentence, outcome, markers, *_ in results:
        pieces.append(answer[pos:sentence.start])
        length += sentence.start - pos
        new = sentence.text
        if mode == "repair" and list(markers) != [n for n in sentence.markers]:
            new = with_markers(sentence.text, markers)
        spans.append((length, length + len(new)))
        pieces.append(new)
        length += len(new)
        pos = sentence.end
    pieces.append(answer[pos:])
    return "".join(pieces), spans


def with_markers(text: str, markers: list[int]) -> str:
    bare = re.sub(r"\s+([.,;:!?])", r"\1", MARKER.sub("", text)).rstrip()
    bare = re.sub(r"[ \t]{2,}", " ", bare)
    if not markers:
        return bare
    tag = "".join(f"[{n}]" for n in markers)
    end = _END_PUNCT.search(bare)
    if end and end.start() > 0:
        return f"{bare[:end.start()]} {tag}{bare[end.start():]}"
    return f"{bare} {tag}"
