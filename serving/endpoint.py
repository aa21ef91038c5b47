"""Where the LLM is, and the one client type for any OpenAI-compatible endpoint: serving's health
checks, the chain, the chat's status line and eval's judge all hold an `LLMEndpoint`.
`resolve_llm` is the one place base URL, key, model and context window are learnt: defaults follow
the local `opencite serve`; `settings.llm.*` overrides each."""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

from opencite.serving import health
from opencite.serving.presets import get_preset
from opencite.settings import Settings

if TYPE_CHECKING:
    import httpx
    from openai import OpenAI


@dataclass(frozen=True)
class LLMEndpoint:
    base_url: str  # ends in /v1
    api_key: str  # "" when the server wants none
    model: str
    context_window: int = 0  # 0: not known (a judge, a status check)

    @property
    def client_key(self) -> str:
        # The OpenAI SDKs refuse an empty key even where the server checks none.
        return self.api_key or "not-needed"

    def probe(self, timeout: float = 5.0) -> health.Probe:
        return health.probe(self.base_url, self.api_key, timeout=timeout)

    def check_model(self, models: list[str] | None = None) -> health.Probe:
        return health.check_model(self.base_url, self.model, self.api_key, models)

    def one_token(self, timeout: float = 60) -> httpx.Response:
        return health.one_token_request(self.base_url, self.model, self.api_key, timeout=timeout)

    def openai(self, timeout: float, max_retries: int) -> OpenAI:
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=self.client_key, timeout=timeout, max_retries=max_retries)


def local_host(host: str) -> str:
    # A server bound to every interface is reached through loopback.
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def served_base_url(settings: Settings) -> str:
    serve = settings.serve
    return f"http://{local_host(serve.host)}:{serve.port}/v1"


def served_model(settings: Settings) -> str:
    """The name requests must use for the locally served model.

    `transformers serve` pins one model and accepts only its id or path; vLLM answers to
    --served-model-name, llama-cpp-python's server to --model_alias (and, with one model loaded,
    to any name: so `auto`, which may become either CPU engine, takes the `transformers serve` name)."""
    serve = settings.serve
    preset = get_preset(serve.preset)
    if serve.engine in ("cpu", "auto"):
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
        context_window=int(llm.context_window or served_context_window(settings)),
    )
