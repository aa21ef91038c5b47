"""The chain end to end: a real index (MiniLM, embedded Chroma) and the tiny random-weight
chat model served by `opencite serve --engine cpu`. Random weights: structure, not wording."""

import pytest
from pydantic import SecretStr

from opencite.app.rag.chain import DoneEvent, RagChain, SourcesEvent, TokenEvent
from opencite.app.citations.markers import check_citations
from opencite.app.rag.tokens import TokenizerCounter


pytestmark = pytest.mark.slow  # the CPU LLM engine


def test_chain_streams_from_the_cpu_engine(indexed, cpu_engine):
    s = indexed
    s.llm.base_url = cpu_engine.base_url
    s.llm.model = cpu_engine.model
    s.llm.api_key = SecretStr(cpu_engine.api_key)
    s.llm.context_window = 4096  # the tiny model's max_position_embeddings
    chain = RagChain(s)
    assert isinstance(chain.counter(), TokenizerCounter)  # the served model's own tokenizer
    events = list(chain.stream([{"role": "user", "content": "What is the capital of Italy?"}],
                               k=3, max_tokens=24, temperature=0.0))
    assert isinstance(events[0], SourcesEvent) and isinstance(events[-1], DoneEvent)
    ans = events[-1].answer
    assert ans.error is None, ans.error
    # The prompt's three; a sentence of noise no source supports may add passages found after it.
    assert [x.n for x in ans.sources if not x.found_after] == [1, 2, 3]
    assert all(x.n > 3 for x in ans.sources if x.found_after)
    assert ans.sources[0].url == "https://blog.example/rome"
    tokens = [e.text for e in events if isinstance(e, TokenEvent)]
    assert tokens and "".join(tokens).strip() == ans.answer
    # Whatever the random model wrote, every marker left points at a source.
    clean, cited, dropped = check_citations(ans.answer, len(ans.sources))
    assert clean == ans.answer and dropped == 0
    assert {x.n for x in ans.cited} == set(cited)
    assert ans.usage is None or ans.usage["completion_tokens"] <= 24
