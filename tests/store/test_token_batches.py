"""Token-budget batching: every text once, vectors back in input order, batches within budget."""

import random

import numpy as np
import pytest

from opencite.store.embeddings import SPLIT_FROM_TOKENS, load_embeddings, token_budget_batches
from opencite.settings import EmbeddingSettings


def check(lengths: list[int], budget: int, max_count: int | None = None) -> list[list[int]]:
    batches = token_budget_batches(lengths, budget, max_count)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))  # every text exactly once
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)  # one stream, longest first
    for batch in batches:
        padded = len(batch) * max(lengths[i] for i in batch)
        assert padded <= budget or len(batch) == 1  # only an over-long text alone goes past it
        assert max_count is None or len(batch) <= max_count
    # Greedy: a batch was closed only because its next text would not fit, or would be mostly padding.
    for batch, following in zip(batches, batches[1:]):
        longest, following_length = lengths[batch[0]], lengths[following[0]]
        assert ((len(batch) + 1) * longest > budget or len(batch) == max_count
                or (longest >= SPLIT_FROM_TOKENS and 2 * following_length < longest))
        if longest >= SPLIT_FROM_TOKENS:  # at most half of such a batch is padding
            assert 2 * min(lengths[i] for i in batch) >= longest
    return batches


def test_batches_cover_every_text_once_within_the_budget():
    rng = random.Random(0)
    for _ in range(300):
        lengths = [rng.choice([rng.randint(1, 20), rng.randint(2, 300)]) for _ in range(rng.randint(0, 120))]
        check(lengths, rng.choice([1, 16, 256, 1000, 4096]), rng.choice([None, 1, 7, 512]))


def test_short_texts_share_big_batches_and_an_over_long_text_goes_alone():
    lengths = [600, 10, 10, 10, 10, 100, 100, 10]
    batches = check(lengths, 256)
    assert batches[0] == [0]  # 600 > 256: alone
    assert batches[1] == [5, 6]  # 2 x 100 fits, 3 x 100 does not
    assert batches[2] == [1, 2, 3, 4, 7]  # five short ones in one batch
    assert token_budget_batches([], 256) == []


def test_a_long_passage_does_not_pad_the_short_sentences_beside_it():
    # After the last token: the last sentence and a found passage's sentences, one of them long.
    assert check([30, 158, 20, 20], 4096) == [[1], [0, 2, 3]]  # 158 + 3 x 30 tokens, not 4 x 158
    assert check([40, 12, 9], 4096) == [[0, 1, 2]]  # all short: one pass is cheaper than two


@pytest.fixture(scope="module")
def minilm(minilm_path):
    return load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="float32", batch_tokens=200))


TEXTS = ["Short one.", "A slightly longer sentence about retrieval and chunking.",
         "Chroma stores embeddings and answers nearest-neighbour queries. " * 6, "", "Tiny",
         "Mixtral is a sparse mixture-of-experts model with eight experts per layer. " * 2,
         "Open-source LLMs can act as agents that call tools in a ReAct loop."]


def test_the_embedder_batches_by_tokens_and_puts_vectors_back_in_order(minilm, monkeypatch):
    seen: list[list[str]] = []
    original = type(minilm)._encode_batch
    monkeypatch.setattr(type(minilm), "_encode_batch",
                        lambda self, texts, kwargs, padded: seen.append(list(texts)) or original(self, texts, kwargs, padded))
    together = np.array(minilm.embed_documents(TEXTS))
    # Within the 200-token budget: the 6x sentence (~70 tokens) can't share with two of its kind.
    assert sorted(t for batch in seen for t in batch) == sorted(TEXTS)
    for batch in seen:
        assert len(batch) * max(minilm.token_lengths(batch)) <= 200 or len(batch) == 1
    assert len(seen) > 1
    # Each vector is its own text's: the same as embedding the text alone. Masked attention makes
    # padding irrelevant up to float32 rounding, far below a cosine of 1e-5.
    alone = np.array([minilm.embed_documents([t])[0] for t in TEXTS])
    assert ((together * alone).sum(axis=1) > 0.99999).all()
