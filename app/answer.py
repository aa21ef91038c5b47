"""The chain's result and stream event types (the contract the API, the UI and eval use;
import them from opencite.app.rag.chain)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from opencite.app.citations.verdicts import Attribution


@dataclass
class Source:
    n: int  # 1-based number used in [n] markers, prompt order
    title: str
    url: str
    snippet: str  # chunk text, plain text (never rendered as HTML)
    score: float  # relevance, higher is better
    heading_path: str = ""
    chunk_id: str = ""
    # Not in the prompt: found in the knowledge base after generation for a sentence no prompt
    # source supported (numbered after the prompt's sources; app/rag/lookup.py).
    found_after: bool = False


@dataclass
class RagAnswer:
    question: str
    standalone_question: str
    answer: str
    sources: list[Source]
    cited: list[Source]
    dropped_markers: int
    error: str | None = None
    error_kind: str | None = None  # llm_unavailable | llm_error | empty_index | context_overflow
    # prompt_tokens / completion_tokens as the LLM reported them; when the server reports none,
    # counted with the served model's tokenizer (usage_counted_by = "tokenizer" or "estimate").
    usage: dict | None = None
    timings: dict | None = None
    finish_reason: str | None = None  # the LLM's: stop | length | ...
    # Each sentence checked against the sources (None when OPENCITE_ATTRIBUTION__MODE=off or
    # the answer failed); `answer` and `cited` already follow its mode.
    attribution: "Attribution | None" = None


@dataclass
class SourcesEvent:
    sources: list[Source]


@dataclass
class TokenEvent:
    text: str


@dataclass
class ErrorEvent:
    kind: str
    message: str


@dataclass
class DoneEvent:
    answer: RagAnswer


Event = Union[SourcesEvent, TokenEvent, ErrorEvent, DoneEvent]
