"""Fitting the prompt into the model's context window minus max_tokens, and the sources into
their token budget (`source_tokens`, per engine: `source_budget`).

Sources go in rank order while they fit; the first that does not fit is shortened when a
useful part of it fits (else left out), and every lower-ranked source is left out. The
question is never cut: when it alone does not fit, the result says so (context_overflow).
The sources' text (the blocks as the prompt joins them) never exceeds the budget: it is counted
again whole at the end and the last block goes while it does.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from opencite.app.rag import prompts
from opencite.app.answer import Source
from opencite.app.rag.tokens import MESSAGE_OVERHEAD, TokenCounter, count_messages
from opencite.settings import Settings

# A local CPU engine reads ~100-300 prompt tokens/s: keep prompts short. 1,200 rather than 1,500:
# the first token 0.76x on an AVX2 CPU, the same share of reference answers' words in the sources
# and the same citation verdicts on the dev set's tune half (docs/retrieval.md "Prompt budget").
CPU_SOURCE_TOKENS = 1200
WIDE_SOURCE_TOKENS = 6000  # vLLM and remote endpoints: at most this, and a quarter of the window
SMALL_WINDOW = 8192  # a window this small gets the CPU budget whatever the engine
MIN_SHORTENED_SOURCE = 64  # tokens: a source shorter than this after trimming is dropped instead
SAFETY_MARGIN = 16  # tokens kept free beyond the counted prompt
BLOCK_SEPARATOR = 2  # the blank line between source blocks


@dataclass
class FittedPrompt:
    sources: list[Source]  # the ones in the prompt, numbered 1..n
    prompt: list[dict]  # chat messages
    overflow: str | None = None  # set when even the question does not fit


def source_budget(settings: Settings, window: int) -> int:
    """Tokens of the prompt the sources may take: `retrieval.source_tokens` when set, else per
    engine — a local CPU engine (`serve.engine` auto, cpu or llamacpp with no `llm.base_url`) or a
    window of 8k or less gets 1200, vLLM and remote endpoints min(6000, window / 4). The room
    the window leaves (`fit_prompt`) can lower it further."""
    explicit = settings.retrieval.source_tokens
    if explicit is not None:
        return explicit
    if local_cpu_engine(settings) or window <= SMALL_WINDOW:
        return CPU_SOURCE_TOKENS
    return min(WIDE_SOURCE_TOKENS, window // 4)


def local_cpu_engine(settings: Settings) -> bool:
    """The LLM is the engine `opencite serve` runs on this machine's CPU (no `llm.base_url`;
    `serve.engine` auto, cpu or llamacpp): it prefills and decodes on the cores we run on."""
    return settings.llm.base_url is None and settings.serve.engine in ("auto", "cpu", "llamacpp")


def fixed_tokens(question: str, counter: TokenCounter) -> int:
    """The prompt without its sources: system rules, template and question."""
    return count_messages(counter, prompts.answer_messages(question, [])) - counter.count(prompts.NO_SOURCES)


def room_for_sources(question: str, counter: TokenCounter, window: int, max_tokens: int,
                     source_tokens: int | None = None) -> int:
    """Tokens left for the sources' text: the window less max_tokens, the rest of the prompt and
    a margin, and at most `source_tokens`."""
    return _room(fixed_tokens(question, counter), window, max_tokens, source_tokens)


def _room(fixed: int, window: int, max_tokens: int, source_tokens: int | None) -> int:
    room = window - max_tokens - fixed - SAFETY_MARGIN
    return room if source_tokens is None else min(room, source_tokens)


def sources_text_tokens(counter: TokenCounter, blocks: list[str]) -> int:
    """Tokens of the sources as the prompt carries them (the blocks joined by blank lines)."""
    return counter.count("\n\n".join(blocks)) if blocks else 0


def fit_prompt(question: str, ranked: list[Source], counter: TokenCounter, window: int,
               max_tokens: int, source_tokens: int | None = None) -> FittedPrompt:
    fixed = fixed_tokens(question, counter)  # the system prompt and question, tokenized once
    if _room(fixed, window, max_tokens, None) <= 0:
        return FittedPrompt(ranked, [], (
            f"The question needs about {fixed} tokens, which with max_tokens={max_tokens} does not "
            f"fit the model's context window of {window} tokens. Shorten the question or lower "
            "max_tokens."))
    limit = budget = _room(fixed, window, max_tokens, source_tokens)
    blocks: list[str] = []
    kept: list[Source] = []
    for src in ranked:
        src = replace(src, n=len(kept) + 1)
        block = prompts.format_source(src.n, src.title, src.url, src.snippet)
        cost = counter.count(block) + BLOCK_SEPARATOR
        if cost > budget:
            room = budget - (cost - counter.count(src.snippet)) - BLOCK_SEPARATOR
            if room < MIN_SHORTENED_SOURCE:
                break
            src.snippet = counter.truncate(src.snippet, room).rstrip() + " …"
            block = prompts.format_source(src.n, src.title, src.url, src.snippet)
            cost = counter.count(block) + BLOCK_SEPARATOR
            if cost > budget:
                break
        blocks.append(block)
        kept.append(src)
        budget -= cost
        if budget <= MESSAGE_OVERHEAD:
            break
    while blocks and sources_text_tokens(counter, blocks) > limit:  # sums of parts are estimates
        blocks.pop()
        kept.pop()
    return FittedPrompt(kept, prompts.answer_messages(question, blocks))
