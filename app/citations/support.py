"""Support scorers: how well a passage supports a claim, 0..1, for every (claim, passage) pair.

A scorer is any object with `score(claims, passages) -> array[len(claims), len(passages)]`; a
passage is a list of consecutive source sentences (a window), so a scorer can reuse per-sentence
work across the windows that share a sentence.
- `EmbeddingLexicalScorer` (default): cosine similarity from the configured embedder (the one
  already loaded for retrieval) mixed with lexical evidence — the share of the claim's content
  words (stemmed) found in the passage. CPU, nothing new loaded.
- `CrossEncoderScorer`: a sentence-transformers `CrossEncoder` (local folder or hub id): an NLI
  model's entailment probability, or a one-logit claim-check/relevance model through a sigmoid.
- `LLMJudgeScorer`: the served LLM picks the passage that supports the claim, if any.
The numbers-and-names check is not a scorer's business: `attribution` applies it to every one.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from functools import lru_cache
from typing import Protocol, Sequence

import numpy as np

_WORD = re.compile(r"\w+")
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[^\W\d_])")  # "1MB" -> "1 MB", as "1 MB" is written


Passage = Sequence[str]  # consecutive source sentences


class Scorer(Protocol):
    def score(self, claims: Sequence[str], passages: Sequence[Passage]) -> np.ndarray: ...


def joined(passages: Sequence[Passage]) -> list[str]:
    return [" ".join(p) for p in passages]


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def content_terms(text: str) -> set[str]:
    """Stemmed, lower-cased words that are not stopwords."""
    stop = stopwords()
    words = [w for w in _WORD.findall(_DIGIT_LETTER.sub(" ", text.lower())) if w not in stop]
    return set(_stemmer().stemWords(words))


def lexical_support(claims: Sequence[str], passages: Sequence[str]) -> np.ndarray:
    """Share of each claim's content terms present in each passage."""
    return _overlap([content_terms(c) for c in claims], [content_terms(p) for p in passages])


