"""Fitting the prompt into the model's context window minus max_tokens.

Sources go in rank order while they fit; the first that does not fit is shortened when a
useful part of it fits (else left out), and every lower-ranked source is left out. The
question is never cut: when it alone does not fit, the result says so (context_overflow).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from opencite.app.rag import prompts
from opencite.app.answer import Source
from opencite.app.rag.tokens import MESSAGE_OVERHEAD, TokenCounter, count_messages

MIN_SHORTENED_SOURCE = 64  # tokens: a source shorter than this after trimming is dropped instead
SAFETY_MARGIN = 16  # tokens kept free beyond the counted prompt
BLOCK_SEPARATOR = 2  # the blank line between source blocks


@dataclass
class FittedPrompt:
    sources: list[Source]  # the ones in the prompt, numbered 1..n
    prompt: list[dict]  # chat messages
    overflow: str | None = None  # set when even the question does not fit


def fit_prompt(question: str, ranked: list[Source], counter: TokenCounter, window: int,
               max_tokens: int) -> FittedPrompt:
    bare = prompts.answer_messages(question, [])
    fixed = count_messages(counter, bare) - counter.count(prompts.NO_SOURCES)
    budget = window - max_tokens - fixed - SAFETY_MARGIN
    if budget <= 0:
        return FittedPrompt(ranked, [], (
            f"The question needs about {fixed} tokens, which with max_tokens={max_tokens} does not "
            f"fit the model's context window of {window} tokens. Shorten the question or lower "
            "max_tokens."))
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
    return FittedPrompt(kept, prompts.answer_messages(question, blocks))
