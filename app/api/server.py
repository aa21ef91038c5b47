"""The OpenAI-compatible RAG API: any OpenAI client gets cited answers from opencite.

Routes: `POST /v1/chat/completions` (streaming SSE and not), `GET /v1/models`, `GET /health`.
Each knowledge base is a model (`app/api/models.py`); keys may be scoped to KBs (`app/api/keys.py`).
Citations travel inline as `[n]` markers and in the extension field `citations` (the cited
sources) plus `sources` (everything retrieved) on the response object and on the final stream
chunk; OpenAI SDKs keep unknown fields in `model_extra`. The retrieved sources also travel in
the `x-opencite-sources` header (no snippets) for clients that only expose headers (LangChain
with `include_response_headers=True`).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response

from opencite.app.api.errors import APIError, install_error_handlers
from opencite.app.api.guard import ApiGuard
from opencite.app.api.keys import ALL_KBS, load_keyring
from opencite.app.api.metrics import ApiMetrics, RequestObserver
from opencite.app.api.models import KbModels
from opencite.app.api.schemas import ChatCompletionRequest
from opencite.app.api.completion import completion_json
from opencite.app.api.stream import (ChunkBuilder, GenerationStats, chain_error, generation, index_failure,
                                     index_unavailable, source_headers, stream_completion)
from opencite.settings import Settings, get_settings

log = logging.getLogger(__name__)


def warm(chain) -> None:
    """Loads what the first question would wait for (the embedder: seconds on a CPU; the BM25
    index; the tokenizer), so the first answer's first token waits only for the LLM."""
    try:
        chain.prepare([{"role": "user", "content": "warm-up"}])
    except Exception as exc:  # the API serves anyway; the first question loads what is missing
        log.info("warm-up skipped: %s: %s", type(exc).__name__, exc)

def create_app(settings: Settings | None = None, chain=None, default_kb: str = "default",
               open_chain=None) -> FastAPI:
    """The API app over every knowledge base of `settings.data_dir`. The bare model id answers
    from `default_kb`, with `chain` (default: a `RagChain` built at startup); the other KBs with
    `open_chain(kb_settings)` (default: a `RagChain` over the KB's index). A keys file that
    cannot be read raises `KeysFileError` here, before anything is served."""
    settings = settings or get_settings()
    api = settings.api
    keyring = load_keyring(api.keys_file, api.api_key.get_secret_value() if api.api_key else None)
    models = KbModels(settings, default_kb, chain, open_chain)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.chain = models.open_default()
        threading.Thread(target=warm, args=(app.state.chain,), name="opencite-warm", daemon=True).start()
        yield

    app = FastAPI(
        title="opencite RAG API",
        version="1",
        summary="OpenAI-compatible chat completions answered from your indexed pages, with citations.",
        lifespan=lifespan,
    )
    app.state.chain = chain
    app.state.models = models
    app.state.settings = settings
    app.state.stats = GenerationStats()
    metrics = app.state.metrics = ApiMetrics(lambda: app.state.stats.active)
    install_error_handlers(app)

    # Last added runs first: CORS answers preflights before the key check (browsers send none).
    app.add_middleware(
        ApiGuard,
        keyring=keyring,
        max_request_bytes=api.max_request_bytes,
    )
    app.add_middleware(RequestObserver, metrics=metrics)  # outside the guard: 401s and 413s count too
    if api.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=api.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            # "*": the OpenAI JS SDK sends many x-stainless-* headers; no cookies are involved.
            allow_headers=["*"],
            allow_credentials=False,
            expose_headers=["x-opencite-sources", "x-request-id"],
        )

    def observe(kb: str, answer) -> None:
        if answer is None:
            metrics.observe_error(kb)
        else:
            metrics.observe_answer(kb, answer)

    def model_card(model_id: str) -> dict:
        return {"id": model_id, "object": "model", "created": 0, "owned_by": "opencite"}

    @app.get("/health")
    async def health() -> dict:
        stats = app.state.stats
        return {
            "status": "ok" if app.state.chain is not None else "starting",
            "model": api.model_id,
            "index": settings.index_identity,
            "active_generations": stats.active,
            "started_generations": stats.started,
            "cancelled_generations": stats.cancelled,
        }

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(request: Request) -> Response:
        # KB names and traffic of every KB: only a key that reads every KB may see them.
        if ALL_KBS not in request.state.api_key.kbs:
            raise APIError(403, "Metrics cover every knowledge base. Fix: scrape with a key whose kbs are "
                           "[\"*\"] (or OPENCITE_API__API_KEY).", code="permission_denied")
        return Response(metrics.exposition(), media_type=metrics.content_type)

    @app.get("/v1/models")
    async def list_models(request: Request) -> dict:
        return {"object": "list", "data": [model_card(m) for m in models.model_ids(request.state.api_key)]}

    @app.get("/v1/models/{model:path}")
    async def get_model(model: str, request: Request) -> dict:
        models.resolve(model, request.state.api_key)
        return model_card(model)

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
        kb, chain = await models.answerer(body.model, request.state.api_key)
        request.state.kb = kb
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
            chunk = ChunkBuilder(completion_id, created, body.model, include_usage)
            return await stream_completion(app, chain, messages, options, chunk,
                                           on_answer=lambda answer: observe(kb, answer))
        try:
            with generation(stats):
                answer = await chain.ainvoke(messages, **options)
        except Exception as exc:
            metrics.observe_error(kb)
            if index_failure(exc):
                raise index_unavailable(exc) from exc
            raise
        metrics.observe_answer(kb, answer)
        if answer.error:
            raise chain_error(answer.error_kind, answer.error)
        return JSONResponse(completion_json(answer, body.model, completion_id, created),
                            headers=source_headers(answer.sources))

    return app

