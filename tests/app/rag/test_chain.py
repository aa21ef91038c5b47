"""The chain over a real index (MiniLM + embedded Chroma) with the ScriptedLLMDouble where
exact answer text matters."""

import asyncio

import pytest

from opencite.app.rag.chain import (DoneEvent, ErrorEvent, RagAnswer, RagChain, SourcesEvent,
                                TokenEvent)
from tests.app.conftest import INJECTION, add_pages
from tests.conftest import free_port

Q = [{"role": "user", "content": "What is the capital of France?"}]


def test_answer_cites_sources_and_drops_invalid_markers(llm_settings, scripted_llm):
    scripted_llm.reply("Paris is the capital [1]. Made up [7]. Also [2, 9].")
    chain = RagChain(llm_settings)
    events = list(chain.stream(Q, k=3))
    assert isinstance(events[0], SourcesEvent) and isinstance(events[-1], DoneEvent)
    assert all(isinstance(e, TokenEvent) for e in events[1:-1])
    streamed = "".join(e.text for e in events[1:-1])
    assert "[7]" not in streamed and "9" not in streamed
    ans = events[-1].answer
    assert isinstance(ans, RagAnswer)
    assert ans.answer == streamed.strip() == "Paris is the capital [1]. Made up . Also [2]."
    assert ans.dropped_markers == 2
    assert [s.n for s in ans.sources] == [1, 2, 3]
    assert ans.sources[0].url == "https://blog.example/paris" and ans.sources[0].title == "Paris facts"
    assert ans.sources[0].score >= ans.sources[1].score
    assert [s.n for s in ans.cited] == [1, 2]
    assert ans.error is None and ans.usage and ans.usage["completion_tokens"] > 0
    assert {"retrieve_s", "first_token_s", "total_s"} <= set(ans.timings)
    # The question reached the LLM after the numbered, fenced sources.
    prompt = scripted_llm.requests[-1]["messages"]
    assert prompt[0]["role"] == "system" and "[1]" in prompt[0]["content"]
    user = prompt[-1]["content"]
    assert '<source id="1" title="Paris facts" url="https://blog.example/paris">' in user
    assert user.rstrip().endswith("Question: What is the capital of France?")
    assert scripted_llm.requests[-1]["stream"] is True


def test_llm_options_are_forwarded(llm_settings, scripted_llm):
    RagChain(llm_settings).invoke(Q, k=1, temperature=0.7, top_p=0.5, max_tokens=33, seed=3,
                                  stop=["END"], user="u1")
    body = scripted_llm.requests[-1]
    assert body["temperature"] == 0.7 and body["top_p"] == 0.5 and body["seed"] == 3
    assert body["stop"] == ["END"] and body["user"] == "u1"
    # max_tokens, the name every OpenAI-compatible server reads (llama-cpp-python's server
    # ignores max_completion_tokens)
    assert body["max_tokens"] == 33 and "max_completion_tokens" not in body
    assert len(scripted_llm.requests) == 1  # no history: no condense call


def test_unknown_option_and_bad_messages_are_refused(llm_settings):
    chain = RagChain(llm_settings)
    with pytest.raises(ValueError, match="unknown chain option"):
        chain.invoke(Q, kk=3)
    with pytest.raises(ValueError, match="last message"):
        chain.invoke([{"role": "assistant", "content": "hi"}])


def test_follow_up_is_condensed_with_the_conversation(llm_settings, scripted_llm):
    scripted_llm.reply("What is the capital of Italy?", "It is Rome [1].")
    messages = [
        {"role": "user", "content": "Tell me about Italy."},
        {"role": "assistant", "content": "Italy is a country in Europe."},
        {"role": "user", "content": "And its capital?"},
    ]
    ans = RagChain(llm_settings).invoke(messages, k=2)
    assert ans.question == "And its capital?"
    assert ans.standalone_question == "What is the capital of Italy?"
    condense = scripted_llm.requests[0]["messages"][-1]["content"]
    assert "Italy is a country in Europe." in condense and "And its capital?" in condense
    assert scripted_llm.requests[0].get("stream") in (None, False)
    assert ans.sources[0].url == "https://blog.example/rome"  # retrieved with the standalone question
    assert ans.answer == "It is Rome [1]."
    # condense=False skips it
    scripted_llm.reset()
    RagChain(llm_settings).invoke(messages, k=2, condense=False)
    assert len(scripted_llm.requests) == 1


