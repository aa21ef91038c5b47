"""Metrics on a tiny hand-made dataset; every expectation is computed by hand in the comments."""

import math

import pytest

from opencite.eval import metrics as M
from opencite.eval.run import summarise

QRELS = {"q1": {"a": 1}, "q2": {"a": 1, "b": 1}, "q3": {"c": 1}, "none": {}}
RUN = {
    "q1": {"a": 0.9, "x": 0.5},                    # relevant at rank 1
    "q2": {"x": 0.9, "a": 0.8, "y": 0.7, "b": 0.6},  # relevant at ranks 2 and 4
    # q3 retrieved nothing: scores 0 everywhere
}


def test_page_level_metrics_by_hand():
    per_q = M.retrieval_metrics(QRELS, RUN, k=2)
    assert set(per_q) == {"q1", "q2", "q3"}  # a question without relevant pages is not scored
    assert per_q["q1"] == {"hit@2": 1.0, "recall@2": 1.0, "mrr@10": 1.0, "ndcg@10": 1.0}
    # q2: hit in top 2 (rank 2); recall@2 = 1/2; RR = 1/2;
    # DCG = 1/log2(3) + 1/log2(5); ideal DCG = 1 + 1/log2(3)
    ndcg_q2 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert per_q["q2"]["hit@2"] == 1.0 and per_q["q2"]["recall@2"] == 0.5
    assert per_q["q2"]["mrr@10"] == 0.5
    assert per_q["q2"]["ndcg@10"] == pytest.approx(ndcg_q2)  # 0.6509
    assert per_q["q3"] == {"hit@2": 0.0, "recall@2": 0.0, "mrr@10": 0.0, "ndcg@10": 0.0}
    mean = M.mean_metrics(per_q)
    assert mean["hit@2"] == pytest.approx(2 / 3)
    assert mean["recall@2"] == pytest.approx(0.5)
    assert mean["mrr@10"] == pytest.approx(0.5)
    assert mean["ndcg@10"] == pytest.approx((1 + ndcg_q2) / 3)


def test_mrr_is_cut_at_ten_and_hit_at_k_at_k():
    run = {"q": {f"d{i}": 100.0 - i for i in range(1, 11)} | {"rel": 1.0}}  # relevant at rank 11
    per_q = M.retrieval_metrics({"q": {"rel": 1}}, run, k=3)
    assert per_q["q"]["mrr@10"] == 0.0 and per_q["q"]["hit@3"] == 0.0
    run = {"q": {"d1": 3.0, "d2": 2.0, "rel": 1.0}}  # rank 3
    per_q = M.retrieval_metrics({"q": {"rel": 1}}, run, k=3)
    assert per_q["q"]["mrr@10"] == pytest.approx(1 / 3) and per_q["q"]["hit@3"] == 1.0
    assert M.retrieval_metrics({"q": {"rel": 1}}, run, k=2)["q"]["hit@2"] == 0.0


def test_page_score_is_the_best_chunk():
    assert M.page_run([("u1", 0.5), ("u2", 0.6), ("u1", 0.7)]) == {"u1": 0.7, "u2": 0.6}


def test_citation_stats_by_hand():
    urls = {1: "u1", 2: "u2", 3: "u3"}
    # markers 1, 2, 3, 1 remain; the chain dropped one more pointing nowhere
    stats = M.citation_stats("A [1]. B [2, 3]. C [1].", 1, urls, {"u1"})
    assert stats == {"citations": 5, "has_citation": True, "to_retrieved": 4, "to_relevant": 2}
    assert M.citation_stats("No markers.", 0, urls, None) == {
        "citations": 0, "has_citation": False, "to_retrieved": 0, "to_relevant": None}


@pytest.mark.parametrize("text,expected", [
    ("The indexed pages do not cover this question.", True),
    ("I don't know based on the indexed pages.", True),
    ("There is no information about that in the sources.", True),
    ("Paris is the capital of France [1].", False),
])
def test_says_not_covered(text, expected):
    assert M.says_not_covered(text) is expected


def test_percentiles():
    assert M.percentiles([4.0, 1.0, 3.0, 2.0, None]) == {"p50": 2.5, "p95": pytest.approx(3.85)}
    assert M.percentiles([]) == {"p50": None, "p95": None}


def _rec(id, relevant, urls, answer, dropped=0, judge=None, timings=None, error=None):
    src = {i + 1: u for i, u in enumerate(urls)}
    return {
        "id": id, "relevant": relevant, "answer": answer, "error": error,
        "page_run": {u: 1.0 - i / 10 for i, u in enumerate(urls)},
        "citations": M.citation_stats(answer, dropped, src, set(relevant) if relevant is not None else None),
        "says_not_covered": M.says_not_covered(answer),
        "judge": judge or {}, "timings": timings or {},
    }


def test_summary_by_hand():
    v = lambda s: {"score": s}  # noqa: E731
    records = [
        _rec("a", ["u1"], ["u1", "u2"], "X [1] [2].", judge={"faithfulness": v(5), "relevance": v(4)},
             timings={"first_token_s": 1.0, "total_s": 2.0}),
        _rec("b", ["u3"], ["u1", "u3"], "Y.", dropped=1, judge={"faithfulness": v(3), "relevance": v(None)},
             timings={"first_token_s": 3.0, "total_s": 4.0}),
        _rec("c", [], ["u1"], "The pages do not cover it.", judge={"abstention": v(1)},
             timings={"first_token_s": 2.0, "total_s": 3.0}),
        _rec("d", ["u1"], [], "", error="LLM down"),
    ]
    s = summarise(records, k=2)
    assert s["questions"] == 4 and s["errors"] == 1
    # retrieval over a, b, d: a hit at 1, b hit at 2 (RR 1/2), d nothing
    assert s["retrieval"]["questions"] == 3
    assert s["retrieval"]["hit@2"] == pytest.approx(2 / 3)
    assert s["retrieval"]["mrr@10"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert s["answers"]["faithfulness"] == 4.0 and s["answers"]["faithfulness_n"] == 2
    assert s["answers"]["relevance"] == 4.0 and s["answers"]["relevance_unreadable"] == 1
    assert s["answers"]["correctness"] is None
    # answerable without error: a (2 valid citations, 1 relevant), b (1 dropped, none valid)
    assert s["citations"]["answers_with_citations"] == 1.0
    assert s["citations"]["to_retrieved"] == pytest.approx(2 / 3)
    assert s["citations"]["to_relevant"] == pytest.approx(1 / 3)
    assert s["not_covered"] == {"questions": 1, "says_not_covered_phrase": 1.0,
                                "says_not_covered_judge": 1.0, "cites_anyway": 0.0}
    assert s["latency"]["first_token_p50_s"] == 2.0 and s["latency"]["total_p50_s"] == 3.0
    assert s["latency"]["total_p95_s"] == pytest.approx(3.9)
