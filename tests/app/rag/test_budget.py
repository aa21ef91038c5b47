from opencite.app.answer import Source
from opencite.app.rag.budget import fit_prompt
from opencite.app.rag.tokens import EstimateCounter, count_messages


def src(i: int, words: int) -> Source:
    return Source(n=i, title=f"T{i}", url=f"https://x/{i}", snippet="word " * words, score=1 - i / 10)


def test_top_source_too_long_is_shortened_not_dropped():
    counter = EstimateCounter()
    fitted = fit_prompt("q?", [src(1, 3000), src(2, 10)], counter, window=1200, max_tokens=200)
    assert [s.n for s in fitted.sources] == [1]
    assert fitted.sources[0].snippet.endswith(" …")
    assert count_messages(counter, fitted.prompt) <= 1200 - 200
    assert fitted.prompt[-1]["content"].endswith("Question: q?")


def test_lower_ranked_sources_dropped_in_order_and_renumbered():
    counter = EstimateCounter()
    fitted = fit_prompt("q?", [src(i, 150) for i in range(1, 6)], counter, window=1200, max_tokens=200)
    assert 1 <= len(fitted.sources) < 5
    assert [s.url for s in fitted.sources] == [f"https://x/{i}" for i in range(1, len(fitted.sources) + 1)]
    assert count_messages(counter, fitted.prompt) <= 1000


def test_question_alone_too_long_is_overflow():
    fitted = fit_prompt("q " * 2000, [src(1, 5)], EstimateCounter(), window=500, max_tokens=100)
    assert fitted.overflow and "max_tokens=100" in fitted.overflow and fitted.prompt == []
