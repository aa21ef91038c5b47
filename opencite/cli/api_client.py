"""A running opencite API, as `opencite ask` talks to it.

The API (`opencite api`, or the one `opencite up` starts) has its embedder, BM25 index and
tokenizer loaded and a warm engine behind it, so a question's first token waits only for the
engine's prefill. A fresh process first spends seconds importing and loading the embedder
(docs/benchmarks/cpu-engines.md). An API is used only when its /health names the index this
command's settings read; otherwise `ask` answers in its own process.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from opencite.settings import Settings

# A CPU engine's prefill sets when the first byte comes (the API reads ahead to the first token):
# no read timeout; connecting to a local API is instant or refused.
TIMEOUT = httpx.Timeout(10.0, read=None)


class ApiRefused(Exception):
    """The API answered with an OpenAI error object."""

    def __init__(self, status: int, message: str, code: str | None):
        super().__init__(message)
        self.status, self.code = status, code


@dataclass(frozen=True)
class RunningApi:
    url: str  # http://host:port
    headers: dict

    def stream(self, model: str, question: str) -> Iterator[str | dict]:
        """The answer's text as it streams, then its final chunk (citations, sources,
        attributions, `opencite`: the checked text and the server's timings) with `usage`."""
        body = {"model": model, "messages": [{"role": "user", "content": question}], "stream": True,
                "stream_options": {"include_usage": True}}
        final: dict = {}
        with httpx.stream("POST", f"{self.url}/v1/chat/completions", json=body, headers=self.headers,
                          timeout=TIMEOUT) as response:
            if response.status_code != 200:
                response.read()
                raise refused(response)
            for line in response.iter_lines():
                if not line.startswith("data: "):
                    continue
                if line == "data: [DONE]":
                    break
                chunk = json.loads(line.removeprefix("data: "))
                if "error" in chunk:  # an error after the first byte travels as a chunk
                    error = chunk["error"]
                    raise ApiRefused(500, error.get("message", ""), error.get("code"))
                for choice in chunk.get("choices") or []:
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        yield text
                    if choice.get("finish_reason"):
                        final = chunk
                if chunk.get("usage"):
                    final = dict(final, usage=chunk["usage"])
        yield final

    def complete(self, model: str, question: str) -> dict:
        """The API's non-streamed response body."""
        body = {"model": model, "messages": [{"role": "user", "content": question}]}
        response = httpx.post(f"{self.url}/v1/chat/completions", json=body, headers=self.headers, timeout=TIMEOUT)
        if response.status_code != 200:
            raise refused(response)
        return response.json()


def refused(response: httpx.Response) -> ApiRefused:
    try:
        error = response.json()["error"]
        return ApiRefused(response.status_code, str(error.get("message")), error.get("code"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return ApiRefused(response.status_code, response.text[:300], None)


def running_api(settings: Settings) -> RunningApi | None:
    """The opencite API at settings.api's address when it answers and reads the same index."""
    host = settings.api.host
    if host in ("", "0.0.0.0", "::"):  # bound to every address: reach it on this machine's loopback
        host = "127.0.0.1"
    url = f"http://[{host}]:{settings.api.port}" if ":" in host else f"http://{host}:{settings.api.port}"
    try:
        response = httpx.get(f"{url}/health", timeout=2.0)
        health = response.json()
    except (httpx.HTTPError, ValueError):
        return None
    if (response.status_code != 200 or not isinstance(health, dict) or health.get("status") != "ok"
            or health.get("model") != settings.api.model_id or health.get("index") != settings.index_identity):
        return None
    key = settings.api.api_key.get_secret_value() if settings.api.api_key else None
    return RunningApi(url, {"authorization": f"Bearer {key}"} if key else {})
