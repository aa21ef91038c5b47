"""Formatting chain results as OpenAI chat completions: the SSE stream, citations, usage.

The stream reads ahead to the chain's first token or error so an LLM that is down answers with a
real 503; after the first byte an error travels as an OpenAI error chunk. When the client hangs
up, Starlette cancels the response task and the `finally` closes the chain's generator (and with
it the LLM request), so the work stops with the client.
"""

from __future__ import annotations

import json
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass
from typing import AsyncIterator, Iterator

import anyio
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from opencite.app.answer import DoneEvent, ErrorEvent, Event, SourcesEvent, TokenEvent
from opencite.app.api.errors import APIError

# Chain error kinds (contract) -> HTTP status and OpenAI error code.
CHAIN_ERRORS = {
    "llm_unavailable": (503, "llm_unavailable"),
    "llm_error": (502, "llm_error"),
    "context_overflow": (400, "context_length_exceeded"),
    "empty_index": (503, "empty_index"),
}


@dataclass
class GenerationStats:
    """Work in flight, shown in /health; tests check it returns to 0 after a client hangs up."""

    active: int = 0
    started: int = 0
    cancelled: int = 0  # streams whose client disconnected before the answer finished


@contextmanager
def generation(stats: GenerationStats) -> Iterator[None]:
    """One generation in flight, counted for as long as it runs, whichever way it ends."""
    stats.active += 1
    stats.started += 1
    try:
        yield
    finally:
        stats.active -= 1


def sse(body: dict) -> str:
    return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"


@dataclass
class ChunkBuilder:
    """Every `chat.completion.chunk` of one answer."""

    completion_id: str
    created: int
    model: str
    include_usage: bool

    def __call__(self, choices: list, **extra) -> str:
        body = {"id": self.completion_id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": choices}
        if self.include_usage:
            body["usage"] = None  # on every chunk but the last (OpenAI's stream_options contract)
        return sse(dict(body, **extra))

    def delta(self, delta: dict, finish_reason: str | None = None, **extra) -> str:
        return self([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}], **extra)

    def final(self, answer, streamed: str) -> list[str]:
        """The last chunk (finish reason, citations, sources, attributions, and `opencite`: the
        answer as a non-streamed response carries it) and, when asked for, the usage chunk: the
        one place a stream's closing data is made.

        The deltas carried the text as the LLM wrote it; attribution may then have repaired its
        markers. `opencite.content` is the final text (equal to a non-streamed response's
        `message.content`), `opencite.annotations` index it, and so do `attributions`; the
        delta's own `annotations` index the streamed text. OpenAI clients keep the unknown field
        (`model_extra` in Python, a plain property in JS) and never append it to the content."""
        annotations, attributions = attribution_fields(answer, streamed)
        final_notes, _ = attribution_fields(answer)
        extension = {"citations": [source_json(s) for s in answer.cited],
                     "sources": [source_json(s) for s in answer.sources], "attributions": attributions,
                     "opencite": {"content": answer.answer, "annotations": final_notes,
                                  "repaired": answer.answer != streamed.strip(),
                                  "timings": answer.timings or {}}}
        delta = {"annotations": annotations} if annotations else {}
        chunks = [self.delta(delta, finish_reason_of(answer), **extension)]
        if self.include_usage:
            chunks.append(self([], **dict(extension, usage=usage_of(answer))))
        return chunks


