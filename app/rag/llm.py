"""The chat model the chain talks to: ChatOpenAI against the configured endpoint."""

from __future__ import annotations

from dataclasses import dataclass

import openai
from langchain_openai import ChatOpenAI

from opencite.serving.endpoint import resolve_llm
from opencite.serving.health import probe
from opencite.settings import Settings

@dataclass
class Endpoint:
    base_url: str
    api_key: str
    model: str
    context_window: int


def resolve_endpoint(settings: Settings) -> Endpoint:
    """Where the LLM is, as the serving component resolves it (settings.llm over the local server)."""
    ep = resolve_llm(settings)
    return Endpoint(ep.base_url, ep.api_key or "not-needed", ep.model, int(ep.context_window))


def chat_model(settings: Settings, endpoint: Endpoint) -> ChatOpenAI:
    return ChatOpenAI(
        model=endpoint.model,
        base_url=endpoint.base_url,
        api_key=endpoint.api_key,
        temperature=settings.llm.temperature,
        max_tokens=settings.llm.max_tokens,
        timeout=settings.llm.timeout,
        max_retries=settings.llm.max_retries,
        stream_usage=True,
        # Its own async connection pool: LangChain's default is shared process-wide, and a pool
        # used under one event loop fails under the next (two asyncio.run, or a test after a test).
        http_async_client=openai.DefaultAsyncHttpxClient(),
    )


def model_status(endpoint: Endpoint, timeout: float = 3.0) -> tuple[bool, str]:
    """(reachable, the served models or the problem), for the UI sidebar."""
    found = probe(endpoint.base_url, endpoint.api_key, timeout=timeout)
    if not found.ok:
        return False, f"unreachable ({found.message})"
    return True, ", ".join(m for m in found.models or [] if m) or "(no models listed)"
