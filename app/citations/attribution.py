"""Attribution: every sentence of an answer checked against the sources that went into the prompt.

Each prose sentence (see `sentences`) is scored against every source's runs of 1 to
`window_sentences` adjacent sentences (windows) by a pluggable scorer (`support`); the best
window of a source is its quote. A figure, version or date in the sentence must appear in that
window, and a name somewhere in the source (its text, title or heading; see `claim_facts`), else
the source does not support the sentence. A sentence no source supports alone may be supported
by two together (a comparison of two pages), each cited. Outcomes:

- `supported`: a source the sentence cites supports it;
- `repointed`: its markers point at sources that do not support it and another one does;
- `added`: it cites nothing and a source supports it;
- `unsupported`: no source supports it (flagged, never dropped).

Mode `repair` rewrites the markers (repointed → the supporting source, added → a new marker,
unsupported → its markers removed); `flag` reports the same outcomes on the text as written.
Sentences too short to check, and ones saying the pages do not cover the question, get no
outcome.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from itertools import combinations

import numpy as np

from opencite.app.answer import Source
from opencite.app.citations.sentences import MARKER, Sentence, split_sentences
from opencite.app.citations.facts import ClaimFacts, claim_facts, clause_facts, name_found, name_haystack, number_found, numbers_in
from opencite.app.citations.support import EmbeddingLexicalScorer, Scorer, content_terms
from opencite.app.citations.text_fragment import fragment_url
from opencite.settings import AttributionSettings

OUTCOMES = ("supported", "repointed", "added", "unsupported")
# An answer saying the pages do not cover the question (eval counts these abstentions too).
ABSTAIN = re.compile(
    r"\b(?:not (?:covered|mentioned|addressed|discussed|included|provided|found|present|contain)"
    r"|(?:do|does|did)(?:n't| not) (?:cover|mention|contain|say|include|provide|address|discuss)"
    r"|no (?:information|mention|details?|sources?)"
    r"|(?:can(?:no|')t|could ?n[o']t|unable to) (?:find|answer|determine|say)"
    r"|(?:i )?don't know|i do not know|not enough information|insufficient information"
    r"|outside (?:the )?(?:scope|sources))\b",
    re.IGNORECASE,
)
_END_PUNCT = re.compile(r"\s*([.!?:;]+[\"')\]*_]*)\s*$")


@dataclass
class Evidence:
    n: int  # source number
    score: float
    supports: bool
    quote: str  # plain text of the source's best window
    start: int  # the window's offsets in the source's snippet
    end: int


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

    def quote_for(self, n: int) -> Evidence | None:
        return next((e for e in self.evidence if e.n == n and e.supports), None)


@dataclass
class Attribution:
    mode: str
    text: str  # the answer after attribution (markers repaired in mode `repair`)
    sentences: list[SentenceAttribution]
    counts: dict[str, int]
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Window:
    n: int
    start: int
    end: int
    text: str
    parts: list[str]  # its sentences, plain text
    numbers: set[str]


def default_scorer(settings: AttributionSettings, embeddings=None, llm=None) -> Scorer:
    if settings.scorer == "cross-encoder":
        if not settings.cross_encoder_model:
            raise ValueError("OPENCITE_ATTRIBUTION__SCORER=cross-encoder needs OPENCITE_ATTRIBUTION__CROSS_ENCODER_MODEL "
                             "(a local CrossEncoder folder or hub id)")
        from opencite.app.citations.support import CrossEncoderScorer

        return CrossEncoderScorer(settings.cross_encoder_model, settings.cross_encoder_device)
    if settings.scorer == "llm":
        from opencite.app.citations.support import LLMJudgeScorer

        return LLMJudgeScorer(llm)
    return EmbeddingLexicalScorer(embeddings, settings.embedding_weight)


def attribute(answer: str, sources: list[Source], scorer: Scorer, settings: AttributionSettings) -> Attribution:
    t0 = time.perf_counter()
    by_n = {s.n: s for s in sources}
    sentences = [s for s in split_sentences(answer) if _checkable(s, settings)]
    windows = _windows(sources, settings.window_sentences)
    haystacks = {src.n: name_haystack(src.snippet, " ".join(w.text for w in windows if w.n == src.n),
                                      src.title, src.heading_path) for src in sources}
    results: list[tuple[Sentence, str, list[int], float, list[Evidence]]] = []
    if sentences:
        raw = scorer.score([s.claim for s in sentences], [w.parts for w in windows]) if windows \
            else np.zeros((len(sentences), 0))
        for i, sentence in enumerate(sentences):
            results.append(_decide(sentence, raw[i], windows, haystacks, by_n, settings))
    text, spans = _rewrite(answer, results, settings.mode)
    out = []
    for (sentence, outcome, markers, score, evidence), (start, end) in zip(results, spans):
        written = [n for n in sentence.markers if n in by_n]
        out.append(SentenceAttribution(start, end, text[start:end], outcome,
                                       markers if settings.mode == "repair" else written, written, score, evidence,
                                       sentence.start, sentence.end))
    counts = {o: sum(1 for s in out if s.outcome == o) for o in OUTCOMES}
    return Attribution(settings.mode, text, out, counts, time.perf_counter() - t0)


def _checkable(sentence: Sentence, settings: AttributionSettings) -> bool:
    claim = sentence.claim
    return len(content_terms(claim)) >= settings.min_claim_words and not ABSTAIN.search(claim)


def _windows(sources: list[Source], size: int) -> list[_Window]:
    return [_Window(src.n, *w) for src in sources for w in _source_windows(src.snippet, size)]


@lru_cache(maxsize=4096)
def _source_windows(snippet: str, size: int) -> tuple[tuple, ...]:
    """A source's runs of 1..`size` adjacent sentences (a whole snippet without prose, e.g.
    code, is one window): a sentence of the answer often joins what two or three of the
    source's sentences say. Cached: the chain warms it while the LLM writes."""
    parts = split_sentences(snippet, tables=True)
    if not parts:
        text = snippet.strip()
        return ((0, len(snippet), text, [text], numbers_in(text)),) if text else ()
    out = []
    for i, s in enumerate(parts):
        for j in range(i, min(i + size, len(parts))):
            claims = [p.claim for p in parts[i:j + 1]]
            text = " ".join(claims)
            out.append((s.start, parts[j].end, text, claims, numbers_in(text)))
    return tuple(out)


