"""Is an OpenAI-compatible server up, and is it serving the model we expect?"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx


def split_base(url: str) -> tuple[str, str]:
    """(server root, OpenAI base ending in /v1) from either form of URL."""
    url = url.rstrip("/")
    root = url[: -len("/v1")] if url.endswith("/v1") else url
    return root, root + "/v1"


@dataclass
class Probe:
    ok: bool
    message: str
    models: list[str] | None = None


def _headers(api_key: str | None) -> dict:
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def probe(url: str, api_key: str | None = None, timeout: float = 5.0) -> Probe:
    """One look: /health (where the server has it) and /v1/models."""
    root, base = split_base(url)
    try:
        health = httpx.get(root + "/health", timeout=timeout, headers=_headers(api_key))
    except httpx.HTTPError as exc:
        return Probe(False, f"nothing answers at {root} ({type(exc).__name__}: {exc})")
    # OpenAI and some gateways have no /health: 404 is fine, 5xx means "starting" or broken.
    if health.status_code >= 500:
        return Probe(False, f"{root}/health answered {health.status_code} (server still starting or unhealthy)")
    try:
        resp = httpx.get(base + "/models", timeout=timeout, headers=_headers(api_key))
    except httpx.HTTPError as exc:
        return Probe(False, f"{base}/models failed ({type(exc).__name__}: {exc})")
    if resp.status_code in (401, 403):
        return Probe(False, f"{base}/models refused the API key ({resp.status_code}); set OPENCITE_LLM__API_KEY")
    if resp.status_code != 200:
        return Probe(False, f"{base}/models answered {resp.status_code}: {resp.text[:200]}")
    try:
        models = [m["id"] for m in resp.json().get("data", [])]
    except (ValueError, KeyError, TypeError, AttributeError):
        return Probe(False, f"{base}/models did not return an OpenAI model list: {resp.text[:200]}")
    return Probe(True, f"{base} is up", models)


def wait_ready(url: str, timeout: float, api_key: str | None = None, interval: float = 0.5, is_alive=None) -> Probe:
    """Poll until the server answers; `is_alive()` returning False (our process died) stops early."""
    deadline = time.monotonic() + timeout
    last = Probe(False, "not polled yet")
    while True:
        last = probe(url, api_key, timeout=min(5.0, max(timeout, 0.5)))
        if last.ok:
            return last
        if is_alive is not None and not is_alive():
            return Probe(False, f"the server process exited; last check: {last.message}")
        if time.monotonic() >= deadline:
            return Probe(False, f"no answer within {timeout:g}s; last check: {last.message}")
        time.sleep(interval)


def one_token_request(base_url: str, model: str, api_key: str | None = None, timeout: float = 60) -> httpx.Response:
    """A one-token chat request: asks whether the server answers to `model`, and warms up a
    server that loads its model lazily (raises httpx.HTTPError when nothing answers)."""
    _, base = split_base(base_url)
    return httpx.post(base + "/chat/completions", headers=_headers(api_key), timeout=timeout,
                      json={"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1})


def check_model(base_url: str, model: str, api_key: str | None = None, models: list[str] | None = None) -> Probe:
    """Does the server serve `model`? Listed in /v1/models is enough. Otherwise ask it with a
    one-token chat request: TGI lists its model id but answers to any name (the notebook's
    "tgi"), and `transformers serve` lists only its hub cache but refuses other names."""
    _, base = split_base(base_url)
    if models is None:
        first = probe(base_url, api_key)
        if not first.ok:
            return first
        models = first.models or []
    if model in models:
        return Probe(True, f"serves {model!r}", models)
    try:
        resp = one_token_request(base_url, model, api_key, timeout=60)
    except httpx.HTTPError as exc:
        return Probe(False, f"a test request to {base} failed ({type(exc).__name__}: {exc})", models)
    if resp.status_code == 200:
        return Probe(True, f"answers to {model!r}", models)
    if models:
        return Probe(
            False,
            f"{base} serves {', '.join(models)} but not {model!r} ({resp.status_code}); set OPENCITE_LLM__MODEL "
            "to one of those or start the server with that model",
            models,
        )
    return Probe(
        False,
        f"{base} refused model {model!r} ({resp.status_code}: {resp.text[:200]}); set OPENCITE_LLM__MODEL "
        "to the served model",
        models,
    )
