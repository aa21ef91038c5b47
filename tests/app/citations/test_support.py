"""The default scorer keeps source sentences' vectors: warmed ahead, only the claims are embedded."""

import pytest

from opencite.app.citations.support import EmbeddingLexicalScorer


class CountingEmbeddings:
    """A spy around the real MiniLM embedder: records what each call embeds."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def embed_documents(self, texts):
        self.calls.append(list(texts))
        return self.inner.embed_documents(texts)


@pytest.fixture(scope="module")
def minilm(minilm_path):
    from opencite.store.embeddings import load_embeddings
    from opencite.settings import EmbeddingSettings

    # float32: a sentence's vector must not depend on its batch-mates (bf16 autocast, which `auto`
    # picks on AVX512-BF16/AMX CPUs, moves it by ~1e-4 with the batch's padding).
    return load_embeddings(EmbeddingSettings(model=minilm_path, device="cpu", precision="float32"))


PASSAGES = [["Paris is the capital of France."], ["Paris is the capital of France.", "It has 2 million people."],
            ["Rome is the capital of Italy."]]
CLAIMS = ["The capital of France is Paris.", "Italy's capital is Rome."]


def test_warmed_sentences_are_not_embedded_again_and_score_the_same(minilm):
    cold = EmbeddingLexicalScorer(minilm).score(CLAIMS, PASSAGES)
    spy = CountingEmbeddings(minilm)
    scorer = EmbeddingLexicalScorer(spy)
    scorer.warm(["Paris is the capital of France.", "It has 2 million people.", "Rome is the capital of Italy."])
    warmed = scorer.score(CLAIMS, PASSAGES)
    assert spy.calls[-1] == CLAIMS  # one call, the claims only
    assert warmed == pytest.approx(cold, abs=1e-5)
    assert warmed[0, 0] > warmed[0, 2] and warmed[1, 2] > warmed[1, 0]


def test_the_cache_is_bounded_and_re_embeds_what_it_dropped(minilm):
    spy = CountingEmbeddings(minilm)
    scorer = EmbeddingLexicalScorer(spy, cache_size=1)
    scorer.warm(["Paris is the capital of France."])
    scorer.warm(["Rome is the capital of Italy."])  # Paris dropped
    scorer.score(CLAIMS[:1], [["Paris is the capital of France."]])
    assert spy.calls[-1] == [CLAIMS[0], "Paris is the capital of France."]
    calls = len(spy.calls)
    scorer.score(CLAIMS[:1], [["Paris is the capital of France."]])
    assert len(spy.calls) == calls  # both kept now


def test_attribution_warms_the_sources_and_the_sentences_written_so_far(minilm):
    from opencite.app.answer import Source
    from opencite.app.citations.attribution import attribute, warm
    from opencite.settings import AttributionSettings

    sources = [Source(1, "Paris", "https://blog.example/paris", "Paris is the capital of France.", 0.9)]
    spy = CountingEmbeddings(minilm)
    scorer, cfg = EmbeddingLexicalScorer(spy), AttributionSettings()
    warm(sources, scorer, cfg, "The capital of France is Paris [1]. It is also its larg")
    assert spy.calls == [["The capital of France is Paris.", "Paris is the capital of France."]]
    a = attribute("The capital of France is Paris [1]. It is also its largest city.", sources, scorer, cfg)
    assert spy.calls[-1] == ["It is also its largest city."]  # only the last sentence was left
    assert a.sentences[0].outcome == "supported"
