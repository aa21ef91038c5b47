"""Combining and re-ordering ranked lists: reciprocal rank fusion, weighted (normalised)
score fusion, MMR diversification and an optional cross-encoder reranker.

Rankings are lists of (id, score) pairs, best first. Everything here is pure except the
reranker, which loads a sentence-transformers `CrossEncoder` from any local path or hub id.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from opencite.app.cross_encoder import load_cross_encoder

Ranking = Sequence[tuple[str, float]]


def rrf(rankings: Sequence[Ranking], k: int = 60, weights: Sequence[float] | None = None) -> list[tuple[str, float]]:
    """Reciprocal rank fusion (Cormack et al. 2009): score(d) = sum_i w_i / (k + rank_i(d)),
    rank starting at 1. Ties keep first-seen order."""
    weights = list(weights) if weights is not None else [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    fused: dict[str, float] = {}
    for ranking, w in zip(rankings, weights):
        for rank, (doc_id, _score) in enumerate(ranking, start=1):
            fused[doc_id] = fused.get(doc_id, 0.0) + w / (k + rank)
    return sorted(fused.items(), key=lambda kv: -kv[1])


def normalise(ranking: Ranking, method: str = "minmax") -> list[tuple[str, float]]:
    """Scores mapped onto a comparable scale: "minmax" to [0, 1] (all-equal scores -> 1),
    "zscore" to mean 0 / std 1 over the list."""
    if not ranking:
        return []
    scores = np.array([s for _, s in ranking], dtype=np.float64)
    if method == "minmax":
        lo, hi = scores.min(), scores.max()
        norm = (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)
    elif method == "zscore":
        sd = scores.std()
        norm = (scores - scores.mean()) / sd if sd > 0 else np.zeros_like(scores)
    else:
        raise ValueError(f"normalisation {method!r} is unknown; use 'minmax' or 'zscore'")
    return [(doc_id, float(v)) for (doc_id, _), v in zip(ranking, norm)]


def weighted_fusion(
    rankings: Sequence[Ranking], weights: Sequence[float], method: str = "minmax"
) -> list[tuple[str, float]]:
    """Convex combination of normalised scores: sum_i w_i * norm_i(d). A document missing
    from a list gets that list's lowest normalised score (it ranked below everything kept)."""
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings")
    normed = [dict(normalise(r, method)) for r in rankings]
    floors = [min(n.values()) if n else 0.0 for n in normed]
    ids: dict[str, None] = {}
    for n in normed:
        ids.update(dict.fromkeys(n))
    fused = {
        doc_id: sum(w * n.get(doc_id, floor) for n, w, floor in zip(normed, weights, floors))
        for doc_id in ids
    }
    return sorted(fused.items(), key=lambda kv: -kv[1])


def fuse(
    rankings: Sequence[Ranking], method: str, weights: Sequence[float], rrf_k: int = 60
) -> list[tuple[str, float]]:
    """One entry point for the configured fusion: "rrf", "minmax" or "zscore"."""
    if method == "rrf":
        return rrf(rankings, k=rrf_k, weights=weights)
    return weighted_fusion(rankings, weights, method)


def mmr(
    query_vector: Sequence[float], vectors: Sequence[Sequence[float]], k: int, lambda_mult: float = 0.5
) -> list[int]:
    """Maximal marginal relevance: indices into `vectors`, picked for relevance to the query
    traded against similarity to those already picked (lambda 1 = pure relevance)."""
    # LangChain's implementation (cosine similarity, numpy) is the one its vector stores use.
    from langchain_core.vectorstores.utils import maximal_marginal_relevance

    if len(vectors) == 0 or k <= 0:
        return []
    return maximal_marginal_relevance(
        np.asarray(query_vector, dtype=np.float32), list(vectors), lambda_mult=lambda_mult, k=min(k, len(vectors))
    )


def rerank(model: str, query: str, texts: Sequence[str], device: str = "cpu", batch_size: int = 32) -> list[tuple[int, float]]:
    """(index into texts, cross-encoder score) best first."""
    if not texts:
        return []
    encoder = load_cross_encoder(model, device, setting="OPENCITE_RETRIEVAL__RERANKER_MODEL")
    scores = encoder.predict([(query, t) for t in texts], batch_size=batch_size, show_progress_bar=False)
    scores = np.asarray(scores, dtype=np.float64).reshape(len(texts), -1)[:, -1]
    order = np.argsort(-scores, kind="stable")
    return [(int(i), float(scores[i])) for i in order]