async def stream_completion(app: FastAPI, chain, messages, options, chunk: ChunkBuilder,
                            on_answer=lambda answer: None):
    """Start the chain, read up to its first token or error, then stream SSE chunks.
    `on_answer` gets the finished answer, or None when the chain failed (metrics).

    Reading ahead lets an LLM that is down answer with a real 503 instead of a 200 stream that
    fails; after the first byte an error travels as an OpenAI error chunk.
    """
    stats: GenerationStats = app.state.stats
    cleanup = AsyncExitStack()  # ends the generation count and the chain, whichever way we stop
    cleanup.enter_context(generation(stats))
    try:
        events = chain.astream(messages, **options).__aiter__()
        cleanup.push_async_callback(_close, events)
        head = await _read_ahead(events)
    except BaseException as exc:
        await cleanup.aclose()
        if isinstance(exc, Exception):
            on_answer(None)
            if index_failure(exc):
                raise index_unavailable(exc) from exc
        raise
    if isinstance(head[-1], ErrorEvent):
        on_answer(None)
        await cleanup.aclose()
        raise chain_error(head[-1].kind, head[-1].message)
    sources = next((e.sources for e in head if isinstance(e, SourcesEvent)), [])

    async def body():
        finished = False
        async with cleanup:
            try:
                yield chunk.delta({"role": "assistant", "content": ""})
                sent: list[str] = []
                async for event in _replay(head, events):
                    if isinstance(event, TokenEvent) and event.text:
                        sent.append(event.text)
                        yield chunk.delta({"content": event.text})
                    elif isinstance(event, ErrorEvent):
                        on_answer(None)
                        yield sse(chain_error(event.kind, event.message).body())
                        break
                    elif isinstance(event, DoneEvent):
                        on_answer(event.answer)
                        for final in chunk.final(event.answer, "".join(sent)):
                            yield final
                        break
                finished = True
                yield "data: [DONE]\n\n"
            finally:
                if not finished:  # the client hung up (Starlette cancelled this task)
                    stats.cancelled += 1

    headers = {"cache-control": "no-cache", "x-accel-buffering": "no", **source_headers(sources)}
    return StreamingResponse(body(), media_type="text/event-stream", headers=headers)


async def _read_ahead(events) -> list[Event]:
    """The chain's events up to its first token, error or answer (the sources come before)."""
    head: list[Event] = []
    async for event in events:
        head.append(event)
        if not isinstance(event, SourcesEvent):
            break
    return head


async def _replay(head: list[Event], events) -> AsyncIterator[Event]:
    for event in head:
        yield event
    async for event in events:
        yield event


async def _close(events) -> None:
    # Closing the chain's generator closes its LLM request, freeing the server's work; shielded
    # so it still runs when the client's disconnect cancels the response task.
    with anyio.CancelScope(shield=True):
        await events.aclose()


def chain_error(kind: str | None, message: str) -> APIError:
    status, code = CHAIN_ERRORS.get(kind or "", (500, kind or "internal_error"))
    return APIError(status, message, code=code, param="messages" if code == "context_length_exceeded" else None)


def source_json(s) -> dict:
    return {"n": s.n, "title": s.title, "url": s.url, "snippet": s.snippet, "score": float(s.score),
            "heading_path": getattr(s, "heading_path", ""), "chunk_id": getattr(s, "chunk_id", ""),
            "found_after": bool(getattr(s, "found_after", False))}


def attribution_fields(answer, streamed: str | None = None) -> tuple[list[dict], dict | None]:
    """OpenAI `url_citation` annotations and the `attributions` extension of an answer (none
    when attribution is off). For a stream, annotation spans index the text it sent."""
    from opencite.app.citations.annotations import annotations, attributions_json

    if answer.attribution is None:
        return [], None
    if streamed is None:
        notes = annotations(answer.attribution, answer.sources)
    else:  # the chain's answer is the streamed text stripped
        notes = annotations(answer.attribution, answer.sources, written=True,
                            offset=len(streamed) - len(streamed.lstrip()))
    return notes, attributions_json(answer.attribution, answer.sources)


def source_headers(sources) -> dict:
    # ASCII JSON (titles escaped), no snippets: headers must stay small.
    compact = [{"n": s.n, "title": s.title[:200], "url": s.url, "score": round(float(s.score), 4)}
               for s in sources]
    return {"x-opencite-sources": json.dumps(compact, separators=(",", ":"))}


def usage_of(answer) -> dict:
    """The LLM's own token counts (or the chain's count with the served model's tokenizer when
    the server reports none; see RagChain), in OpenAI's shape."""
    usage = answer.usage or {}
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def finish_reason_of(answer) -> str:
    """The LLM's finish reason ("stop", "length", ...)."""
    return answer.finish_reason or "stop"


def index_failure(exc: Exception) -> bool:
    """The index (Chroma) failing under a request is a 503; anything else stays an unexpected
    error (500) so bugs are not disguised."""
    from opencite.store.errors import IndexError_

    return isinstance(exc, IndexError_) or type(exc).__module__.startswith("chromadb")


def index_unavailable(exc: Exception) -> APIError:
    return APIError(503, f"The index is unavailable: {exc}. Fix: check the Chroma server "
                    "(OPENCITE_CHROMA__URL) or run `opencite ingest`.", code="index_unavailable")
