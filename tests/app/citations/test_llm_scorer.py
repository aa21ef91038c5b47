"""The `llm` support scorer end to end: the product's chat model (ChatOpenAI) pointed at the
scripted LLM double, a real local OpenAI-compatible server, judging which passage states a claim."""

import re

import pytest

from opencite.app.citations.attribution import attribute, default_scorer
from opencite.app.citations.support import LLMJudgeScorer
from opencite.app.rag.llm import chat_model
from opencite.serving.endpoint import LLMEndpoint
from opencite.settings import AttributionSettings
from tests.app.citations.test_attribution import SOURCES  # the same three pages

LISTED = re.compile(r"^(\d+)\. (.*)$", re.MULTILINE)


def judge_request(messages: list[dict]) -> tuple[str, list[tuple[int, str]]]:
    """(claim, [(number, passage)]) as the scorer's prompt lists them."""
    (message,) = messages
    prompt = message["content"]
    claim = re.search(r"^Claim: (.*)$", prompt, re.MULTILINE).group(1)
    listing = prompt.split("Passages:\n", 1)[1].split("\n\n", 1)[0]
    return claim, [(int(n), text) for n, text in LISTED.findall(listing)]


def judge(messages: list[dict]) -> str:
    """A judge by the claim's key fact (its figures): the shortest passage stating them all, else 0."""
    claim, passages = judge_request(messages)
    figures = re.findall(r"\d+", claim)
    stating = [(len(text), n) for n, text in passages if figures and all(f in text for f in figures)]
    return str(min(stating)[1]) if stating else "0"


@pytest.fixture
def llm(settings, scripted_llm):
    """The chat model exactly as the chain builds it (`chat_model`), against the double."""
    return chat_model(settings, LLMEndpoint(scripted_llm.base_url, scripted_llm.api_key, scripted_llm.model))


@pytest.fixture
def scorer(llm):
    scorer = default_scorer(AttributionSettings(scorer="llm"), llm=llm)
    assert isinstance(scorer, LLMJudgeScorer)
    return scorer


def run(answer, scorer, mode="repair"):
    return attribute(answer, SOURCES, scorer, AttributionSettings(scorer="llm", mode=mode))


def test_the_passage_the_llm_picks_supports_the_sentence_and_repoints_a_wrong_marker(scorer, scripted_llm):
    scripted_llm.responder = judge
    a = run("The Eiffel Tower was completed in 1889 [2]. The Berlin Wall fell in 1989 [3]. "
            "The Colosseum was finished in 80 AD. Yes.", scorer)
    assert [(s.outcome, s.verdict) for s in a.sentences] == [
        ("repointed", "supported"), ("supported", "supported"), ("added", "supported")]
    assert [s.markers for s in a.sentences] == [[1], [3], [2]]
    assert a.text == ("The Eiffel Tower was completed in 1889 [1]. The Berlin Wall fell in 1989 [3]. "
                      "The Colosseum was finished in 80 AD [2]. Yes.")
    assert a.sentences[0].quote_for(1).quote == "The Eiffel Tower was completed in 1889."
    assert a.sentences[1].quote_for(3).quote == "The Berlin Wall fell in 1989."


def test_one_request_per_checked_sentence_listing_at_most_the_candidates(scorer, scripted_llm):
    scripted_llm.responder = judge
    answer = "The Eiffel Tower was completed in 1889 [1]. Yes. The Berlin Wall fell in 1989 [3]."
    run(answer, scorer)
    assert len(scripted_llm.requests) == 2  # "Yes." is too short to check: no request
    asked = [judge_request(r["messages"]) for r in scripted_llm.requests]
    assert [claim for claim, _ in asked] == ["The Eiffel Tower was completed in 1889.",
                                             "The Berlin Wall fell in 1989."]
    for r, (claim, passages) in zip(scripted_llm.requests, asked):
        assert r["_path"].endswith("/chat/completions") and r["model"] == scripted_llm.model
        assert 1 <= len(passages) <= scorer.candidates
        assert [n for n, _ in passages] == list(range(1, len(passages) + 1))
        assert any(re.findall(r"\d+", claim)[0] in text for _, text in passages)  # the best lexical ones

    scripted_llm.requests.clear()
    few = LLMJudgeScorer(scorer.llm, candidates=2)
    attribute(answer, SOURCES, few, AttributionSettings(scorer="llm"))
    assert [len(judge_request(r["messages"])[1]) for r in scripted_llm.requests] == [2, 2]


def test_a_zero_reply_is_not_found_and_repair_keeps_the_markers(scorer, scripted_llm):
    scripted_llm.reply("0")
    answer = "The Eiffel Tower was completed in 1889 [1]. The Berlin Wall fell in 1989 [3]."
    a = run(answer, scorer)
    assert [(s.outcome, s.verdict) for s in a.sentences] == [("unsupported", "not_found")] * 2
    assert a.text == answer  # never silently removed: shown as unverified
    assert [s.markers for s in a.sentences] == [[1], [3]]
    assert a.verdicts == {"supported": 0, "contradicted": 0, "not_found": 2}


@pytest.mark.parametrize("reply", ["", "None of them.", "Passage five", "7", "1889", "None of the 4 passages.", "-1",
                                   "1 or 2", "Passage 1 does not state it."])
def test_a_reply_naming_no_listed_passage_counts_as_no_support(scorer, scripted_llm, reply):
    scripted_llm.reply(reply)
    a = run("The Eiffel Tower was completed in 1889 [1].", scorer)
    assert (a.sentences[0].outcome, a.sentences[0].verdict) == ("unsupported", "not_found")
    assert a.text == "The Eiffel Tower was completed in 1889 [1]." and len(scripted_llm.requests) == 1


@pytest.mark.parametrize("reply", ["1", " 1\n", "Passage 1.", "#1", "1)"])
def test_a_reply_naming_a_passage_as_asked_is_read(scorer, scripted_llm, reply):
    scripted_llm.reply(reply)
    a = run("The Eiffel Tower was completed in 1889 [1].", scorer)
    assert a.sentences[0].verdict == "supported"
