"""Which server answers, and the context window it gives, for the servers CPU users already run.
Ollama and llama.cpp's C++ `llama-server` cannot be installed here (their releases are binaries
downloaded from outside PyPI), so doubles answer their documented introspection routes; the real
llama-cpp-python server is covered in test_llamacpp.py."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler

import pytest
from typer.testing import CliRunner

from opencite.cli import app
from opencite.serving.server_info import OLLAMA_DEFAULT_CONTEXT, ServerInfo, describe_server
from opencite.settings import get_settings
from tests.fixtures.http_double import LocalHTTPServer, send_json


class ServerDouble:
    """GET/POST routes answering fixed JSON, plus an OpenAI model list and chat answer."""

    def __init__(self, routes: dict[tuple[str, str], dict], model: str = "qwen2.5:0.5b") -> None:
        self.shown: list[dict] = []
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, method: str) -> None:
                if (method, self.path) in routes:
                    return send_json(self, 200, routes[(method, self.path)])
                if self.path == "/v1/models":
                    return send_json(self, 200, {"object": "list", "data": [{"id": model, "object": "model"}]})
                if method == "POST" and self.path == "/v1/chat/completions":
                    return send_json(self, 200, {"choices": [{"message": {"role": "assistant", "content": "p"}}]})
                send_json(self, 404, {"error": "not found"})

            def do_GET(self):
                self._answer("GET")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                double.shown.append(json.loads(body or b"{}"))
                self._answer("POST")

        self.http = LocalHTTPServer(Handler)
        self.url = self.http.url + "/v1"


OLLAMA_SHOW = {"parameters": "stop \"<|im_end|>\"", "model_info": {"qwen2.context_length": 32768}}


@pytest.fixture
def ollama_double():
    server = ServerDouble({("GET", "/api/version"): {"version": "0.12.6"}, ("POST", "/api/show"): OLLAMA_SHOW})
    yield server
    server.http.stop()


def test_ollama_without_num_ctx_gives_its_default_window_not_the_models_maximum(ollama_double):
    info = describe_server(ollama_double.url, "qwen2.5:0.5b")
    assert info.kind == "Ollama" and info.context_window == OLLAMA_DEFAULT_CONTEXT and info.model_maximum == 32768
    assert "OLLAMA_CONTEXT_LENGTH" in info.note
    assert ollama_double.shown[-1] == {"model": "qwen2.5:0.5b"}


def test_ollama_with_num_ctx_in_the_modelfile():
    show = dict(OLLAMA_SHOW, parameters="num_ctx                        8192\nstop \"<|im_end|>\"")
    server = ServerDouble({("GET", "/api/version"): {"version": "0.12.6"}, ("POST", "/api/show"): show})
    try:
        assert describe_server(server.url, "qwen2.5:0.5b").context_window == 8192
    finally:
        server.http.stop()


def test_llama_server_says_its_window_in_props():
    server = ServerDouble({("GET", "/props"): {"default_generation_settings": {"n_ctx": 4096}, "total_slots": 1}})
    try:
        info = describe_server(server.url, "any")
        assert (info.kind, info.context_window) == ("llama.cpp server", 4096)
    finally:
        server.http.stop()


def test_vllm_lists_max_model_len_and_others_are_plain(scripted_llm):
    server = ServerDouble({("GET", "/v1/models"): {"data": [{"id": "m", "max_model_len": 16384}]}})
    try:
        assert describe_server(server.url, "m") == ServerInfo("vLLM", 16384)
    finally:
        server.http.stop()
    assert describe_server(scripted_llm.base_url, scripted_llm.model).kind == "OpenAI-compatible"


def test_doctor_recognises_ollama_and_refuses_a_window_it_would_cut(ollama_double, settings_env, monkeypatch):
    monkeypatch.setenv("OPENCITE_LLM__BASE_URL", ollama_double.url)
    monkeypatch.setenv("OPENCITE_LLM__MODEL", "qwen2.5:0.5b")
    monkeypatch.setenv("OPENCITE_LLM__CONTEXT_WINDOW", "4096")
    get_settings.cache_clear()
    ok = CliRunner().invoke(app, ["doctor", "--only", "llm"])
    assert ok.exit_code == 0, ok.output
    assert "Ollama" in ok.output and "context window 4096" in ok.output
    monkeypatch.setenv("OPENCITE_LLM__CONTEXT_WINDOW", "32768")
    get_settings.cache_clear()
    cut = CliRunner().invoke(app, ["doctor", "--only", "llm"])
    assert cut.exit_code == 1
    assert "OPENCITE_LLM__CONTEXT_WINDOW=4096" in cut.output.replace("\n", "")
