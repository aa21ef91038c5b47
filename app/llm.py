"""The chat model the chain talks to: ChatOpenAI against the configured endpoint."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import openai
from langchain_openai import ChatOpenAI

from opencite.settings import Settings

DEFAULT_CONTEXT_WINDOW = 4096  # when neither settings nor a serving preset says


@dataclass
class Endpoint:
    base_url: str
    api_key: str
    model: str
    context_window: int


def resolve_endpoint(settings: Settings) -> Endpoint:
    """The serving component's resolve_llm() when present, else settings.llm directly."""
    try:
        from opencite.serving.endpoint import resolve_llm
    except ImportError:
        resolve_llm = None
    if resolve_llm is not None:
        ep = resolve_llm(settings)
        return Endpoint(ep.base_url, _secret(ep.api_key), ep.model, int(ep.context_window))
    llm = settings.llm
    base_url = llm.base_url or f"http://{settings.serve.host}:{settings.serve.port}/v1"
    model = llm.model or settings.serve.served_model_name or _first_served_model(base_url, settings)
    return Endpoint(
        base_url=base_url.rstrip("/"),
        api_key=_secret(llm.api_key),
        model=model or settings.serve.preset,
        context_window=llm.context_window or DEFAULT_CONTEXT_WINDOW,
    )


def _secret(value) -> str:
    if hasattr(value, "get_secret_value"):
        value = value.get_secret_value()
    return value or "not-needed"


def _first_served_model(base_url: str, settings: Settings) -> str | None:
    try:
        r = httpx.get(
            f"{base_url.rstrip('/')}/models",
            headers={"Authorization": f"Bearer {_secret(settings.llm.api_key)}"},
            timeout=3,
        )
        r.raise_for_status()
        data = r.json().get("data") or []
        return data[0]["id"] if data else None
    except Exception:
        return None


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
    """(reachable, message) from GET /models, for the UI sidebar and `opencite up`."""
    try:
        r = httpx.get(
            f"{endpoint.base_url}/models",
            headers={"Authorization": f"Bearer {endpoint.api_key}"},
            timeout=timeout,
        )
        r.raise_for_status()
        ids = [m.get("id") for m in r.json().get("data") or []]
        return True, ", ".join(i for i in ids if i) or "(no models listed)"
    except Exception as exc:
        return False, f"unreachable ({type(exc).__name__}: {exc})"
