"""Fusion math on hand-made rankings, MMR, the cross-encoder reranker (a tiny one built
offline) and the retrieval modes through `retrieve()` on a real MiniLM + Chroma index."""

from __future__ import annotations

import time

import pytest

from opencite.app.rag import fusion
from opencite.app.rag.retrieval import retrieve
from opencite.store.index import open_index
from tests.app.conftest import PAGES, add_pages


def test_rrf_on_hand_made_rankings():
    a = [("x", 9.0), ("y", 5.0), ("z", 1.0)]
    b = [("z", 0.9), ("x", 0.8)]
    fused = dict(fusion.rrf([a, b], k=60))
    assert fused["x"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["y"] == pytest.approx(1 / 62)
    assert fused["z"] == pytest.approx(1 / 63 + 1 / 61)
    assert [d for d, _ in fusion.rrf([a, b], k=60)] == ["x", "z", "y"]
    # Weights scale each list's contribution; raw scores never matter.
    weighted = dict(fusion.rrf([a, b], k=1, weights=[1.0, 3.0]))
    assert weighted["z"] == pytest.approx(1 / 4 + 3 / 2)
    assert [d for d, _ in fusion.rrf([a, b], k=1, weights=[1.0, 3.0])][0] == "z"
    with pytest.raises(ValueError):
        fusion.rrf([a, b], weights=[1.0])


def test_normalise_and_weighted_fusion():
    assert fusion.normalise([("a", 10.0), ("b", 5.0), ("c", 0.0)]) == [("a", 1.0), ("b", 0.5), ("c", 0.0)]
    assert fusion.normalise([("a", 3.0), ("b", 3.0)]) == [("a", 1.0), ("b", 1.0)]
    z = dict(fusion.normalise([("a", 1.0), ("b", 3.0)], "zscore"))
    assert z == {"a": pytest.approx(-1.0), "b": pytest.approx(1.0)}
    dense = [("a", 0.9), ("b", 0.7), ("c", 0.5)]  # minmax: 1, .5, 0
    bm25 = [("c", 30.0), ("d", 20.0), ("a", 10.0)]  # minmax: 1, .5, 0
    fused = dict(fusion.weighted_fusion([dense, bm25], [0.4, 0.6]))
    assert fused["a"] == pytest.approx(0.4 * 1 + 0.6 * 0)
    assert fused["b"] == pytest.approx(0.4 * 0.5 + 0.6 * 0)  # missing from bm25 -> its floor (0)
    assert fused["c"] == pytest.approx(0.4 * 0 + 0.6 * 1)
    assert fused["d"] == pytest.approx(0.4 * 0 + 0.6 * 0.5)
    assert [d for d, _ in fusion.fuse([dense, bm25], "minmax", [0.4, 0.6])] == ["c", "a", "d", "b"]
    with pytest.raises(ValueError, match="unknown"):
        fusion.normalise(dense, "softmax")


def test_mmr_trades_relevance_for_diversity():
    query = [1.0, 0.3]
    vectors = [[1.0, 0.1], [1.0, 0.12], [0.3, 1.0]]  # 0 and 1 are near-duplicates
    assert fusion.mmr(query, vectors, 2, lambda_mult=1.0) == [1, 0]  # relevance only
    assert fusion.mmr(query, vectors, 2, lambda_mult=0.5) == [1, 2]  # the duplicate gives way
    assert fusion.mmr(query, vectors, 10) and len(fusion.mmr(query, vectors, 10)) == 3
    assert fusion.mmr(query, [], 3) == []


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    """A tiny random-weight BERT cross-encoder with a real WordPiece tokenizer, saved offline."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    path = tmp_path_factory.mktemp("tiny-cross-encoder")
    words = sorted({w.strip(".,").lower() for _, _, text in PAGES for w in text.split()} | {"capital", "of", "what"})
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def test_reranker_orders_by_cross_encoder_score(tiny_cross_encoder):
    from sentence_transformers import CrossEncoder

    texts = [text for _, _, text in PAGES]
    order = fusion.rerank(tiny_cross_encoder, "capital of France", texts)
    expected = CrossEncoder(tiny_cross_encoder, device="cpu").predict([("capital of France", t) for t in texts])
    assert sorted(i for i, _ in order) == list(range(len(texts)))
    assert [s for _, s in order] == sorted(expected.tolist(), reverse=True)
    assert [s for _, s in order] == pytest.approx(sorted((float(x) for x in expected), reverse=True))
    assert fusion.rerank(tiny_cross_encoder, "q", []) == []


def test_a_missing_reranker_names_the_setting(tmp_path):
    with pytest.raises(RuntimeError, match="OPENCITE_RETRIEVAL__RERANKER_MODEL"):
        fusion.rerank(str(tmp_path / "no-such-model"), "q", ["a text"])


MORE = [("https://blog.example/paris-2", "Paris again",
         "Paris is the capital of France. Paris is the capital of France and its largest city."),
        ("https://blog.example/zx81", "Retro computing", "The ZX81 had 1KB of RAM and a membrane keyboard.")]


@pytest.fixture
def index(settings):
    add_pages(settings, PAGES + MORE)
    with open_index(settings) as idx:
        yield idx


def test_every_mode_through_retrieve(index, settings):
    for mode in ("dense", "bm25", "hybrid"):
        hits = retrieve(index, "What is the capital of France?", 3, settings, mode=mode)
        sources = [d.metadata["source"] for d, _ in hits]
        assert len(hits) == 3 and "paris" in sources[0], (mode, sources)
        assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
        assert all(d.id and d.page_content for d, _ in hits)
    # BM25 finds an exact rare token the small embedder has no sense of.
    assert retrieve(index, "ZX81", 1, settings, mode="bm25")[0][0].metadata["source"].endswith("zx81")
    assert retrieve(index, "ZX81", 1, settings, mode="hybrid")[0][0].metadata["source"].endswith("zx81")
    settings.retrieval.mode = "bm25"  # the settings' mode applies when the request names none
    assert retrieve(index, "membrane keyboard", 1, settings)[0][0].metadata["source"].endswith("zx81")
    with pytest.raises(ValueError, match="unknown"):
        retrieve(index, "x", 1, settings, mode="sparse")


def test_bm25_index_is_built_from_chroma_and_follows_it(index, settings):
    from opencite.store.bm25 import BM25Index, bm25_path
    from opencite.store.bm25_keep import MAX_CHECK_INTERVAL

    assert not bm25_path(settings).exists()
    retrieve(index, "capital", 2, settings, mode="bm25")
    assert len(BM25Index(bm25_path(settings))) == len(PAGES + MORE)
    add_pages(settings, [("https://blog.example/oslo", "Oslo", "Oslo is the capital of Norway; fjords.")])
    # Readers check for writes made elsewhere at most MAX_CHECK_INTERVAL apart.
    time.sleep(MAX_CHECK_INTERVAL)
    assert retrieve(index, "fjords", 1, settings, mode="bm25")[0][0].metadata["source"].endswith("oslo")


def test_mmr_drops_the_near_duplicate(index, settings):
    plain = retrieve(index, "capital of France", 2, settings, mode="dense")
    assert {d.metadata["source"] for d, _ in plain} == {"https://blog.example/paris", "https://blog.example/paris-2"}
    settings.retrieval.mmr, settings.retrieval.mmr_lambda = True, 0.3
    diverse = retrieve(index, "capital of France", 2, settings, mode="hybrid")
    assert len({d.metadata["source"] for d, _ in diverse} & {"https://blog.example/paris", "https://blog.example/paris-2"}) == 1


def test_reranker_path_in_retrieve(index, settings, tiny_cross_encoder):
    settings.retrieval.reranker_model = tiny_cross_encoder
    hits = retrieve(index, "capital of France", 3, settings, mode="hybrid")
    assert len(hits) == 3
    texts = [d.page_content for d, _ in hits]
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    # The scores are the cross-encoder's own.
    from sentence_transformers import CrossEncoder

    expected = CrossEncoder(tiny_cross_encoder, device="cpu").predict([("capital of France", t) for t in texts])
    assert scores == pytest.approx([float(x) for x in expected], rel=1e-4)


def test_beir_runs_every_mode(settings, tmp_path):
    """`opencite eval beir --retrieval-mode bm25|hybrid` scores the app's own BM25 and fusion."""
    import json

    from opencite.eval.beir import run_beir

    root = tmp_path / "tiny-beir"
    (root / "qrels").mkdir(parents=True)
    docs = {f"d{i}": (title, text) for i, (_, title, text) in enumerate(PAGES + MORE)}
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in docs.items()))
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "ZX81 membrane keyboard"}) + "\n"
                                        + json.dumps({"_id": "q2", "text": "capital of Italy"}) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td6\t1\nq2\td1\t1\n")
    for mode in ("bm25", "hybrid"):
        result = run_beir(settings, root, mode=mode, cache_dir=tmp_path / "cache")
        assert result["mode"] == mode
        assert result["metrics"]["mrr@10"] == 100.0, (mode, result["run"])
