"""What clients see of an attribution: OpenAI `url_citation` annotations over the answer's text,
and opencite's `attributions` extension (verdicts, quotes, deep links) — for the API, `ask --json`
and the chat."""

from __future__ import annotations

from opencite.app.answer import Source
from opencite.app.citations.verdicts import Attribution, Evidence
from opencite.app.citations.text_fragment import fragment_url


def annotations(attribution: Attribution, sources: list[Source], *, written: bool = False,
                offset: int = 0) -> list[dict]:
    """OpenAI `url_citation` annotations: one per cited span, its URL opening the quote. Spans
    index the attributed text, or with `written=True` the text as the LLM wrote it (+ offset),
    which is what a stream sent."""
    by_n = {s.n: s for s in sources}
    out = []
    for s in attribution.sentences:
        start, end = (s.written_start, s.written_end) if written else (s.start, s.end)
        for n in s.markers:
            src = by_n[n]
            ev = s.quote_for(n)
            out.append({"type": "url_citation", "url_citation": {
                "start_index": start + offset, "end_index": end + offset,
                "url": fragment_url(src.url, ev.quote, src.snippet) if ev else src.url,
                "title": src.title}})
    return out


def attributions_json(attribution: Attribution, sources: list[Source]) -> dict:
    """The `attributions` extension field: what annotations cannot carry. Each sentence has its
    `verdict` (supported | contradicted | not_found); a contradicting source's evidence carries
    `contradicts` and `differs` ([{claim, source}]: the sentence's words and the source's)."""
    by_n = {s.n: s for s in sources}

    def evidence(e: Evidence) -> dict:
        src = by_n[e.n]
        shown = e.supports or e.contradicts
        return {"n": e.n, "url": src.url, "title": src.title, "score": e.score, "supports": e.supports,
                "contradicts": e.contradicts, "differs": e.differs,
                "quote": e.quote if shown else None,
                "fragment_url": fragment_url(src.url, e.quote, src.snippet) if shown else None}

    return {
        "mode": attribution.mode,
        "counts": attribution.counts,
        "verdicts": attribution.verdicts,
        "unchecked": attribution.unchecked,
        "sentences": [{"start_index": s.start, "end_index": s.end, "text": s.text, "outcome": s.outcome,
                       "verdict": s.verdict, "markers": s.markers, "original_markers": s.original_markers,
                       "score": s.score, "evidence": [evidence(e) for e in s.evidence]}
                      for s in attribution.sentences],
    }
