"""Formatting chain results as OpenAI chat completions: the SSE stream, citations, usage.

The stream reads ahead to the chain's first token or error so an LLM that is down answers with a
real 503; after the first byte an error travels as an OpenAI error chunk. When the client hangs
up, Starlette cancels the response task and the `finally` closes the chain's generator (and with
it the LLM request), so the work stops with the client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import anyio
from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from opencite.app.api_errors import APIError

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


async def stream_completion(app: FastAPI, chain, model: str, messages, options, completion_id, created,
                            include_usage, max_tokens, on_answer=lambda answer: None):
    """Start the chain, read up to its first token or error, then stream SSE chunks.
    `on_answer` gets the finished answer, or None when the chain failed (metrics).

    Reading ahead lets an LLM that is down answer with a real 503 instead of a 200 stream that
    fails; after the first byte an error travels as an OpenAI error chunk.
    """
    stats: GenerationStats = app.state.stats
    events = chain.astream(messages, **options).__aiter__()
    stats.active += 1
    stats.started += 1
    head: list = []
    sources: list = []
    try:
        async for event in events:
            head.append(event)
            if hasattr(event, "sources") and not hasattr(event, "answer"):
                sources = event.sources
                continue
            break
    except BaseException as exc:
        stats.active -= 1
        with anyio.CancelScope(shield=True):
            await events.aclose()
        if isinstance(exc, Exception):
            on_answer(None)
        if isinstance(exc, Exception) and index_failure(exc):
            raise index_unavailable(exc) from exc
        raise
    first = head[-1] if head else None
    if first is not None and is_error(first):
        on_answer(None)
        stats.active -= 1
        with anyio.CancelScope(shield=True):
            await events.aclose()
        raise chain_error(first.kind, first.message)

    def chunk(delta: dict, finish_reason=None, **extra) -> str:
        body = {
            "id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if include_usage:
            body["usage"] = None
        body.update(extra)
        return f"data: {json.dumps(body, separators=(',', ':'))}\n\n"

    async def sse():
        finished = False
        n_tokens = 0
        sent: list[str] = []
        try:
            yield chunk({"role": "assistant", "content": ""})

            async def all_events():
                for event in head:
                    yield event
                async for event in events:
                    yield event

            async for event in all_events():
                if hasattr(event, "text"):
                    if event.text:
                        n_tokens += 1
                        sent.append(event.text)
                        yield chunk({"content": event.text})
                elif is_error(event):
                    on_answer(None)
                    status, code = CHAIN_ERRORS.get(event.kind, (500, event.kind))
                    err = APIError(status, event.message, code=code).body()
                    yield f"data: {json.dumps(err)}\n\n"
                    finished = True
                    break
                elif hasattr(event, "answer"):
                    answer = event.answer
                    on_answer(answer)
                    usage = usage_of(answer, n_tokens)
                    annotations, attributions = attribution_fields(answer, "".join(sent))
                    citations = {"citations": [source_json(s) for s in answer.cited],
                                 "sources": [source_json(s) for s in answer.sources],
                                 "attributions": attributions}
                    delta = {"annotations": annotations} if annotations else {}
                    yield chunk(delta, finish_reason_of(usage, max_tokens), **citations)
                    if include_usage:
                        body = {"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                "model": model, "system_fingerprint": None, "choices": [], "usage": usage,
                                **citations}
                        yield f"data: {json.dumps(body, separators=(',', ':'))}\n\n"
                    finished = True
                    break
            yield "data: [DONE]\n\n"
        finally:
            # Runs on normal end and when the client hangs up (Starlette cancels this task):
            # closing the chain's generator closes its LLM request, freeing the server's work.
            if not finished:
                stats.cancelled += 1
            with anyio.CancelScope(shield=True):
                await events.aclose()
            stats.active -= 1

    headers = {"cache-control": "no-cache", "x-accel-buffering": "no", **source_headers(sources)}
    return StreamingResponse(sse(), media_type="text/event-stream", headers=headers)


def is_error(event) -> bool:
    return hasattr(event, "kind") and hasattr(event, "message")



def chain_error(kind: str | None, message: str) -> APIError:
    status, code = CHAIN_ERRORS.get(kind or "", (500, kind or "internal_error"))
    return APIError(status, message, code=code, param="messages" if code == "context_length_exceeded" else None)



def source_json(s) -> dict:
    return {"n": s.n, "title": s.title, "url": s.url, "snippet": s.snippet, "score": float(s.score),
            "heading_path": getattr(s, "heading_path", ""), "chunk_id": getattr(s, "chunk_id", "")}



def attribution_fields(answer, streamed: str | None = None) -> tuple[list[dict], dict | None]:
    """OpenAI `url_citation` annotations and the `attributions` extension of an answer (none
    when attribution is off). For a stream, annotation spans index the text it sent."""
    from opencite.app.attribution import annotations, attributions_json

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



def usage_of(answer, streamed_tokens: int | None) -> dict:
    usage = answer.usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or streamed_tokens or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}



def finish_reason_of(usage: dict, max_tokens: int | None) -> str:
    return "length" if max_tokens and usage["completion_tokens"] >= max_tokens else "stop"


def index_failure(exc: Exception) -> bool:
    """The index (Chroma) failing under a request is a 503; anything else stays an unexpected
    error (500) so bugs are not disguised."""
    from opencite.ingest.index import IndexError_

    return isinstance(exc, IndexError_) or type(exc).__module__.startswith("chromadb")



def index_unavailable(exc: Exception) -> APIError:
    return APIError(503, f"The index is unavailable: {exc}. Fix: check the Chroma server "
                    "(OPENCITE_CHROMA__URL) or run `opencite ingest`.", code="index_unavailable")
