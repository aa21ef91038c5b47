"""The chain end to end with attribution: real index (MiniLM) + ScriptedLLMDouble writing wrong,
missing and fabricated citations."""

import asyncio
import re

from opencite.app.rag.chain import DoneEvent, RagChain, TokenEvent

Q = [{"role": "user", "content": "Tell me about European capitals."}]


def numbers(messages) -> dict[str, int]:
    """Source URL -> the number the prompt gave it."""
    prompt = messages[-1]["content"]
    return {url: int(n) for n, url in re.findall(r'<source id="(\d+)" title="[^"]*" url="([^"]+)"', prompt)}


def sloppy(messages):
    n = numbers(messages)
    paris, rome = n["https://blog.example/paris"], n["https://blog.example/rome"]
    return (f"Paris is the capital of France [{rome}]. The Eiffel Tower was completed in 1889. "
            f"The Eiffel Tower was completed in 1925 [{paris}]. Rome is the capital of Italy [9].")


def test_wrong_missing_and_fabricated_citations_are_repaired(llm_settings, scripted_llm):
    scripted_llm.responder = sloppy
    events = list(RagChain(llm_settings).stream(Q, k=5))
    ans = events[-1].answer
    n = {s.url: s.n for s in ans.sources}
    paris, rome = n["https://blog.example/paris"], n["https://blog.example/rome"]
    outcomes = [(s.outcome, s.markers, s.original_markers) for s in ans.attribution.sentences]
    assert outcomes == [("repointed", [paris], [rome]), ("added", [paris], []), ("unsupported", [], [paris]),
                        ("added", [rome], [])]  # [9] named no source: the filter dropped it, then one was added
    assert ans.answer == (f"Paris is the capital of France [{paris}]. The Eiffel Tower was completed in 1889 [{paris}]. "
                          f"The Eiffel Tower was completed in 1925. Rome is the capital of Italy [{rome}].")
    assert sorted(s.n for s in ans.cited) == sorted({paris, rome})
    assert ans.dropped_markers == 1 and "attribution_s" in ans.timings
    # The stream carried the text as written (less the fabricated marker); the final answer is repaired.
    streamed = "".join(e.text for e in events if isinstance(e, TokenEvent))
    assert f"capital of France [{rome}]" in streamed and "[9]" not in streamed


def test_flag_mode_keeps_the_text_and_off_skips_attribution(llm_settings, scripted_llm):
    scripted_llm.responder = sloppy
    llm_settings.attribution.mode = "flag"
    ans = RagChain(llm_settings).invoke(Q, k=5)
    assert "[9]" not in ans.answer and ans.answer.startswith("Paris is the capital of France [")
    assert [s.outcome for s in ans.attribution.sentences] == ["repointed", "added", "unsupported", "added"]
    assert ans.attribution.text == ans.answer
    llm_settings.attribution.mode = "off"
    ans = RagChain(llm_settings).invoke(Q, k=5)
    assert ans.attribution is None


def test_async_path_attributes_too(llm_settings, scripted_llm):
    scripted_llm.responder = sloppy

    async def run():
        return [e async for e in RagChain(llm_settings).astream(Q, k=5)]

    done = asyncio.run(run())[-1]
    assert isinstance(done, DoneEvent) and done.answer.attribution.counts == {
        "supported": 0, "repointed": 1, "added": 2, "unsupported": 1}


def test_failed_answers_are_not_attributed(llm_settings, scripted_llm):
    scripted_llm.fail(500)
    ans = RagChain(llm_settings).invoke(Q, k=2)
    assert ans.error_kind == "llm_error" and ans.attribution is None
