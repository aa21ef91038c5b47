"""The OpenAI-compatible RAG API: any OpenAI client gets cited answers from opencite.

Routes: `POST /v1/chat/completions` (streaming SSE and not), `GET /v1/models`, `GET /health`.
Citations travel inline as `[n]` markers and in the extension field `citations` (the cited
sources) plus `sources` (everything retrieved) on the response object and on the final stream
chunk; OpenAI SDKs keep unknown fields in `model_extra`. The retrieved sources also travel in
the `x-opencite-sources` header (no snippets) for clients that only expose headers (LangChain
with `include_response_headers=True`).
"""

from __future__ import annotations

import json
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, StreamingResponse

from opencite.app.api_errors import APIError, install_error_handlers
from opencite.app.api_guard import ApiGuard
from opencite.app.api_schemas import ChatCompletionRequest
from opencite.settings import Settings, get_settings

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


def create_app(settings: Settings | None = None, chain=None) -> FastAPI:
    """The API app. `chain` defaults to a `RagChain(settings)` built at startup."""
    settings = settings or get_settings()
    api = settings.api

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.chain is None:
            from opencite.app.chain import RagChain

            chain = RagChain(settings)
            # Open the index now: a missing or locked index stops `opencite api` with its own
            # clear message instead of failing every request later.
            chain.index  # noqa: B018
            app.state.chain = chain
        yield

    app = FastAPI(
        title="opencite RAG API",
        version="1",
        summary="OpenAI-compatible chat completions answered from your indexed pages, with citations.",
        lifespan=lifespan,
    )
    app.state.chain = chain
    app.state.settings = settings
    app.state.stats = GenerationStats()
    install_error_handlers(app)

    # Last added runs first: CORS answers preflights before the key check (browsers send none).
    app.add_middleware(
        ApiGuard,
        api_key=api.api_key.get_secret_value() if api.api_key else None,
        max_request_bytes=api.max_request_bytes,
    )
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=api.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["authorization", "content-type", "openai-organization", "openai-project",
                           "x-stainless-*"],
            allow_credentials=False,
            expose_headers=["x-opencite-sources", "x-request-id"],
        )

    def model_card() -> dict:
        return {"id": api.model_id, "object": "model", "created": 0, "owned_by": "opencite"}

    @app.get("/health")
    async def health() -> dict:
        stats = app.state.stats
        return {
            "status": "ok" if app.state.chain is not None else "starting",
            "model": api.model_id,
            "active_generations": stats.active,
            "started_generations": stats.started,
            "cancelled_generations": stats.cancelled,
        }

    @app.get("/v1/models")
    async def list_models() -> dict:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model}")
    async def get_model(model: str) -> dict:
        if model != api.model_id:
            raise _model_not_found(model, api.model_id)
        return model_card()

    @app.post(
        "/v1/chat/completions",
        responses={
            400: {"description": "Invalid or unsupported request (OpenAI error object)"},
            401: {"description": "Missing or wrong API key"},
            404: {"description": "Unknown model"},
            413: {"description": "Request too large"},
            429: {"description": "Too many concurrent generations"},
            503: {"description": "The LLM or the index is unavailable"},
        },
    )
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        if body.model != api.model_id:
            raise _model_not_found(body.model, api.model_id)
        body.check_supported()
        stats: GenerationStats = app.state.stats
        if stats.active >= api.max_concurrent_generations:
            raise APIError(429, f"Too many concurrent generations ({stats.active}); retry shortly or raise "
                           "OPENCITE_API__MAX_CONCURRENT_GENERATIONS.", code="rate_limit_exceeded",
                           headers={"retry-after": "1"})
        messages, options = body.chain_messages(), body.chain_options()
        completion_id = f"chatcmpl-{uuid.uuid4().hex}"
        created = int(time.time())
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return await _stream(app, messages, options, completion_id, created, include_usage,
                                 max_tokens=options.get("max_tokens"))
        stats.active += 1
        stats.started += 1
        try:
            answer = await app.state.chain.ainvoke(messages, **options)
        except Exception as exc:
            raise _unavailable(exc) from exc
        finally:
            stats.active -= 1
        if answer.error:
            raise _chain_error(answer.error_kind, answer.error)
        usage = _usage(answer, None)
        return JSONResponse(
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": created,
                "model": api.model_id,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.answer, "refusal": None},
                    "logprobs": None,
                    "finish_reason": _finish_reason(usage, options.get("max_tokens")),
                }],
                "usage": usage,
                "system_fingerprint": None,
                "citations": [_source(s) for s in answer.cited],
                "sources": [_source(s) for s in answer.sources],
                "standalone_question": answer.standalone_question,
            },
            headers=_source_headers(answer.sources),
        )

    return app


