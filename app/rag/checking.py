"""An answer's citations checked: every sentence attributed to the prompt's sources, then the
ones they do not support looked up in the knowledge base (`lookup`) and attributed again.

The same steps run while the LLM writes, on the sentences complete so far, and once more on the
whole answer after the last token. `Groundwork` keeps what each run found, by its exact inputs
(a decision by sentence and sources, a claim's candidates, a chunk's text), so the last run
redoes only what the last sentence changes. Results never depend on what was kept: only the
time after the last token does.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from langchain_core.documents import Document

from opencite.app.answer import Source
from opencite.app.citations import attribution
from opencite.app.citations.support import EmbeddingLexicalScorer, Scorer
from opencite.app.citations.verdicts import Attribution
from opencite.app.rag import lookup
from opencite.settings import Settings
from opencite.store.index import OpenIndex

log = logging.getLogger(__name__)


@dataclass
class Groundwork:
    """One answer's checking work, kept between its runs."""

    decisions: dict = field(default_factory=dict)  # attribution.attribute's memo
    ranked: dict[str, lookup.Ranked] = field(default_factory=dict)  # KB candidates by claim
    documents: dict[str, Document] = field(default_factory=dict)  # chunks read, by id
    checked: str = ""  # the text last checked ahead (a token may end no sentence: "2.5", a list item)


@dataclass
class Checked:
    attribution: Attribution
    sources: list[Source]  # the prompt's, then the found-after ones the answer now cites
    lookup_s: float | None  # None: nothing was looked up


def check_answer(text: str, sources: list[Source], scorer: Scorer, settings: Settings, index: OpenIndex,
                 groundwork: Groundwork) -> Checked:
    cfg = settings.attribution
    result = attribution.attribute(text, sources, scorer, cfg, memo=groundwork.decisions)
    sources = list(sources)
    redo = lookup.unsupported(result)
    limit = settings.retrieval.lookup_passages
    if not redo or limit < 1:
        return Checked(result, sources, None)
    t = time.perf_counter()
    try:
        # The embedding scorer keeps the vectors of the sentences it scored: the lookup's
        # queries are those sentences, so they are not embedded twice.
        kept = scorer.vectors if isinstance(scorer, EmbeddingLexicalScorer) else None
        extra = lookup.find(index, settings, [lookup.claim_of(result.sentences[i]) for i in redo], sources, limit,
                            kept, groundwork.ranked, groundwork.documents)
        if extra:
            # The pages the first pass found the other sentences supported by (evidence, not markers:
            # in flag mode a sentence keeps the markers it was written with).
            by_n = {s.n: s for s in sources}
            pages = {by_n[e.n].url for i, s in enumerate(result.sentences) if i not in redo
                     for e in s.evidence if e.supports and e.n in by_n}
            again = attribution.attribute(text, sources + extra, scorer, cfg, only=redo, memo=groundwork.decisions,
                                          pages=pages)
            result = lookup.merge(text, result, again, redo)
            sources += lookup.referenced(extra, result)
    except Exception:  # the lookup adds support; it never costs the answer
        log.exception("looking up support beyond the prompt failed")
    return Checked(result, sources, time.perf_counter() - t)