def warm(sources: list[Source], scorer: Scorer, settings: AttributionSettings, written: str = "") -> None:
    """What attribution needs, done ahead while the LLM writes (the chain calls this when the
    sources are known and as each sentence ends): the sources' windows, and the scorer's work on
    their sentences and on the complete sentences `written` so far, if the scorer keeps any."""
    windows = _windows(sources, settings.window_sentences)
    if hasattr(scorer, "warm"):
        done = [s for s in split_sentences(written)[:-1] if _checkable(s, settings)]
        scorer.warm(list(dict.fromkeys([s.claim for s in done] + [part for w in windows for part in w.parts])))


def _decide(sentence: Sentence, raw: np.ndarray, windows: list[_Window], haystacks: dict[int, str],
            by_n: dict[int, Source], settings: AttributionSettings):
    facts = claim_facts(sentence.claim) if settings.check_numbers_and_names else ClaimFacts(frozenset(), frozenset())
    clauses = clause_facts(sentence.claim) if settings.check_numbers_and_names else []
    names_ok = {n: all(name_found(x, h) for x in facts.names) for n, h in haystacks.items()}
    best: dict[int, tuple[float, bool, _Window]] = {}  # per source: (score, passes checks, window)
    for j, w in enumerate(windows):
        score = float(raw[j])
        ok = names_ok[w.n] and all(number_found(x, w.numbers) for x in facts.numbers)
        key = (ok and score >= settings.threshold, score)
        current = best.get(w.n)
        if current is None or key > (current[1] and current[0] >= settings.threshold, current[0]):
            best[w.n] = (score, ok, w)
    supports = {n for n, (score, ok, _) in best.items() if ok and score >= settings.threshold}
    cited = [n for n in sentence.markers if n in by_n]
    joint: list[int] = []
    if len(cited) > 1 and not supports & set(cited):
        joint = _joint_support([n for n in cited if n in best], best, haystacks, clauses, settings.threshold)
    if not supports and not joint and settings.check_numbers_and_names:
        joint = _best_joint_pair(best, haystacks, clauses, settings.threshold)
    supports |= set(joint)
    top = max(best, key=lambda n: (n in supports, best[n][0]), default=None)
    if supports & set(cited):
        outcome = "supported"
        markers = [n for n in cited if n in supports] + [n for n in joint if n not in cited]
    elif supports:
        outcome, markers = ("repointed" if cited else "added"), joint or [top]
    else:
        outcome, markers = "unsupported", []
    evidence = []
    for n in dict.fromkeys(cited + markers + ([top] if top is not None else [])):
        score, ok, w = best[n]
        evidence.append(Evidence(n, round(score, 4), n in supports, w.text, w.start, w.end))
    score = max((b[0] for b in best.values()), default=0.0)
    return sentence, outcome, markers, round(score, 4), evidence


