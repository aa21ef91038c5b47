"""Verdicts where they are read: the API's /metrics counter and eval's sentence records."""

from types import SimpleNamespace

from opencite.app.api.metrics import ApiMetrics
from opencite.app.citations.verdicts import Attribution, Evidence, SentenceAttribution
from opencite.eval import metrics as M


def attribution() -> Attribution:
    contradicted = SentenceAttribution(0, 16, "It fell in 1991.", "unsupported", [], [3], 0.8,
                                       [Evidence(3, 0.8, False, "The Berlin Wall fell in 1989.", 0, 29, True,
                                                 [{"claim": "1991", "source": "1989"}])], verdict="contradicted")
    unverified = SentenceAttribution(17, 40, "The moon is cheese [1].", "unsupported", [1], [1], 0.2,
                                     verdict="not_found")
    return Attribution("repair", "It fell in 1991. The moon is cheese [1].", [contradicted, unverified],
                       {"supported": 0, "repointed": 0, "added": 0, "unsupported": 2}, 0.01,
                       {"supported": 0, "contradicted": 1, "not_found": 1})


def test_metrics_count_checked_sentences_by_verdict():
    metrics = ApiMetrics(lambda: 0)
    answer = SimpleNamespace(timings={}, error=None, cited=[], dropped_markers=0, attribution=attribution())
    metrics.observe_answer("docs", answer)
    metrics.observe_answer("docs", answer)
    text = metrics.exposition().decode()
    assert 'opencite_attribution_verdicts_total{kb="docs",verdict="contradicted"} 2.0' in text
    assert 'opencite_attribution_verdicts_total{kb="docs",verdict="not_found"} 2.0' in text
    metrics.observe_answer("docs", SimpleNamespace(timings={}, error="x", cited=[], dropped_markers=0, attribution=None))


def test_eval_records_carry_the_verdict_and_the_words_that_differ():
    urls = {1: "https://b/moon", 3: "https://b/berlin"}
    records = M.sentence_records(attribution(), urls)
    assert [r["verdict"] for r in records] == ["contradicted", "not_found"]
    assert records[0]["differs"] == [{"claim": "1991", "source": "1989"}] and records[0]["contradicted_by"] == urls[3]
    assert records[1]["cited"] == ["https://b/moon"]  # kept: not found is no evidence against it
    stats = M.attribution_stats(records, {"https://b/berlin"})
    summary = M.summarise_attribution([stats])
    assert (summary["verified"], summary["contradicted"], summary["not_found"], summary["answers_flagged"]) == (0, 1, 1, 1.0)
