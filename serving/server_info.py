"""What kind of OpenAI-compatible server answers at a base URL, and the context window it really
gives a request, where the server says.

Servers users already run on a laptop each say it their own way:
- llama.cpp's `llama-server`: `GET /props` → `default_generation_settings.n_ctx` (per slot);
- Ollama: `GET /api/version`; `POST /api/show` → `num_ctx` in the model's parameters when its
  Modelfile sets one, else the server's default (4,096 tokens without a large GPU; the
  `OLLAMA_CONTEXT_LENGTH` it was started with is not visible from outside). Ollama silently cuts
  prompts longer than that, so a budget must know it. `model_info.<arch>.context_length` is only
  the model's maximum;
- vLLM: `max_model_len` on each `/v1/models` entry;
- llama-cpp-python's server: `owned_by: "me"` on `/v1/models`, no window (`n_ctx` was its flag).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from opencite.serving.health import split_base

OLLAMA_DEFAULT_CONTEXT = 4096


@dataclass(frozen=True)
class ServerInfo:
    kind: str  # "llama.cpp server", "Ollama", "vLLM", "llama-cpp-python", "OpenAI-compatible"
    context_window: int | None = None  # tokens a request may use, where the server says
    model_maximum: int | None = None  # the model's own limit, where it differs (Ollama)
    note: str = ""


def describe_server(base_url: str, model: str, api_key: str | None = None, timeout: float = 5.0) -> ServerInfo:
    root, base = split_base(base_url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(timeout=timeout, headers=headers) as http:
        for probe in (_llama_server, _ollama, _listed):
            try:
                found = probe(http, root, base, model)
            except (httpx.HTTPError, ValueError, KeyError, TypeError, AttributeError):
                found = None
            if found is not None:
                return found
    return ServerInfo("OpenAI-compatible")


def _llama_server(http: httpx.Client, root: str, base: str, model: str) -> ServerInfo | None:
    r = http.get(root + "/props")
    if r.status_code != 200:
        return None
    props = r.json()
    n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx") or props.get("n_ctx")
    return ServerInfo("llama.cpp server", int(n_ctx) if n_ctx else None)


def _ollama(http: httpx.Client, root: str, base: str, model: str) -> ServerInfo | None:
    r = http.get(root + "/api/version")
    if r.status_code != 200 or "version" not in r.json():
        return None
    shown = http.post(root + "/api/show", json={"model": model})
    if shown.status_code != 200:
        return ServerInfo("Ollama", None, note=f"model {model!r} not found by /api/show ({shown.status_code})")
    info = shown.json()
    set_ctx = re.search(r"^num_ctx\s+(\d+)", info.get("parameters") or "", re.MULTILINE)
    maximum = next((int(v) for k, v in (info.get("model_info") or {}).items() if k.endswith(".context_length")), None)
    if set_ctx:
        return ServerInfo("Ollama", int(set_ctx.group(1)), maximum)
    window = min(OLLAMA_DEFAULT_CONTEXT, maximum) if maximum else OLLAMA_DEFAULT_CONTEXT
    return ServerInfo("Ollama", window, maximum,
                      note="Ollama's default window (the model sets no num_ctx); if the server runs with "
                           "OLLAMA_CONTEXT_LENGTH, set OPENCITE_LLM__CONTEXT_WINDOW to it")


def _listed(http: httpx.Client, root: str, base: str, model: str) -> ServerInfo | None:
    r = http.get(base + "/models")
    if r.status_code != 200:
        return None
    cards = r.json().get("data") or []
    card = next((c for c in cards if c.get("id") == model), cards[0] if cards else {})
    if card.get("max_model_len"):
        return ServerInfo("vLLM", int(card["max_model_len"]))
    if card.get("owned_by") == "me":
        return ServerInfo("llama-cpp-python")
    return None