async def _stream(app: FastAPI, messages, options, completion_id, created, include_usage, max_tokens):
    """Start the chain, read up to its first token or error, then stream SSE chunks.

    Reading ahead lets an LLM that is down answer with a real 503 instead of a 200 stream that
    fails; after the first byte an error travels as an OpenAI error chunk.
    """
    settings: Settings = app.state.settings
    stats: GenerationStats = app.state.stats
    model = settings.api.model_id
    events = app.state.chain.astream(messages, **options).__aiter__()
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
            raise _unavailable(exc) from exc
        raise
    first = head[-1] if head else None
    if first is not None and _is_error(first):
        stats.active -= 1
        with anyio.CancelScope(shield=True):
            await events.aclose()
        raise _chain_error(first.kind, first.message)

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
                        yield chunk({"content": event.text})
                elif _is_error(event):
                    status, code = CHAIN_ERRORS.get(event.kind, (500, event.kind))
                    err = APIError(status, event.message, code=code).body()
                    yield f"data: {json.dumps(err)}\n\n"
                    finished = True
                    break
                elif hasattr(event, "answer"):
                    answer = event.answer
                    usage = _usage(answer, n_tokens)
                    citations = {"citations": [_source(s) for s in answer.cited],
                                 "sources": [_source(s) for s in answer.sources]}
                    yield chunk({}, _finish_reason(usage, max_tokens), **citations)
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

    headers = {"cache-control": "no-cache", "x-accel-buffering": "no", **_source_headers(sources)}
    return StreamingResponse(sse(), media_type="text/event-stream", headers=headers)


def _unavailable(exc: Exception) -> Exception:
    """The index (Chroma) failing under a request is a 503 with its message; anything else
    stays an unexpected error (500) so bugs are not disguised."""
    from opencite.ingest.index import IndexError_

    if isinstance(exc, IndexError_) or type(exc).__module__.startswith("chromadb"):
        return APIError(503, f"The index is unavailable: {exc}. Fix: check the Chroma server "
                        "(OPENCITE_CHROMA__URL) or run `opencite ingest`.", code="index_unavailable")
    return exc


def _is_error(event) -> bool:
    return hasattr(event, "kind") and hasattr(event, "message")


def _chain_error(kind: str | None, message: str) -> APIError:
    status, code = CHAIN_ERRORS.get(kind or "", (500, kind or "internal_error"))
    return APIError(status, message, code=code, param="messages" if code == "context_length_exceeded" else None)


def _model_not_found(model: str, model_id: str) -> APIError:
    return APIError(404, f"The model '{model}' does not exist. This API serves '{model_id}' "
                    "(the raw LLM stays at the LLM server).", code="model_not_found", param="model")


def _source(s) -> dict:
    return {"n": s.n, "title": s.title, "url": s.url, "snippet": s.snippet, "score": float(s.score),
            "heading_path": getattr(s, "heading_path", ""), "chunk_id": getattr(s, "chunk_id", "")}


def _source_headers(sources) -> dict:
    # ASCII JSON (titles escaped), no snippets: headers must stay small.
    compact = [{"n": s.n, "title": s.title[:200], "url": s.url, "score": round(float(s.score), 4)}
               for s in sources]
    return {"x-opencite-sources": json.dumps(compact, separators=(",", ":"))}


def _usage(answer, streamed_tokens: int | None) -> dict:
    usage = answer.usage or {}
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or streamed_tokens or 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def _finish_reason(usage: dict, max_tokens: int | None) -> str:
    return "length" if max_tokens and usage["completion_tokens"] >= max_tokens else "stop"