def _joint_support(parts: list[int], best, haystacks: dict[int, str], clauses: list[ClaimFacts],
                   threshold: float) -> list[int]:
    """A sentence joining facts of several sources (a comparison: "Mixtral supports 32k tokens;
    Llama 3 8K"): each clause's figures must be in one source's best window and its names in that
    source. The sources (two or more) that support it together this way, or none."""
    if not parts or max(best[n][0] for n in parts) < threshold or not clauses:
        return []
    holders = set()
    for facts in clauses:
        held = [n for n in parts if all(number_found(x, best[n][2].numbers) for x in facts.numbers)
                and all(name_found(x, haystacks[n]) for x in facts.names)]
        if not held:
            return []
        holders.add(max(held, key=lambda n: best[n][0]))
    joint = [n for n in parts if n in holders and best[n][0] >= threshold / 2]
    return joint if len(joint) > 1 else []


def _best_joint_pair(best, haystacks: dict[int, str], clauses: list[ClaimFacts], threshold: float) -> list[int]:
    """The best-scoring two sources that support the sentence together, when no one does alone."""
    pairs = sorted(combinations(sorted(best), 2), key=lambda p: -(best[p[0]][0] + best[p[1]][0]))
    for pair in pairs:
        joint = _joint_support(list(pair), best, haystacks, clauses, threshold)
        if joint:
            return joint
    return []


def _rewrite(answer: str, results, mode: str) -> tuple[str, list[tuple[int, int]]]:
    """The answer with each checked sentence's markers as decided (mode `repair`), and each
    sentence's span in that text."""
    pieces, spans, pos, length = [], [], 0, 0
    for sentence, outcome, markers, _, _ in results:
        pieces.append(answer[pos:sentence.start])
        length += sentence.start - pos
        new = sentence.text
        if mode == "repair" and list(markers) != [n for n in sentence.markers]:
            new = _with_markers(sentence.text, markers)
        spans.append((length, length + len(new)))
        pieces.append(new)
        length += len(new)
        pos = sentence.end
    pieces.append(answer[pos:])
    return "".join(pieces), spans


def _with_markers(text: str, markers: list[int]) -> str:
    bare = re.sub(r"\s+([.,;:!?])", r"\1", MARKER.sub("", text)).rstrip()
    bare = re.sub(r"[ \t]{2,}", " ", bare)
    if not markers:
        return bare
    tag = "".join(f"[{n}]" for n in markers)
    end = _END_PUNCT.search(bare)
    if end and end.start() > 0:
        return f"{bare[:end.start()]} {tag}{bare[end.start():]}"
    return f"{bare} {tag}"


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
    """The `attributions` extension field: what annotations cannot carry."""
    by_n = {s.n: s for s in sources}

    def evidence(e: Evidence) -> dict:
        src = by_n[e.n]
        return {"n": e.n, "url": src.url, "title": src.title, "score": e.score, "supports": e.supports,
                "quote": e.quote if e.supports else None,
                "fragment_url": fragment_url(src.url, e.quote, src.snippet) if e.supports else None}

    return {
        "mode": attribution.mode,
        "counts": attribution.counts,
        "sentences": [{"start_index": s.start, "end_index": s.end, "text": s.text, "outcome": s.outcome,
                       "markers": s.markers, "original_markers": s.original_markers, "score": s.score,
                       "evidence": [evidence(e) for e in s.evidence]} for s in attribution.sentences],
    }
