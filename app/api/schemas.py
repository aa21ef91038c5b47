"""Request schema of `POST /v1/chat/completions` and the extension fields opencite adds.

Fields OpenAI defines but a RAG answer cannot honour (tools, n>1, logprobs, JSON mode, audio…)
are named here so the error says exactly which one and why, instead of ignoring it silently;
any field OpenAI does not define is refused as an unrecognized argument (as OpenAI does).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from opencite.app.api.errors import APIError


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class OtherPart(BaseModel):
    # image_url, input_audio, file…: parsed so the error can name the part, then refused.
    model_config = ConfigDict(extra="allow")
    type: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart | OtherPart] | None = None
    name: str | None = None
    # Accepted on assistant turns replayed by clients; always empty for this API.
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None

    def text(self, index: int) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        texts = []
        for j, part in enumerate(self.content):
            if isinstance(part, TextPart):
                texts.append(part.text)
            else:
                raise APIError(
                    400,
                    f"Content part type '{part.type}' is not supported: opencite answers from text. "
                    "Fix: send text content only.",
                    code="unsupported_content_type",
                    param=f"messages[{index}].content[{j}].type",
                )
        return "\n".join(texts)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    include_usage: bool | None = None
    include_obfuscation: bool | None = None  # sent by newer OpenAI SDKs; nothing to obfuscate here


class RetrievalOptions(BaseModel):
    """Extension: how to retrieve for this request (top-level `retrieval`, or via `extra_body`)."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["dense", "bm25", "hybrid"] | None = None
    k: Annotated[int, Field(ge=1, le=50)] | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "model": "opencite-rag",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "retrieval": {"mode": "dense", "k": 4},
    }]})

    model: str
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    seed: int | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    user: str | None = None

    # OpenAI fields accepted only at their "off" value; anything else is refused by check_supported.
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    functions: list[dict[str, Any]] | None = None
    function_call: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    logit_bias: dict[str, float] | None = None
    modalities: list[str] | None = None
    audio: dict[str, Any] | None = None
    prediction: dict[str, Any] | None = None
    reasoning_effort: str | None = None
    web_search_options: dict[str, Any] | None = None
    # Harmless bookkeeping fields some clients send.
    store: bool | None = None
    metadata: dict[str, str] | None = None
    service_tier: str | None = None

    # opencite extensions (OpenAI SDKs send them through `extra_body`).
    retrieval: RetrievalOptions | None = None
    condense: bool | None = None

    def check_supported(self) -> None:
        def refuse(param: str, why: str) -> None:
            raise APIError(400, f"'{param}' is not supported by the opencite RAG API: {why}",
                           code="unsupported_parameter", param=param)

        if self.n not in (None, 1):
            refuse("n", "it answers with exactly one choice. Fix: omit n or set n=1.")
        if self.logprobs or self.top_logprobs:
            refuse("logprobs" if self.logprobs else "top_logprobs",
                   "token log-probabilities are not exposed. Fix: omit logprobs/top_logprobs.")
        if self.tools or self.functions:
            refuse("tools" if self.tools else "functions",
                   "the RAG model does not call tools. Fix: call the raw LLM server for tool use.")
        if self.tool_choice not in (None, "none", "auto") or self.function_call not in (None, "none", "auto"):
            refuse("tool_choice" if self.tool_choice not in (None, "none", "auto") else "function_call",
                   "the RAG model does not call tools.")
        if self.response_format and self.response_format.get("type") != "text":
            refuse("response_format", "answers are cited prose, not JSON. Fix: omit response_format.")
        if self.logit_bias:
            refuse("logit_bias", "it is not forwarded to the LLM. Fix: omit logit_bias.")
        if self.modalities not in (None, ["text"]) or self.audio:
            refuse("modalities" if self.audio is None else "audio", "answers are text only.")
        if self.prediction:
            refuse("prediction", "predicted outputs do not apply to retrieved answers.")
        if self.reasoning_effort:
            refuse("reasoning_effort", "the served model has no reasoning-effort control.")
        if self.web_search_options:
            refuse("web_search_options", "opencite searches its own index. Fix: use the `retrieval` extension.")
        for i, m in enumerate(self.messages):
            if m.role == "tool":
                refuse(f"messages[{i}].role", "there are no tool calls to answer.")
            m.text(i)  # refuses non-text content parts with their exact position
        if self.messages[-1].role != "user":
            raise APIError(400, "The last message must have role 'user': it is the question to answer.",
                           code="invalid_value", param=f"messages[{len(self.messages) - 1}].role")
        if not self.messages[-1].text(len(self.messages) - 1).strip():
            raise APIError(400, "The last user message is empty. Fix: ask a question.",
                           code="invalid_value", param=f"messages[{len(self.messages) - 1}].content")

    def chain_messages(self) -> list[dict]:
        # The chain contract takes system/user/assistant; "developer" is OpenAI's newer name for system.
        return [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text(i)}
            for i, m in enumerate(self.messages)
        ]

    def chain_options(self) -> dict:
        opts: dict[str, Any] = {}
        max_tokens = self.max_completion_tokens or self.max_tokens
        for key, value in (
            ("temperature", self.temperature),
            ("top_p", self.top_p),
            ("max_tokens", max_tokens),
            ("seed", self.seed),
            ("stop", [self.stop] if isinstance(self.stop, str) else self.stop),
            ("frequency_penalty", self.frequency_penalty),
            ("presence_penalty", self.presence_penalty),
            ("user", self.user),
            ("condense", self.condense),
        ):
            if value is not None:
                opts[key] = value
        if self.retrieval is not None:
            if self.retrieval.mode is not None:
                opts["retrieval_mode"] = self.retrieval.mode
            if self.retrieval.k is not None:
                opts["k"] = self.retrieval.k
        return opts