class EmbeddingLexicalScorer:
    """Cosine from the index's embedder, mixed with lexical support.

    Texts are embedded once and kept (an LRU keyed by the text, so a vector can never be stale);
    `warm` embeds a prompt's sources, and each answer sentence once it is written, while the LLM
    is still writing, which leaves about one sentence to embed after it."""

    def __init__(self, embeddings, embedding_weight: float = 0.5, cache_size: int = 20_000) -> None:
        self.embeddings = embeddings  # a LangChain Embeddings (the index's)
        self.weight = embedding_weight
        self.cache_size = cache_size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def warm(self, texts: Sequence[str]) -> None:
        """Embeds and keeps these texts (source sentences, and the answer's sentences as they
        are written), so that `score` finds them ready."""
        self.vectors(texts)

    def score(self, claims: Sequence[str], passages: Sequence[Passage]) -> np.ndarray:
        if not claims or not passages:
            return np.zeros((len(claims), len(passages)))
        # A window's vector is its sentences' mean direction (embedding the windows too would
        # multiply the cost for the same ranking).
        units = list(dict.fromkeys(s for p in passages for s in p))
        vectors = self.vectors(list(claims) + units)
        claim_vecs, unit_vecs = vectors[: len(claims)], vectors[len(claims):]
        row = {u: i for i, u in enumerate(units)}
        windows = np.stack([unit_vecs[[row[s] for s in p]].sum(axis=0) for p in passages])
        windows /= np.maximum(np.linalg.norm(windows, axis=1, keepdims=True), 1e-12)
        cosine = np.clip(claim_vecs @ windows.T, 0.0, 1.0)
        claim_terms = [content_terms(c) for c in claims]
        window_terms = [_window_terms(tuple(p)) for p in passages]
        return self.weight * cosine + (1 - self.weight) * _overlap(claim_terms, window_terms)

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of the texts: the kept ones, the rest embedded in one encode call."""
        with self._lock:
            todo = [t for t in dict.fromkeys(texts) if t not in self._vectors]
        fresh = _normalised(self.embeddings.embed_documents(todo)) if todo else []
        with self._lock:
            self._vectors.update(zip(todo, fresh))
            for t in texts:
                self._vectors.move_to_end(t)
            out = np.stack([self._vectors[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)
            while len(self._vectors) > max(self.cache_size, len(texts)):
                self._vectors.popitem(last=False)
        return out


def _normalised(vectors) -> np.ndarray:
    out = np.asarray(vectors, dtype=np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


@lru_cache(maxsize=20_000)
def _terms(sentence: str) -> frozenset[str]:
    return frozenset(content_terms(sentence))


@lru_cache(maxsize=20_000)
def _window_terms(parts: tuple[str, ...]) -> frozenset[str]:
    return frozenset().union(*(_terms(s) for s in parts))


def _overlap(claim_terms: Sequence[set[str]], passage_terms: Sequence[frozenset[str] | set[str]]) -> np.ndarray:
    out = np.zeros((len(claim_terms), len(passage_terms)))
    for i, ct in enumerate(claim_terms):
        if ct:
            for j, pt in enumerate(passage_terms):
                out[i, j] = len(ct & pt) / len(ct)
    return out


class CrossEncoderScorer:
    def __init__(self, model: str, device: str = "cpu") -> None:
        from opencite.app.cross_encoder import load_cross_encoder

        self.encoder = load_cross_encoder(model, device, setting="OPENCITE_ATTRIBUTION__CROSS_ENCODER_MODEL")
        labels = {v.lower(): int(k) for k, v in (self.encoder.model.config.id2label or {}).items()}
        # NLI heads name it "entailment" or "ENTAILMENT"; some "entails"/"entailed".
        self.entailment = next((i for label, i in labels.items() if label.startswith("entail")), None)

    def score(self, claims: Sequence[str], passages: Sequence[Passage]) -> np.ndarray:
        if not claims or not passages:
            return np.zeros((len(claims), len(passages)))
        pairs = [(p, c) for c in claims for p in joined(passages)]  # NLI order: premise, hypothesis
        logits = np.asarray(self.encoder.predict(pairs, activation_fn=_identity, show_progress_bar=False),
                            dtype=np.float64).reshape(len(pairs), -1)
        if logits.shape[1] > 1:
            probs = np.exp(logits - logits.max(axis=1, keepdims=True))
            probs /= probs.sum(axis=1, keepdims=True)
            column = self.entailment if self.entailment is not None else logits.shape[1] - 1
            scores = probs[:, column]
        else:
            scores = 1 / (1 + np.exp(-logits[:, 0]))
        return scores.reshape(len(claims), len(passages))


def _identity(x):
    return x


JUDGE_PROMPT = """\
Claim: {claim}

Passages:
{passages}

Which passage states the claim (every figure and name in it included)? Reply with the passage \
number only, or 0 if none does."""


# The reply as the prompt asks for it ("2"), or lightly dressed ("Passage 2.", "#2"); anything
# else ("None of the 4 passages", "-1", prose) is no pick: an unreadable verdict must not
# cite a passage.
_JUDGE_REPLY = re.compile(r"\s*(?:passage\s*)?#?(\d+)\s*[.):]?\s*", re.IGNORECASE)


def judge_pick(reply: str) -> int:
    """The passage number a judge's reply names (1-based), 0 when it names none."""
    found = _JUDGE_REPLY.fullmatch(reply)
    return int(found.group(1)) if found else 0


class LLMJudgeScorer:
    """Asks the served LLM once per claim, over the claim's best lexical candidates."""

    def __init__(self, llm, candidates: int = 4) -> None:
        self.llm = llm  # a LangChain chat model
        self.candidates = candidates

    def score(self, claims: Sequence[str], passages: Sequence[Passage]) -> np.ndarray:
        passages = joined(passages)
        lexical = lexical_support(claims, passages)
        out = np.zeros_like(lexical)
        for i, claim in enumerate(claims):
            best = list(np.argsort(-lexical[i], kind="stable")[: self.candidates])
            listing = "\n".join(f"{n}. {passages[j]}" for n, j in enumerate(best, 1))
            reply = self.llm.invoke([{"role": "user", "content": JUDGE_PROMPT.format(claim=claim, passages=listing)}])
            pick = judge_pick(str(reply.content))
            if 1 <= pick <= len(best):
                out[i, best[pick - 1]] = 1.0
        return out
