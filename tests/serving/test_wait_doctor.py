"""`opencite wait` and `opencite doctor` against a server that is down, slow to start, serving
another model, and healthy."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from http.server import BaseHTTPRequestHandler

import pytest

from tests.conftest import free_port
from tests.fixtures.http_double import LocalHTTPServer, send_json


class SlowStartServerDouble:
    """A stand-in for an engine still loading its weights: /health answers 503 until `ready_after`
    seconds have passed (as vLLM and TGI do), then 200 with one model listed; like vLLM it
    answers chat requests for that model only."""

    def __init__(self, ready_after: float, model: str = "slow-model") -> None:
        self.started = time.monotonic()
        self.ready_after = ready_after
        self.model = model
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if time.monotonic() - double.started < double.ready_after:
                    self.send_response(503)
                    self.end_headers()
                    return
                send_json(self, 200 if self.path in ("/health", "/v1/models") else 404,
                          {"object": "list", "data": [{"id": double.model, "object": "model"}]})

            def do_POST(self):
                # Like vLLM: a model name it does not serve is a 404 in OpenAI's error format.
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if body.get("model") != double.model:
                    send_json(self, 404, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                                    "type": "NotFoundError", "code": 404}})
                else:
                    send_json(self, 200, {"choices": [{"message": {"role": "assistant", "content": "p"}}]})

        self.http = LocalHTTPServer(Handler)
        self.url = self.http.url

    def stop(self):
        self.http.stop()


@pytest.fixture
def slow_server():
    server = SlowStartServerDouble(ready_after=15.0)  # longer than a cold CLI start under load
    yield server
    server.stop()


def cli(*args: str, env: dict | None = None, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "opencite.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def doctor_env(base_env: dict, llm_url: str, model: str, data_dir) -> dict:
    env = {k: v for k, v in base_env.items() if not k.startswith("OPENCITE_")}
    env.update(OPENCITE_DATA_DIR=str(data_dir), OPENCITE_LLM__BASE_URL=llm_url, OPENCITE_LLM__MODEL=model)
    return env


# --- down ---------------------------------------------------------------------------------

@pytest.mark.slow  # waits out real timeouts or delays: the full suite runs it
def test_wait_on_a_down_server_times_out_with_a_clear_message(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    proc = cli("wait", url, "--timeout", "1", cwd=tmp_path)
    assert proc.returncode == 1
    assert "not ready" in proc.stderr and "no answer within 1s" in proc.stderr and "nothing answers" in proc.stderr


def test_doctor_on_a_down_llm_says_how_to_fix(tmp_path):
    import os

    env = doctor_env(os.environ, f"http://127.0.0.1:{free_port()}/v1", "m", tmp_path / "data")
    proc = cli("doctor", "--only", "llm", "--only", "chroma", env=env, cwd=tmp_path)
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout and "nothing answers" in proc.stdout and "OPENCITE_LLM__BASE_URL" in proc.stdout
    assert "is writable" in proc.stdout  # the other check still ran


@pytest.mark.slow  # a whole run end to end or real timeouts: the full suite runs it
def test_doctor_names_an_unreachable_chroma_server(tmp_path):
    import os

    env = doctor_env(os.environ, "http://127.0.0.1:1/v1", "m", tmp_path / "data")
    env["OPENCITE_CHROMA__URL"] = f"http://127.0.0.1:{free_port()}"
    proc = cli("doctor", "--only", "chroma", env=env, cwd=tmp_path)
    assert proc.returncode == 1
    assert "did not answer" in proc.stdout and "chroma run" in proc.stdout


# --- slow to start ------------------------------------------------------------------------

@pytest.mark.slow  # a whole run end to end or real timeouts: the full suite runs it
def test_wait_reports_a_starting_server_then_succeeds_once_ready(slow_server, tmp_path):
    early = cli("wait", slow_server.url, "--timeout", "0.5", cwd=tmp_path)
    assert early.returncode == 1 and "503" in early.stderr and "still starting" in early.stderr
    ready = cli("wait", slow_server.url + "/v1", "--timeout", "60", "--model", "slow-model", cwd=tmp_path)
    assert ready.returncode == 0, ready.stderr
    assert "ready" in ready.stderr and "slow-model" in ready.stderr


# --- serving another model ----------------------------------------------------------------

@pytest.mark.slow  # a whole run end to end or real timeouts: the full suite runs it
def test_wait_and_doctor_refuse_a_server_listing_another_model(tmp_path):
    import os

    server = SlowStartServerDouble(ready_after=0, model="served-model")
    try:
        proc = cli("wait", server.url, "--timeout", "10", "--model", "not-this", cwd=tmp_path)
        assert proc.returncode == 1 and "serves served-model but not 'not-this'" in proc.stderr
        env = doctor_env(os.environ, server.url + "/v1", "not-this", tmp_path / "data")
        doc = cli("doctor", "--only", "llm", env=env, cwd=tmp_path)
        assert doc.returncode == 1
        assert "serves served-model but not 'not-this'" in doc.stdout and "OPENCITE_LLM__MODEL" in doc.stdout
    finally:
        server.stop()


def test_doctor_accepts_a_server_that_answers_to_any_name_like_tgi(scripted_llm, tmp_path):
    import os

    # TGI lists its model id yet answers to "tgi" (the notebook's model name); so does this double.
    env = doctor_env(os.environ, scripted_llm.base_url, "tgi", tmp_path / "data")
    doc = cli("doctor", "--only", "llm", env=env, cwd=tmp_path)
    assert doc.returncode == 0, doc.stdout
    assert "answers to 'tgi'" in doc.stdout


@pytest.mark.slow
def test_doctor_refuses_a_cpu_engine_pinned_to_another_model(cpu_engine, tmp_path):
    # transformers serve is pinned to one model. Depending on its version it lists that model in
    # /v1/models or lists none and refuses other names; the doctor must fail either way, naming the
    # configured model and the fix, and the served model whenever the server tells it.
    import httpx

    wanted = "Qwen/Qwen2.5-0.5B-Instruct"
    listed = [m["id"] for m in httpx.get(cpu_engine.base_url + "/models", timeout=30).json().get("data", [])]
    env = doctor_env(cpu_engine.env, cpu_engine.base_url, wanted, tmp_path / "data")
    doc = cli("doctor", "--only", "llm", env=env, cwd=tmp_path)
    assert doc.returncode == 1, doc.stdout
    out = " ".join(doc.stdout.split())  # rich wraps long lines
    assert "FAIL" in out and repr(wanted) in out and "OPENCITE_LLM__MODEL" in out
    if listed:
        assert any(" ".join(m.split()) in out for m in listed), (listed, out)
    else:
        assert "refused model" in out


# --- healthy ------------------------------------------------------------------------------

@pytest.mark.slow
def test_wait_and_doctor_pass_on_a_healthy_cpu_engine(cpu_engine, minilm_path, tmp_path):
    proc = cli("wait", cpu_engine.base_url, "--timeout", "30", "--model", cpu_engine.model, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    env = doctor_env(cpu_engine.env, cpu_engine.base_url, cpu_engine.model, tmp_path / "data")
    env.update(OPENCITE_EMBEDDING__MODEL=minilm_path, OPENCITE_EMBEDDING__DEVICE="cpu")
    doc = cli("doctor", env=env, cwd=tmp_path)
    assert doc.returncode == 0, doc.stdout + doc.stderr
    assert doc.stdout.count(" ok ") == 3 and "FAIL" not in doc.stdout
