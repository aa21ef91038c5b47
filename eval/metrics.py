"""Metrics: page-level retrieval (by pytrec_eval), citations and latency.

Retrieval is scored per page, not per chunk: a page's score in the run is its best chunk's,
and the relevance judgements (qrels) are the question's `sources`. Ranking measures come from
pytrec_eval (trec_eval's own code) so the figures match published IR numbers.
"""

from __future__ import annotations

import re
from statistics import fmean
from typing import Iterable

import numpy as np
import pytrec_eval

# Phrases by which an answer says the pages do not cover the question (the judge decides too;
# this needs no LLM, so it is always reported). Attribution skips such sentences with the same list.
from opencite.app.citations.attribution import ABSTAIN  # noqa: F401
from opencite.app.citations.verdicts import OUTCOMES, VERDICTS

Run = dict[str, dict[str, float]]  # query id -> doc id -> score (higher is better)
Qrels = dict[str, dict[str, int]]  # query id -> doc id -> relevance grade

# A citation marker as the chain writes it: [1] or [1, 3].
MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")



def page_run(hits: Iterable[tuple[str, float]]) -> dict[str, float]:
    """(page url, chunk score) pairs -> {page url: best chunk score}."""
    pages: dict[str, float] = {}
    for url, score in hits:
        if url not in pages or score > pages[url]:
            pages[url] = float(score)
    return pages


def top(run: dict[str, float], n: int) -> dict[str, float]:
    return dict(sorted(run.items(), key=lambda kv: -kv[1])[:n])


def retrieval_metrics(qrels: Qrels, run: Run, k: int) -> dict[str, dict[str, float]]:
    """Per query: hit@k, recall@k, mrr@10, ndcg@10. Only queries with at least one relevant
    page are scored; a query missing from the run scores 0 everywhere."""
    qrels = {q: rel for q, rel in qrels.items() if any(g > 0 for g in rel.values())}
    if not qrels:
        return {}
    measures = {f"success.{k}", f"recall.{k}", "ndcg_cut.10"}
    full = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(
        {q: run.get(q) or {} for q in qrels})
    # MRR@10: reciprocal rank over the first ten results only.
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(
        {q: top(run.get(q) or {}, 10) for q in qrels})
    out = {}
    for q in qrels:
        m, r = full.get(q, {}), rr.get(q, {})
        out[q] = {
            f"hit@{k}": m.get(f"success_{k}", 0.0),
            f"recall@{k}": m.get(f"recall_{k}", 0.0),
            "mrr@10": r.get("recip_rank", 0.0),
            "ndcg@10": m.get("ndcg_cut_10", 0.0),
        }
    return out


def mean_metrics(per_query: dict[str, dict[str, float]]) -> dict[str, float]:
    if not per_query:
        return {}
    names = next(iter(per_query.values())).keys()
    return {n: fmean(m[n] for m in per_query.values()) for n in names}


def citation_markers(answer: str) -> list[int]:
    """Every number cited in the answer, in order, repeats kept."""
    return [int(n) for group in MARKER.findall(answer) for n in group.split(",")]


def citation_stats(answer: str, dropped: int, source_urls: dict[int, str],
                   relevant: set[str] | None) -> dict:
    """One answer's citations.

    The chain removes markers that point at no retrieved source and counts them in
    `dropped`, so citations = markers left + dropped. `relevant` None: relevance unknown."""
    markers = citation_markers(answer)
    valid = [n for n in markers if n in source_urls]
    total = len(markers) + dropped
    stats = {
        "citations": total,
        "has_citation": total > 0,
        "to_retrieved": len(valid),
        "to_relevant": None,
    }
    if relevant is not None:
        stats["to_relevant"] = sum(1 for n in valid if source_urls[n] in relevant)
    return stats


def says_not_covered(answer: str) -> bool:
    return bool(ABSTAIN.search(answer or ""))


def share(values: Iterable[bool]) -> float | None:
    values = list(values)
    return sum(bool(v) for v in values) / len(values) if values else None


def ratio(num: Iterable[int], den: Iterable[int]) -> float | None:
    """Micro-averaged ratio: sum(num) / sum(den), None when nothing to divide."""
    n, d = sum(num), sum(den)
    return n / d if d else None


def percentiles(values: Iterable[float | None], qs=(50, 95)) -> dict[str, float | None]:
    xs = [v for v in values if v is not None]
    if not xs:
        return {f"p{q}": None for q in qs}
    return {f"p{q}": float(np.percentile(xs, q)) for q in qs}


VERDICT_KEYS = {"supported": "verified", "contradicted": "contradicted", "not_found": "not_found"}


def sentence_records(attribution, source_urls: dict[int, str]) -> list[dict]:
    """An answer's checked sentences as eval records: text, outcome, verdict, cited URLs, score,
    quote, and for a contradicted sentence the words that differ (`differs`: [{claim, source}])."""
    if attribution is None:
        return []
    out = []
    for s in attribution.sentences:
        quotes = [e.quote for e in s.evidence if e.supports and e.n in s.markers]
        conflict = next((e for e in s.evidence if getattr(e, "contradicts", False)), None)
        out.append({"text": s.text, "outcome": s.outcome, "verdict": getattr(s, "verdict", None),
                    "cited": [source_urls[n] for n in s.markers],
                    "original_cited": [source_urls[n] for n in s.original_markers],
                    "score": s.score, "quote": quotes[0] if quotes else None,
                    "differs": conflict.differs if conflict else [],
                    "contradicted_by": source_urls.get(conflict.n) if conflict else None})
    return out


def attribution_stats(sentences: list[dict], relevant: set[str] | None) -> dict:
    """Page-level citation precision (citations pointing at a gold page) and recall (checked
    sentences citing at least one gold page) of one answer, its outcome and verdict counts."""
    counts = {o: sum(1 for s in sentences if s["outcome"] == o) for o in OUTCOMES}
    # verdict counts; `verified` is the supported verdict (`supported` is the marker outcome)
    verdicts = {VERDICT_KEYS[v]: sum(1 for s in sentences if s.get("verdict") == v) for v in VERDICTS}
    stats = {"sentences": len(sentences), "citations": sum(len(s["cited"]) for s in sentences),
             "to_gold": None, "sentences_citing_gold": None, **counts, **verdicts}
    if relevant:
        stats["to_gold"] = sum(1 for s in sentences for url in s["cited"] if url in relevant)
        stats["sentences_citing_gold"] = sum(1 for s in sentences if set(s["cited"]) & relevant)
    return stats


def summarise_attribution(stats: list[dict]) -> dict:
    """Micro-averaged precision / recall over answers with known gold pages, outcome and verdict
    totals, and the share of answers with a sentence flagged (contradicted or not found)."""
    known = [s for s in stats if s.get("to_gold") is not None]
    out = {"answers": len(stats),
           "citation_precision": ratio((s["to_gold"] for s in known), (s["citations"] for s in known)),
           "citation_recall": ratio((s["sentences_citing_gold"] for s in known), (s["sentences"] for s in known))}
    for o in OUTCOMES:
        out[o] = sum(s.get(o, 0) for s in stats)
    for v in VERDICT_KEYS.values():
        out[v] = sum(s.get(v, 0) for s in stats)
    out["answers_flagged"] = share(s.get("contradicted", 0) + s.get("not_found", 0) > 0 for s in stats)
    return out
