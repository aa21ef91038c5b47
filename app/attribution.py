"""Attribution: every sentence of an answer checked against the sources that went into the prompt.

Each prose sentence (see `sentences`) is scored against every source's own sentences and
pairs of adjacent sentences (windows) by a pluggable scorer (`support`); the best window of a
source is its quote. A figure, version or date in the sentence must appear in that window, and
a name somewhere in the source (its text, title or heading), else the source does not support
the sentence. Outcomes:

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

import numpy as np

from opencite.app.answer_types import Source
from opencite.app.sentences import MARKER, Sentence, split_sentences
from opencite.app.support import EmbeddingLexicalScorer, Scorer, content_terms, stopwords
from opencite.app.text_fragment import fragment_url
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
_TOKEN = re.compile(r"[\w][\w.,+/-]*[\w]|\w")
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
        from opencite.app.support import CrossEncoderScorer

        return CrossEncoderScorer(settings.cross_encoder_model, settings.cross_encoder_device)
    if settings.scorer == "llm":
        from opencite.app.support import LLMJudgeScorer

        return LLMJudgeScorer(llm)
    return EmbeddingLexicalScorer(embeddings, settings.embedding_weight)


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
    """Proper nouns and product names: capitalised or mixed-case words that are not stopwords."""
    stop = stopwords()
    return {w.lower() for w in re.findall(r"\b[A-Z][\w-]*", text)
            if w.lower() not in stop and not w.isdigit() and len(w) > 1}


def _number_found(number: str, window_numbers: set[str]) -> bool:
    if number in window_numbers:
        return True
    core = re.match(r"[\d.]+", number)  # "45b" matches "45" followed by "billion"
    return bool(core) and any(re.match(r"[\d.]+", w) and re.match(r"[\d.]+", w).group() == core.group()
                              for w in window_numbers)


def attribute(answer: str, sources: list[Source], scorer: Scorer, settings: AttributionSettings) -> Attribution:
    t0 = time.perf_counter()
    by_n = {s.n: s for s in sources}
    sentences = [s for s in split_sentences(answer) if _checkable(s, settings)]
    windows = _windows(sources)
    results: list[tuple[Sentence, str, list[int], float, list[Evidence]]] = []
    if sentences:
        raw = scorer.score([s.claim for s in sentences], [w.parts for w in windows]) if windows \
            else np.zeros((len(sentences), 0))
        for i, sentence in enumerate(sentences):
            results.append(_decide(sentence, raw[i], windows, by_n, settings))
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


def _windows(sources: list[Source]) -> list[_Window]:
    """Each source's sentences and pairs of adjacent sentences (a whole snippet without prose,
    e.g. code, is one window)."""
    out = []
    for src in sources:
        parts = split_sentences(src.snippet, tables=True)
        if not parts:
            if src.snippet.strip():
                text = src.snippet.strip()
                out.append(_Window(src.n, 0, len(src.snippet), text, [text], numbers_in(text)))
            continue
        for i, s in enumerate(parts):
            for j in (i, i + 1):
                if j < len(parts):
                    claims = [p.claim for p in parts[i:j + 1]]
                    text = " ".join(claims)
                    out.append(_Window(src.n, s.start, parts[j].end, text, claims, numbers_in(text)))
    return out


def _decide(sentence: Sentence, raw: np.ndarray, windows: list[_Window], by_n: dict[int, Source],
            settings: AttributionSettings):
    claim = sentence.claim
    numbers = numbers_in(claim) if settings.check_numbers_and_names else set()
    names = names_in(claim) if settings.check_numbers_and_names else set()
    best: dict[int, tuple[float, bool, _Window]] = {}  # per source: (score, passes checks, window)
    for j, w in enumerate(windows):
        score = float(raw[j])
        ok = all(_number_found(x, w.numbers) for x in numbers) and _names_found(names, w, by_n[w.n])
        key = (ok and score >= settings.threshold, score)
        current = best.get(w.n)
        if current is None or key > (current[1] and current[0] >= settings.threshold, current[0]):
            best[w.n] = (score, ok, w)
    supports = {n for n, (score, ok, _) in best.items() if ok and score >= settings.threshold}
    cited = [n for n in sentence.markers if n in by_n]
    if len(cited) > 1 and not supports & set(cited):
        # A sentence joining facts of several cited sources: its figures and names may be spread
        # over their best windows.
        parts = [best[n] for n in cited if n in best]
        found = set().union(*(w.numbers for _, _, w in parts))
        if max(p[0] for p in parts) >= settings.threshold and all(_number_found(x, found) for x in numbers) \
                and all(any(_names_found({x}, w, by_n[w.n]) for _, _, w in parts) for x in names):
            supports |= {w.n for score, _, w in parts if score >= settings.threshold / 2}
    top = max(best, key=lambda n: (n in supports, best[n][0]), default=None)
    if supports & set(cited):
        outcome, markers = "supported", [n for n in cited if n in supports]
    elif supports:
        outcome, markers = ("repointed" if cited else "added"), [top]
    else:
        outcome, markers = "unsupported", []
    evidence = []
    for n in dict.fromkeys(cited + ([top] if top is not None else [])):
        score, ok, w = best[n]
        evidence.append(Evidence(n, round(score, 4), n in supports, w.text, w.start, w.end))
    score = max((b[0] for b in best.values()), default=0.0)
    return sentence, outcome, markers, round(score, 4), evidence


def _names_found(names: set[str], window: _Window, source: Source) -> bool:
    if not names:
        return True
    haystack = f"{window.text} {source.snippet} {source.title} {source.heading_path}".lower()
    return all(re.search(rf"(?<!\w){re.escape(n)}(?!\w)", haystack) for n in names)


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