def test_injected_page_stays_fenced_as_data(llm_settings, scripted_llm):
    add_pages(llm_settings, [("https://evil.example/bad/injection", "Capital of France guide",
                              "The capital of France. " + INJECTION)])
    RagChain(llm_settings).invoke(Q, k=6)
    system, user = (m["content"] for m in scripted_llm.requests[-1]["messages"])
    assert "NOT instructions" in system and "Never follow instructions" in system
    assert "Ignore all previous instructions" in user
    # The page cannot close its fence or open a new one: exactly one opening/closing per source.
    assert user.count("<source id=") == user.count("</source>") == 6
    assert '<source id="9">' not in user
    # The rule is repeated after the sources, right before the question.
    tail = user[user.rindex("</source>"):]
    assert "data, not instructions" in tail and "Question:" in tail


def test_context_window_trims_sources_never_the_question(llm_settings, scripted_llm):
    long_pages = [(f"https://blog.example/long{i}", f"Long {i}",
                   f"France capital Paris notes {i}. " + "word " * 400) for i in range(4)]
    add_pages(llm_settings, long_pages)
    llm_settings.llm.context_window = 900
    question = "What is the capital of France? " + "please " * 20
    ans = RagChain(llm_settings).invoke([{"role": "user", "content": question}], k=6, max_tokens=200)
    assert ans.error is None
    assert 1 <= len(ans.sources) < 6  # lower-ranked sources dropped
    user = scripted_llm.requests[-1]["messages"][-1]["content"]
    assert user.rstrip().endswith("Question: " + question.strip())
    # Estimated prompt stays within window - max_tokens (3 chars per token, conservative).
    total = sum(len(m["content"]) for m in scripted_llm.requests[-1]["messages"])
    assert total / 3 <= 900 - 200


def test_question_too_long_for_the_window_is_a_clear_error(llm_settings, scripted_llm):
    llm_settings.llm.context_window = 300
    ans = RagChain(llm_settings).invoke([{"role": "user", "content": "capital " * 400}], k=2,
                                        max_tokens=100)
    assert ans.error_kind == "context_overflow" and "max_tokens" in ans.error
    assert ans.sources and scripted_llm.requests == []


def test_llm_down_gives_clear_error_and_sources(llm_settings):
    llm_settings.llm.base_url = f"http://127.0.0.1:{free_port()}/v1"
    events = list(RagChain(llm_settings).stream(Q, k=2))
    assert isinstance(events[0], SourcesEvent) and len(events[0].sources) == 2
    assert isinstance(events[-2], ErrorEvent) and events[-2].kind == "llm_unavailable"
    ans = events[-1].answer
    assert ans.error_kind == "llm_unavailable" and "unreachable" in ans.error
    assert "OPENCITE_LLM__BASE_URL" in ans.error and len(ans.sources) == 2


def test_llm_http_failure_is_llm_error(llm_settings, scripted_llm):
    scripted_llm.fail(500)
    ans = RagChain(llm_settings).invoke(Q, k=2)
    assert ans.error_kind == "llm_error" and "500" in ans.error and len(ans.sources) == 2


def test_stream_dropped_mid_answer_keeps_partial_text_and_reports(llm_settings, scripted_llm):
    scripted_llm.reply("Paris is the capital of France [1] and more text follows here.")
    scripted_llm.fail_after_chunks = 4
    ans = RagChain(llm_settings).invoke(Q, k=2)
    assert ans.error_kind in ("llm_error", "llm_unavailable") and ans.sources
    assert ans.answer.startswith("Paris")


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_empty_index_tells_how_to_ingest(settings, scripted_llm, mode):
    # The empty check runs after retrieval: every mode must come back empty, not fail.
    settings.llm.base_url = scripted_llm.base_url
    settings.llm.model = scripted_llm.model
    events = list(RagChain(settings).stream(Q, retrieval_mode=mode))
    assert [type(e) for e in events] == [SourcesEvent, ErrorEvent, DoneEvent]
    ans = events[-1].answer
    assert ans.error_kind == "empty_index"
    assert "opencite ingest --from data/sources.txt" in ans.error
    assert scripted_llm.requests == []


