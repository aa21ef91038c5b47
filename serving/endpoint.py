"""Where the LLM is: the one place the app, the API and eval learn base URL, key, model and
context window. Defaults follow the local `opencite serve`; `settings.llm.*` overrides each."""

from __future__ import annotations

from dataclasses import dataclass

from opencite.serving.presets import get_preset
from opencite.settings import Settings


@dataclass(frozen=True)
class LLMEndpoint:
    base_url: str  # ends in /v1
    api_key: str
    model: str
    context_window: int


def local_host(host: str) -> str:
    # A server bound to every interface is reached through loopback.
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def served_base_url(settings: Settings) -> str:
    serve = settings.serve
    return f"http://{local_host(serve.host)}:{serve.port}/v1"


def served_model(settings: Settings) -> str:
    """The name requests must use for the locally served model.

    `transformers serve` pins one model and accepts only its id or path; vLLM answers to
    --served-model-name."""
    serve = settings.serve
    preset = get_preset(serve.preset)
    if serve.engine == "cpu":
        return serve.model or preset.model
    if serve.served_model_name:
        return serve.served_model_name
    return preset.served_model_name if serve.model is None else serve.model


def served_context_window(settings: Settings) -> int:
    preset = get_preset(settings.serve.preset)
    window = preset.context_window
    # A smaller --max-model-len is what the server really accepts.
    for limit in (settings.serve.max_model_len, preset.max_model_len):
        if limit:
            window = min(window, limit)
    return window


def resolve_llm(settings: Settings) -> LLMEndpoint:
    llm = settings.llm
    api_key = llm.api_key.get_secret_value()
    if "api_key" not in llm.model_fields_set and settings.serve.api_key is not None:
        api_key = settings.serve.api_key.get_secret_value()
    return LLMEndpoint(
        base_url=(llm.base_url or served_base_url(settings)).rstrip("/"),
        api_key=api_key,
        model=llm.model or served_model(settings),
        context_window=llm.context_window or served_context_window(settings),
    )
