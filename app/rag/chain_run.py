"""One request's state as it goes through the chain, the numbered sources it carries, and the
error event an LLM failure becomes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

import openai

from opencite.app.answer import DoneEvent, ErrorEvent, Event, RagAnswer, Source, TokenEvent
from opencite.app.citations.markers import CitationFilter
from opencite.store import constants as C


@dataclass
class ChainRun:
    """One request's state as it goes through the chain's steps."""

    question: str
    history: list[dict]
    options: dict
    llm_options: dict
    t0: float = field(default_factory=time.perf_counter)
    standalone: str = ""
    sources: list[Source] = field(default_factory=list)
    prompt: list[dict] = field(default_factory=list)
    filter: CitationFilter | None = None
    parts: list[str] = field(default_factory=list)
    generated: list[str] = field(default_factory=list)  # the LLM's text before the citation filter
    timings: dict = field(default_factory=dict)
    usage: dict | None = None
    error: str | None = None
    error_kind: str | None = None
    finished: bool = False
    finish_reason: str | None = None
    warming: Future | None = None  # attribution's work on the sources, done while the LLM writes

    def tokens(self, chunk) -> Iterator[Event]:
        reason = (getattr(chunk, "response_metadata", None) or {}).get("finish_reason")
        self.finish_reason = reason or self.finish_reason
        usage = getattr(chunk, "usage_metadata", None)
        if usage:
            self.usage = {"prompt_tokens": usage.get("input_tokens", 0),
                          "completion_tokens": usage.get("output_tokens", 0)}
        text = chunk.content if isinstance(chunk.content, str) else ""
        self.generated.append(text)
        safe = self.filter.feed(text) if text else ""
        if safe:
            self.timings.setdefault("first_token_s", time.perf_counter() - self.t0)
            self.parts.append(safe)
            yield TokenEvent(safe)

    def flush(self) -> Iterator[Event]:
        rest = self.filter.flush()
        if rest:
            self.timings.setdefault("first_token_s", time.perf_counter() - self.t0)
            self.parts.append(rest)
            yield TokenEvent(rest)

    def fail(self, kind: str, message: str) -> ErrorEvent:
        self.error_kind, self.error = kind, message
        return ErrorEvent(kind, message)

    def done(self) -> DoneEvent:
        self.timings["total_s"] = time.perf_counter() - self.t0
        answer = "".join(self.parts).strip()
        cited_numbers = self.filter.cited if self.filter else set()
        return DoneEvent(RagAnswer(
            question=self.question,
            standalone_question=self.standalone or self.question,
            answer=answer,
            sources=self.sources,
            cited=[s for s in self.sources if s.n in cited_numbers],
            dropped_markers=self.filter.dropped if self.filter else 0,
            error=self.error,
            error_kind=self.error_kind,
            usage=self.usage,
            timings=dict(self.timings),
            finish_reason=self.finish_reason,
        ))


def numbered_sources(hits) -> list[Source]:
    """Retrieval hits `(document, score)` as the chain's sources, numbered from 1 in rank order
    (the numbers of the `[n]` markers)."""
    return [_source(n, doc, score) for n, (doc, score) in enumerate(hits, start=1)]


def _source(n: int, doc, score: float) -> Source:
    meta = doc.metadata or {}
    url = str(meta.get(C.SOURCE) or "")
    return Source(
        n=n,
        title=str(meta.get(C.TITLE) or url or "untitled"),
        url=url,
        snippet=doc.page_content,
        score=float(score),
        heading_path=str(meta.get(C.HEADING_PATH) or ""),
        chunk_id=str(doc.id or ""),
    )


def llm_failure(run: ChainRun, exc: Exception, where: str) -> ErrorEvent:
    """The run failed by the LLM at `where`: the error event saying what happened and what to do."""
    if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError)):
        return run.fail("llm_unavailable", (
            f"The LLM at {where} is unreachable ({type(exc).__name__}). Start it with "
            "`opencite serve` (or `opencite up`), or point OPENCITE_LLM__BASE_URL at a running "
            "OpenAI-compatible server. The retrieved sources are shown below."))
    status = getattr(exc, "status_code", None)
    detail = str(exc)[:300]
    if isinstance(exc, openai.BadRequestError) and "context" in detail.lower():
        return run.fail("context_overflow", f"The LLM at {where} rejected the prompt as too long: "
                        f"{detail}. Lower k or max_tokens, or set OPENCITE_LLM__CONTEXT_WINDOW.")
    return run.fail("llm_error", (
        f"The LLM at {where} failed{f' with HTTP {status}' if status else ''}: {detail}. "
        "The retrieved sources are shown below."))
