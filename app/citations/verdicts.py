"""What attribution found, sentence by sentence: the marker outcome, the verdict, and the evidence
(app/citations/attribution.py decides them; app/citations/annotations.py shows them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

OUTCOMES = ("supported", "repointed", "added", "unsupported")
# supported: a source states it (quote, deep link); contradicted: the best source window states a
# different figure or name in its place, or negates it (the source's words are kept); not_found:
# no source states it (absent facts lower support, they do not veto it).
VERDICTS = ("supported", "contradicted", "not_found")


@dataclass
class Evidence:
    n: int  # source number
    score: float
    supports: bool
    quote: str  # plain text of the source's best window
    start: int  # the window's offsets in the source's snippet
    end: int
    contradicts: bool = False  # the window states something else where the sentence states its facts
    differs: list[dict] = field(default_factory=list)  # [{claim, source}]: the words that differ
    absent: list[str] = field(default_factory=list)  # facts of the sentence this source does not state


@dataclass
class SentenceAttribution:
    start: int  # offsets in the attributed answer text
    end: int
    text: str
    outcome: str
    markers: list[int]  # as in the attributed text
    original_markers: list[int]  # as the LLM wrote them
    score: float  # best support over all sources
    evidence: list[Evidence] = field(default_factory=list)  # cited and best sources
    written_start: int = 0  # offsets in the answer as the LLM wrote it (what a stream sent)
    written_end: int = 0
    verdict: str = "supported"  # supported | contradicted | not_found (see VERDICTS)

    def conflict(self) -> Evidence | None:
        """The source that contradicts the sentence, with the words that differ."""
        return next((e for e in self.evidence if e.contradicts), None)

    def quote_for(self, n: int) -> Evidence | None:
        return next((e for e in self.evidence if e.n == n and e.supports), None)


@dataclass
class Attribution:
    mode: str
    text: str  # the answer after attribution (markers repaired in mode `repair`)
    sentences: list[SentenceAttribution]
    counts: dict[str, int]
    seconds: float
    verdicts: dict[str, int] = field(default_factory=dict)
    unchecked: int = 0  # checkable sentences beyond settings.max_sentences, left unchecked

    def to_dict(self) -> dict:
        return asdict(self)


def tally(sentences: list[SentenceAttribution]) -> tuple[dict[str, int], dict[str, int]]:
    """(sentences per outcome, sentences per verdict), every outcome and verdict listed."""
    return ({o: sum(1 for s in sentences if s.outcome == o) for o in OUTCOMES},
            {v: sum(1 for s in sentences if s.verdict == v) for v in VERDICTS})
