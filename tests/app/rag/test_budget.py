import itertools
import re

import pytest
from langchain_core.documents import Document

from opencite.app.answer import Source
from opencite.app.rag.budget import fit_prompt, source_budget, sources_text_tokens
from opencite.app.rag.passages import EXCERPT_GAP
from opencite.app.rag.chain import RagChain
from opencite.app.rag.chain_run import ChainRun
from opencite.app.rag.tokens import EstimateCounter, count_messages
from opencite.settings import Settings
from opencite.store import constants as C


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


# -- the sources' token budget per engine, filled with passages (app/rag/passages.py) ------------

WINDOWS = (2048, 4096, 8192, 16384, 32768, 65536, 131072)
ENGINES = ({"serve": {"engine": "cpu"}}, {"serve": {"engine": "llamacpp"}}, {"serve": {"engine": "vllm"}},
           {"serve": {"engine": "cpu"}, "llm": {"base_url": "http://remote.example/v1"}})


class JoinCostsMore:
    """A tokenizer-like counter whose joins cost more than the parts' sum (a blank line is 5
    tokens): the budget must hold on the joined text, not on the sum of blocks."""
    exact = True

    def count(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text)) + 5 * text.count("\n\n")

    def truncate(self, text: str, tokens: int) -> str:
        return " ".join(text.split()[: max(0, tokens // 2)])


def hits(n: int = 12, sentences: int = 40):
    """Long widened hits: each chunk's own span is the middle third of its text."""
    out = []
    for h in range(n):
        text = " ".join(f"Fact {h}-{i}: the router model R{h} has {i * 7} ports and weighs {i} kg."
                        for i in range(sentences))
        third = len(text) // 3
        doc = Document(text, metadata={C.SOURCE: f"https://x/{h % 7}", C.TITLE: f"Page {h}",
                                       C.CHUNK_INDEX: h, C.CONTENT_HASH: "v"}, id=f"c{h}")
        out.append((doc, 1 - h / 100, (third, 2 * third)))
    return out


def chain_for(window: int, engine: dict, source_tokens=None) -> RagChain:
    settings = Settings(_env_file=None, **engine)
    settings.llm.context_window = window
    settings.retrieval.source_tokens = source_tokens
    return RagChain(settings)


def test_default_source_budget_per_engine_and_window():
    cpu, llamacpp, vllm, remote = (Settings(_env_file=None, **e) for e in ENGINES)
    assert source_budget(cpu, 32768) == source_budget(llamacpp, 131072) == 1200
    assert source_budget(vllm, 8192) == source_budget(remote, 4096) == 1200  # small windows: CPU budget
    assert source_budget(vllm, 16384) == 4096 and source_budget(remote, 131072) == 6000
    vllm.retrieval.source_tokens = 900
    assert source_budget(vllm, 131072) == 900  # an explicit value wins


@pytest.mark.parametrize("counter", [None, JoinCostsMore()], ids=["estimate", "join-costs-more"])
def test_budget_is_never_exceeded_for_any_window_engine_or_max_tokens(counter, monkeypatch):
    pool = hits()
    for window, engine, max_tokens, explicit in itertools.product(
            WINDOWS, ENGINES, (256, 512, 1536), (None, 300, 50_000)):
        chain = chain_for(window, engine, explicit)
        if counter is not None:
            monkeypatch.setattr(chain, "counter", lambda: counter)
        run = ChainRun("Which router model has 91 ports?", [], {}, {"max_tokens": max_tokens},
                       standalone="Which router model has 91 ports?")
        overflow = chain._fit_prompt(run, pool)
        assert overflow is None
        used = chain.counter()
        blocks = re.findall(r"<source id=.*?</source>", run.prompt[-1]["content"], re.DOTALL)
        budget = explicit if explicit is not None else source_budget(chain.settings, window)
        case = (window, engine, max_tokens, explicit)
        assert len(blocks) == len(run.sources) >= 1, case
        assert sources_text_tokens(used, blocks) <= budget, case
        assert sum(used.count(m["content"]) + 8 for m in run.prompt) + max_tokens <= window, case
        assert [s.n for s in run.sources] == list(range(1, len(run.sources) + 1))


def test_passages_are_windows_around_the_best_sentences_in_rank_order():
    chain = chain_for(32768, ENGINES[0], 400)
    run = ChainRun("Which router has 91 ports?", [], {}, {}, standalone="Which router has 91 ports?")
    assert chain._fit_prompt(run, hits(n=3)) is None
    first = run.sources[0]
    # The hit's sentence naming 91 ports (13 x 7) with one sentence either side, not the whole chunk.
    assert "R0 has 91 ports" in first.snippet and "R0 has 84 ports" in first.snippet
    assert "R0 has 0 ports" not in first.snippet
    assert [s.url for s in run.sources][:3] == ["https://x/0", "https://x/1", "https://x/2"]


def test_overlapping_windows_of_one_page_are_merged():
    text = ("Alpha one is here. Alpha two is here. Beta three is here. Beta four is here. "
            "Gamma five is here.")
    doc = Document(text, metadata={C.SOURCE: "https://x/p", C.TITLE: "P", C.CHUNK_INDEX: 0,
                                   C.CONTENT_HASH: "v"}, id="p0")
    chain = chain_for(32768, ENGINES[0], 2000)
    run = ChainRun("alpha beta", [], {}, {}, standalone="alpha beta")
    chain._fit_prompt(run, [(doc, 1.0, (0, len(text)))])
    assert len(run.sources) == 1 and run.sources[0].snippet == text  # one source, read as the page reads


TABLE_PAGE = ("Results on the code benchmarks follow.\n\n"
              "| Model | Python | C++ |\n| --- | --- | --- |\n"
              + "".join(f"| Model-{i}B | {10 + i}.5 | {i}.25 |\n" for i in range(1, 30))
              + "\nThe table ends here.")


def test_table_rows_in_the_prompt_keep_their_header():
    doc = Document(TABLE_PAGE, metadata={C.SOURCE: "https://x/t", C.TITLE: "T", C.CHUNK_INDEX: 0,
                                         C.CONTENT_HASH: "v"}, id="t0")
    chain = chain_for(32768, ENGINES[0], 120)
    question = "What does Model-20B score on Python?"
    run = ChainRun(question, [], {}, {}, standalone=question)
    chain._fit_prompt(run, [(doc, 1.0, (0, len(TABLE_PAGE)))])
    snippet = run.sources[0].snippet
    # Rows far from the header, which is written again above them: the cells say what they are.
    assert "| Model-20B | 30.5 | 20.25 |" in snippet and "| Model-1B |" not in snippet
    excerpts = snippet.split(EXCERPT_GAP)
    assert any(e.splitlines()[2] == "| Model-19B | 29.5 | 19.25 |" for e in excerpts)
    assert all(e.startswith("| Model | Python | C++ |\n| --- | --- | --- |\n| Model-") for e in excerpts)


def test_a_looked_up_table_row_keeps_its_header():
    from opencite.app.rag.passages import focus

    window = focus(TABLE_PAGE, "Model-20B reaches 30.5 on Python")
    assert window.splitlines()[:3] == ["| Model | Python | C++ |", "| --- | --- | --- |", "| Model-19B | 29.5 | 19.25 |"]
    assert "| Model-20B | 30.5 | 20.25 |" in window
