"""What speaks against a sentence: a window like it that states a different figure or name in
its place (or negates it), and the pages the rest of the answer stands on, against which a
sentence supported only elsewhere is decided again."""

from __future__ import annotations

from collections.abc import Collection

from opencite.app.answer import Source
from opencite.settings import AttributionSettings

def answer_pages(decisions: dict[int, tuple], by_n: dict[int, Source], pages: Collection[str]) -> dict[int, frozenset]:
    """The answer's other pages for each supported sentence that no page of the rest of the answer
    supports: the URLs supporting its other sentences (and `pages`). Such a sentence is decided
    again against them: a different figure or name on one of them outweighs a passage of
    another page that happens to hold the sentence's own (an altered figure found elsewhere)."""
    supporting = {i: frozenset(by_n[n].url for n in d[1] if n in by_n) for i, d in decisions.items()
                  if d[-1] == "supported"}
    out = {}
    for i, own in supporting.items():
        others = frozenset(pages).union(*(p for k, p in supporting.items() if k != i))
        if others and not own & others:
            out[i] = others
    return out


def contradiction(per_source, settings: AttributionSettings, checked, names: Collection[str] = ()):
    """A sentence no source supports is contradicted when one of the windows most like it (the
    top few by support, at least near the threshold) states a different figure or name where the
    sentence states its own, or negates it: (source number, window, its check, its score), or None.
    The window's source must write one of the sentence's `names` at least, if it has any: a page
    about none of the things it names states other figures, not different ones in the same place
    ("768 tokens" of a serving benchmark against "LLaVA-NeXT spends 2,880 tokens on each image")."""
    floor = settings.threshold - settings.contradiction_margin
    ranked = sorted(((score, n, w, fc) for n, entries in per_source.items() for _, score, w, fc in entries
                     if score >= floor), key=lambda e: -e[0])[:3]
    for score, n, w, fc in ranked:
        full = fc if fc.contradicted else checked(w, True)
        if full.contradicted and (not names or not set(names) <= set(full.absent)):
            return n, w, full, score
    return None