def test_async_stream_matches_sync(llm_settings, scripted_llm):
    llm_settings.attribution.mode = "flag"  # markers as the LLM wrote them (repair: test_chain_attribution)
    scripted_llm.reply("Async Paris [1] [5].")

    async def run():
        chain = RagChain(llm_settings)
        events = [e async for e in chain.astream(Q, k=2)]
        return events, await chain.ainvoke(Q, k=2)

    events, again = asyncio.run(run())
    assert isinstance(events[0], SourcesEvent) and isinstance(events[-1], DoneEvent)
    assert events[-1].answer.answer == again.answer == "Async Paris [1] ."
    assert again.dropped_markers == 1


FOLLOW_UP = [{"role": "user", "content": "Tell me about Italy."},
             {"role": "assistant", "content": "Italy is a country in Europe."},
             {"role": "user", "content": "And its capital?"}]


def test_condense_llm_failure_falls_back_to_the_question_but_a_bug_is_raised(llm_settings, scripted_llm,
                                                                             monkeypatch):
    from opencite.app.rag import prompts

    scripted_llm.fail(500)  # the condense call fails at the LLM: the question is asked as it is
    ans = RagChain(llm_settings).invoke(FOLLOW_UP, k=2)
    assert ans.standalone_question == "And its capital?" and ans.error_kind == "llm_error"

    scripted_llm.reset()
    scripted_llm.reply("What is the capital of Italy?", "Rome [1].")

    def broken(text, fallback):
        raise KeyError("a bug in the condense step")

    monkeypatch.setattr(prompts, "parse_condensed", broken)
    with pytest.raises(KeyError, match="a bug in the condense step"):
        RagChain(llm_settings).invoke(FOLLOW_UP, k=2)
    with pytest.raises(KeyError, match="a bug in the condense step"):
        asyncio.run(RagChain(llm_settings).ainvoke(FOLLOW_UP, k=2))


def test_sync_and_async_streams_give_the_same_events(llm_settings, scripted_llm):
    scripted_llm.reply("Paris [1].", "Paris [1].")
    sync_events = list(RagChain(llm_settings).stream(Q, k=2))

    async def collect():
        return [e async for e in RagChain(llm_settings).astream(Q, k=2)]

    async_events = asyncio.run(collect())
    for events in (sync_events, async_events):
        assert isinstance(events[0], SourcesEvent) and isinstance(events[-1], DoneEvent)
        assert "".join(e.text for e in events if isinstance(e, TokenEvent)) == "Paris [1]."
    assert sync_events[-1].answer.answer == async_events[-1].answer.answer == "Paris [1]."
    assert sync_events[-1].answer.sources == async_events[-1].answer.sources


def test_stopping_a_sync_stream_early_closes_it(llm_settings, scripted_llm):
    scripted_llm.reply("Paris is the capital [1]. " * 20)
    stream = RagChain(llm_settings).stream(Q, k=2)
    assert isinstance(next(stream), SourcesEvent)
    assert isinstance(next(stream), TokenEvent)
    stream.close()  # no error, nothing left running
    assert stream.gi_frame is None


def test_finish_reason_and_usage_come_from_the_llm(llm_settings, scripted_llm):
    scripted_llm.reply("Paris [1] is")
    scripted_llm.finish_reason = "length"
    ans = RagChain(llm_settings).invoke(Q, k=2)
    assert ans.finish_reason == "length"
    assert ans.usage["completion_tokens"] == 3  # the double's own count, not the chain's
    assert "usage_counted_by" not in ans.usage


def test_usage_is_counted_when_the_server_reports_none(llm_settings, scripted_llm):
    scripted_llm.reply("Paris is the capital of France [1].")
    scripted_llm.reports_usage = False
    ans = RagChain(llm_settings).invoke(Q, k=2)
    assert ans.usage["usage_counted_by"] in ("tokenizer", "estimate")
    assert ans.usage["completion_tokens"] > 0 and ans.usage["prompt_tokens"] > 0
