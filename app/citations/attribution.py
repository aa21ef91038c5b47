"""Attribution: every sentence of an answer checked against the sources that went into the prompt.

Each prose sentence (see `sentences`) is scored against every source's runs of 1 to
`window_sentences` adjacent sentences (windows) by a pluggable scorer (`support`); the best
window of a source is its quote. The sentence's figures and names (`facts`) are then looked for,
as text writes them: a figure in the window, a name anywhere in the source (text, title,
heading). A fact the window does not state (absent) lowers that window's support by
`absent_penalty`; a DIFFERENT figure or name in its place, or the claim negated, is a
contradiction and vetoes it. A sentence no source supports alone may be supported by two
together (a comparison of two pages), each cited.

Verdicts: `supported` (a source states it: quote and deep link), `contradicted` (no source
supports it and one of the windows most like it states something else in its place: the
source's words are kept), `not_found` (no source states it). Marker outcomes:

- `supported`: a source the sentence cites supports it;
- `repointed`: its markers point at sources that do not support it and another one does;
- `added`: it cites nothing and a source supports it;
- `unsupported`: no source supports it (flagged, never dropped; its verdict says why).

Mode `repair` changes markers only on evidence: repointed → the supporting source, added → a new
marker, contradicted → its markers removed; a sentence not found keeps its markers (shown as
unverified). `flag` reports the same on the text as written. Sentences too short to check, and
ones saying the pages do not cover the question, get no outcome; sentences beyond
`max_sentences` are not checked (`Attribution.unchecked` counts them).
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection

import numpy as np

from opencite.app.answer import Source
from opencite.app.citations.sentences import Sentence, split_sentences
from opencite.app.citations.facts import (NEGATION_MARKS, ClaimFacts, FactCheck, check, claim_facts, clause_facts,
                                          hard_names)
from opencite.app.citations.code_settings import setting_conflict
from opencite.app.citations.comparisons import order_conflict
from opencite.app.citations.contradiction import answer_pages, contradiction
from opencite.app.citations.joint import best_joint_pair, joint_support
from opencite.app.citations.repair import rewrite
from opencite.app.citations.support import EmbeddingLexicalScorer, Scorer, content_terms
from opencite.app.citations.places import misplaced
from opencite.app.citations.tables import cell_conflict, off_row, says_no
from opencite.app.citations.windows import Window, source_haystack, source_windows
from opencite.app.citations.verdicts import Attribution, Evidence, SentenceAttribution, tally
from opencite.settings import AttributionSettings

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


def attribute(answer: str, sources: list[Source], scorer: Scorer, settings: AttributionSettings,
              only: Collection[int] | None = None, memo: dict | None = None,
              pages: Collection[str] = ()) -> Attribution:
    """Every checkable sentence scored against the sources' windows and decided. `only` (indices
    among the checked sentences) decides just those and passes the others through as written,
    not found: the lookup's second pass, which keeps the first pass's result for the others, and
    `pages` the URLs those others are supported by (the answer's pages, see `contradiction.answer_pages`).
    `memo` keeps each decision by its exact inputs (the sentence as written, the sources, the
    answer's other pages), and each sentence's scores, for one scorer and settings: a decision
    taken while the LLM was still writing is not taken again."""
    t0 = time.perf_counter()
    by_n = {s.n: s for s in sources}
    sentences = [s for s in split_sentences(answer) if _checkable(s, settings)]
    unchecked = max(0, len(sentences) - settings.max_sentences)
    sentences = sentences[:settings.max_sentences]
    memo = {} if memo is None else memo
    given = tuple((s.n, s.snippet, s.title, s.heading_path) for s in sources)
    todo = list(range(len(sentences))) if only is None else sorted(set(only) & set(range(len(sentences))))
    keys = {i: (sentences[i].text, given, frozenset()) for i in todo}

    def decide() -> None:
        fresh = [i for i in todo if keys[i] not in memo]
        if not fresh:
            return
        windows = source_windows(sources, settings.window_sentences)
        haystacks = {src.n: source_haystack(src.snippet, src.title, src.heading_path, settings.window_sentences)
                     for src in sources}
        # A sentence is scored once per sources (kept under the key's third part None); deciding it
        # again against the answer's pages reuses the scores.
        unscored = [i for i in fresh if (sentences[i].text, given, None) not in memo]
        raw = scorer.score([sentences[i].claim for i in unscored], [w.parts for w in windows]) if windows \
            else np.zeros((len(unscored), 0))
        memo.update({(sentences[i].text, given, None): raw[j] for j, i in enumerate(unscored)})
        for i in fresh:
            memo[keys[i]] = _decide(sentences[i], memo[(sentences[i].text, given, None)], windows, haystacks,
                                    by_n, settings, keys[i][2])[1:]

    decide()
    if settings.check_numbers_and_names:
        # Sentences supported off the pages the rest of the answer stands on: decided again against them.
        others = answer_pages({i: memo[keys[i]] for i in todo}, by_n, pages)
        keys.update({i: (sentences[i].text, given, theirs) for i, theirs in others.items()})
        decide()
    decided = {}
    for i in todo:
        outcome, markers, *rest = memo[keys[i]]
        decided[i] = (sentences[i], outcome, list(markers), *rest)  # the kept list is never handed out
    results: list[tuple[Sentence, str, list[int], float, list[Evidence], str]] = [
        decided.get(i) or (s, "unsupported", list(s.markers), 0.0, [], "not_found") for i, s in enumerate(sentences)]
    text, spans = rewrite(answer, results, settings.mode)
    out = []
    for (sentence, outcome, markers, score, evidence, verdict), (start, end) in zip(results, spans):
        written = [n for n in sentence.markers if n in by_n]
        out.append(SentenceAttribution(start, end, text[start:end], outcome,
                                       markers if settings.mode == "repair" else written, written, score, evidence,
                                       sentence.start, sentence.end, verdict))
    counts, verdicts = tally(out)
    return Attribution(settings.mode, text, out, counts, time.perf_counter() - t0, verdicts, unchecked)


def _checkable(sentence: Sentence, settings: AttributionSettings) -> bool:
    claim = sentence.claim
    return len(content_terms(claim)) >= settings.min_claim_words and not ABSTAIN.search(claim)


def warm(sources: list[Source], scorer: Scorer, settings: AttributionSettings, written: str = "") -> None:
    """What attribution needs, done ahead while the LLM writes (the chain calls this when the
    sources are known and as each sentence ends): the sources' windows, and the scorer's work on
    their sentences and on the complete sentences `written` so far, if the scorer keeps any."""
    windows = source_windows(sources, settings.window_sentences)
    if hasattr(scorer, "warm"):
        done = [s for s in split_sentences(written)[:-1] if _checkable(s, settings)]
        scorer.warm(list(dict.fromkeys([s.claim for s in done] + [part for w in windows for part in w.parts])))


def _decide(sentence: Sentence, raw: np.ndarray, windows: list[Window], haystacks: dict[int, str],
            by_n: dict[int, Source], settings: AttributionSettings, answer_pages: frozenset = frozenset()):
    claim = sentence.claim
    checking = settings.check_numbers_and_names
    facts = claim_facts(claim) if checking else ClaimFacts()
    clauses = clause_facts(claim) if checking else []
    # A capitalised first word is a name when some source has it ("Mixtral supports ..."), else
    # most likely just the sentence's start ("Compared with ...").
    known = {x.text for x in facts.names if x.soft and any(_capitalised_inside(x.text, src) for src in by_n.values())}
    if known:
        facts = hard_names(facts, known)
        clauses = [hard_names(c, known) for c in clauses]
    negation = checking and settings.check_negation
    named = {x.text for x in facts.names if not x.soft}

    def checked(w: Window, full: bool) -> FactCheck:
        if not checking:
            return FactCheck()
        fc = check(facts, claim, w.text, w.numbers, haystacks[w.n], align=full, negation=full and negation,
                   negation_text=w.prose, says_no=facts.negated and w.table is not None and says_no(w.table))
        if w.table is not None and (cell := cell_conflict(claim, facts.figures, w.table)):
            fc.contradicted.append(cell)
        if full:
            for moved in misplaced(claim, facts.figures, w.text, w.numbers, fc.found):
                fc.found.remove(moved[0])
                fc.contradicted.append(moved)
        if setting := setting_conflict(claim, w.text):
            fc.contradicted.append(setting)
        return fc

    def effective(score: float, fc: FactCheck) -> float:
        return score - settings.absent_penalty * len(fc.absent)

    # Per source: its best window — the first (by support less penalties) whose facts hold, else
    # the best-scoring one; entries are (support less penalties, raw support, window, its check).
    per_source: dict[int, list[tuple[float, float, Window, FactCheck | None]]] = {}
    floor = settings.threshold - settings.contradiction_margin
    for j, w in enumerate(windows):
        # A row of a thing the claim does not name, in a table it names a row of, speaks not to it.
        score = 0.0 if checking and w.table is not None and off_row(claim, w.table) else float(raw[j])
        # Below the floor a window can neither support nor contradict the sentence (penalties only
        # lower support): its facts are checked only if it ends up its source's best, for the
        # evidence shown. Most windows are below it, and the checks were most of the time.
        fc = checked(w, False) if score >= floor else None
        per_source.setdefault(w.n, []).append((effective(score, fc) if fc is not None else score, score, w, fc))
    best: dict[int, tuple[float, bool, Window, FactCheck]] = {}
    # Facts of the sentence that a window like it (of any source) states differently: a window
    # that merely leaves such a fact out does not support the sentence either.
    disputed = {claimed for entries in per_source.values() for _, score, _, fc in entries if score >= floor
                for claimed, _ in fc.contradicted}
    for n, entries in per_source.items():
        entries.sort(key=lambda e: -e[0])
        chosen = None
        tried = 0
        for eff, score, w, fc in entries:
            if eff < settings.threshold or tried >= 3:
                break
            if fc.contradicted or disputed.intersection(fc.absent):
                continue
            tried += 1
            full = checked(w, True)
            if not full.contradicted and effective(score, full) >= settings.threshold:
                chosen = (score, True, w, full)
                break
        if chosen is None:
            eff, score, w, fc = max(entries, key=lambda e: e[1])
            chosen = (score, False, w, fc if fc is not None else checked(w, False))
        best[n] = chosen
    supports = {n for n, b in best.items() if b[1]}
    aligned: dict[int, FactCheck] = {}

    def full_check(n: int) -> FactCheck:
        """Source n's best window checked aligned with the claim (asked only of joint support)."""
        score, supported, w, fc = best[n]
        if supported or score < floor:
            return fc
        if n not in aligned:
            aligned[n] = checked(w, True)
        return aligned[n]

    cited = [n for n in sentence.markers if n in by_n]
    joint: list[int] = []
    if len(cited) > 1 and not supports & set(cited):
        joint = joint_support([n for n in cited if n in best], best, haystacks, clauses, settings.threshold,
                              full_check)
    if not joint and checking and (not supports or all(best[n][3].absent for n in supports)):
        # None supports it, or each leaves some of its facts out: two that state them all together.
        joint = best_joint_pair(best, haystacks, clauses, settings.threshold, full_check)
        if joint:
            supports = set()
    supports |= set(joint)
    conflict: tuple[int, Window, FactCheck, float] | None = None
    if not supports and checking:
        conflict = contradiction(per_source, settings, checked, named)
    elif answer_pages and not any(by_n[n].url in answer_pages for n in supports):
        # Supported only off the answer's pages: a figure or name one of them states differently
        # in its place contradicts it (negation alone, weaker evidence, does not).
        rival = contradiction({n: e for n, e in per_source.items() if by_n[n].url in answer_pages}, settings, checked,
                              named)
        if rival is not None and any(claimed not in NEGATION_MARKS for claimed, _ in rival[2].contradicted):
            supports, joint, conflict = set(), [], rival
    if supports and checking and len(facts.figures) > 1:
        # The order the sentence gives two of its figures, read against the supporting sources'.
        figures = [f for n in sorted(supports) for f in best[n][2].numbers]
        clash = order_conflict(claim, figures, " ".join(haystacks[n] for n in sorted(supports)))
        if clash is not None:
            n = max(supports, key=lambda n: best[n][0])
            supports, joint, conflict = set(), [], (n, best[n][2], FactCheck(contradicted=[clash]), best[n][0])
    # Of the sources that support it, one on the pages the rest of the answer stands on: a sibling
    # post repeating the fact may score higher, but the answer was written from these.
    top = max(best, key=lambda n: (n in supports, by_n[n].url in answer_pages, best[n][0]), default=None)
    if supports & set(cited):
        outcome, verdict = "supported", "supported"
        markers = [n for n in cited if n in supports] + [n for n in joint if n not in cited]
    elif supports:
        outcome, verdict = ("repointed" if cited else "added"), "supported"
        markers = joint or [top]
    elif conflict is not None:
        outcome, verdict, markers = "unsupported", "contradicted", []  # repair removes them: evidence against
    else:
        outcome, verdict, markers = "unsupported", "not_found", list(cited)  # kept, marked unverified
    evidence = []
    shown = cited + markers + ([top] if top is not None else []) + ([conflict[0]] if conflict else [])
    for n in dict.fromkeys(shown):
        score, _, w, fc = best[n]
        differs: list[dict] = []
        quote, start, end = w.text, w.start, w.end
        if conflict is not None and conflict[0] == n:
            _, cw, cfc, score = conflict
            quote, start, end = cw.text, cw.start, cw.end
            differs = [{"claim": a, "source": b} for a, b in cfc.contradicted]
        evidence.append(Evidence(n, round(score, 4), n in supports, quote, start, end, bool(differs), differs,
                                 [] if n in supports else list(fc.absent)))
    score = max((b[0] for b in best.values()), default=0.0)
    return sentence, outcome, markers, round(score, 4), evidence, verdict


def _capitalised_inside(word: str, src: Source) -> bool:
    """The source writes the word capitalised where no sentence starts (or in its title)."""
    return re.search(rf"\b{re.escape(word)}\b", src.title) is not None or re.search(
        rf"[^\s.!?:#>*|-][ \t]+{re.escape(word)}\b", src.snippet) is not None
