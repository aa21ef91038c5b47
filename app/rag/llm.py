"""The chat model the chain talks to: LangChain's ChatOpenAI against the resolved endpoint."""

from __future__ import annotations

import openai
# Not ChatOpenAI: it renames max_tokens to max_completion_tokens, which llama-cpp-python's server
# (and older llama-server builds) ignore, so the cap was lost and an answer ran on to the context
# window (llama-cpp-python issue #1907). BaseChatOpenAI, the base LangChain's own OpenAI-compatible
# providers build on, sends max_tokens, which every OpenAI-compatible server reads.
from langchain_openai.chat_models.base import BaseChatOpenAI

from opencite.serving.endpoint import LLMEndpoint
from opencite.settings import Settings


def chat_model(settings: Settings, endpoint: LLMEndpoint) -> BaseChatOpenAI:
    return BaseChatOpenAI(
        model=endpoint.model,
        base_url=endpoint.base_url,
        api_key=endpoint.client_key,
        temperature=settings.llm.temperature,
        max_tokens=settings.llm.max_tokens,
        timeout=settings.llm.timeout,
        max_retries=settings.llm.max_retries,
        stream_usage=True,
        # Its own async connection pool: LangChain's default is shared process-wide, and a pool
        # used under one event loop fails under the next (two asyncio.run, or a test after a test).
        http_async_client=openai.DefaultAsyncHttpxClient(),
    )


def model_status(endpoint: LLMEndpoint, timeout: float = 3.0) -> tuple[bool, str]:
    """(reachable, the served models or the problem), for the UI sidebar."""
    found = endpoint.probe(timeout=timeout)
    if not found.ok:
        return False, f"unreachable ({found.message})"
    return True, ", ".join(m for m in found.models or [] if m) or "(no models listed)"
