"""`opencite serve --engine hf-endpoint` against a local stand-in of the Inference Endpoints API
(the real one cannot be reached from here). huggingface_hub itself makes the calls."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from http.server import BaseHTTPRequestHandler

import pytest

from tests.fixtures.http_double import LocalHTTPServer, send_json

RAW_TEMPLATE = {
    "type": "authenticated",
    "healthRoute": "/health",
    "model": {"framework": "pytorch", "revision": None, "task": "text-generation"},
    "status": {"createdAt": "2026-11-24T07:00:00Z", "updatedAt": "2026-11-24T07:00:00Z"},
}


class EndpointsAPIDouble:
    """Records create requests; an endpoint reports `pending`, `initializing`, then `running`
    with a URL on this server whose /health answers 200 (or `failed` when `fail` is set)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.created: list[dict] = []
        self.auth: list[str] = []
        self.polls: dict[str, int] = {}
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                send_json(self, status, body)

            def do_POST(self):
                m = re.fullmatch(r"/v2/endpoint/([^/]+)", self.path)
                if not m:
                    return self._send(404, {"error": "not found"})
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                double.auth.append(self.headers.get("Authorization", ""))
                if any(p["name"] == payload["name"] for p in double.created):
                    return self._send(409, {"error": "An endpoint with this name already exists"})
                double.created.append(payload)
                self._send(200, double.raw(payload, "pending"))

            def do_GET(self):
                m = re.fullmatch(r"/v2/endpoint/([^/]+)/([^/]+)", self.path)
                if m:
                    name = m.group(2)
                    payload = next((p for p in double.created if p["name"] == name), None)
                    if payload is None:
                        return self._send(404, {"error": "not found"})
                    n = double.polls[name] = double.polls.get(name, 0) + 1
                    state = "failed" if double.fail else ("initializing" if n < 2 else "running")
                    return self._send(200, double.raw(payload, state))
                if re.fullmatch(r"/ep/[^/]+/health", self.path):
                    return self._send(200, {})
                self._send(404, {"error": "not found"})

        self.http = LocalHTTPServer(Handler)
        self.url = self.http.url

    def raw(self, payload: dict, state: str) -> dict:
        raw = json.loads(json.dumps(RAW_TEMPLATE))
        raw["name"] = payload["name"]
        raw["model"]["repository"] = payload["model"]["repository"]
        raw["status"]["state"] = state
        if state == "running":
            raw["status"]["url"] = f"{self.url}/ep/{payload['name']}"
        return raw

    def stop(self):
        self.http.stop()


@pytest.fixture
def endpoints_api():
    double = EndpointsAPIDouble()
    yield double
    double.stop()


def deploy(double, tmp_path, *extra: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCITE_")}
    env.update(
        HF_HUB_OFFLINE="0",  # the only server reached is the local stand-in
        HF_TOKEN="hf_test_token",
        HF_HOME=str(tmp_path / "hf"),
        OPENCITE_SERVE__HF_ENDPOINTS_API=double.url + "/v2",
        OPENCITE_SERVE__HF_NAMESPACE="team",
        OPENCITE_SERVE__HF_POLL_SECONDS="0.2",
    )
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "opencite.cli", "serve", "--engine", "hf-endpoint", "--timeout", "60", *extra],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )


def test_deploys_the_notebook_model_protected_scale_to_zero_and_prints_base_url(endpoints_api, tmp_path):
    proc = deploy(endpoints_api, tmp_path, "--preset", "nous-hermes-2-mixtral-8x7b-dpo")
    assert proc.returncode == 0, proc.stderr
    [payload] = endpoints_api.created
    assert payload["model"]["repository"] == "NousResearch/Nous-Hermes-2-Mixtral-8x7B-DPO"
    assert payload["type"] == "authenticated"
    assert payload["compute"]["scaling"]["minReplica"] == 0
    assert payload["compute"]["scaling"]["scaleToZeroTimeout"] == 15
    assert payload["compute"]["instanceType"] == "nvidia-a100" and payload["compute"]["instanceSize"] == "x2"
    image = payload["model"]["image"]["custom"]
    assert image["url"].startswith("vllm/vllm-openai") and image["health_route"] == "/health"
    args = payload["model"]["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "2"
    assert endpoints_api.auth == ["Bearer hf_test_token"]
    assert endpoints_api.polls[payload["name"]] >= 2  # it waited through "initializing"
    assert f"OPENCITE_LLM__BASE_URL={endpoints_api.url}/ep/{payload['name']}/v1" in proc.stdout
    assert "OPENCITE_LLM__MODEL=nous-hermes-2-mixtral-8x7b-dpo" in proc.stdout
    assert "OPENCITE_LLM__CONTEXT_WINDOW=32768" in proc.stdout


@pytest.mark.slow  # an `opencite serve` subprocess; the fast tier keeps the first deploy: the full suite runs it
def test_tgi_image_as_in_the_notebook(endpoints_api, tmp_path):
    proc = deploy(endpoints_api, tmp_path, "--preset", "mixtral-8x7b-instruct", env_extra={"OPENCITE_SERVE__HF_IMAGE": "tgi"})
    assert proc.returncode == 0, proc.stderr
    image = endpoints_api.created[0]["model"]["image"]["custom"]
    assert image["url"].startswith("ghcr.io/huggingface/text-generation-inference")
    assert image["env"]["MODEL_ID"] == "/repository" and image["env"]["MAX_TOTAL_TOKENS"] == "32768"
    assert "OPENCITE_LLM__MODEL=tgi" in proc.stdout


@pytest.mark.slow  # an `opencite serve` subprocess; the fast tier keeps the first deploy: the full suite runs it
def test_second_deploy_reuses_the_existing_endpoint(endpoints_api, tmp_path):
    assert deploy(endpoints_api, tmp_path, "--preset", "qwen2.5-7b-instruct").returncode == 0
    again = deploy(endpoints_api, tmp_path, "--preset", "qwen2.5-7b-instruct")
    assert again.returncode == 0, again.stderr
    assert len(endpoints_api.created) == 1


@pytest.mark.slow  # an `opencite serve` subprocess; the fast tier keeps the first deploy: the full suite runs it
def test_failed_deploy_is_reported(tmp_path):
    double = EndpointsAPIDouble(fail=True)
    try:
        proc = deploy(double, tmp_path, "--preset", "qwen2.5-7b-instruct")
    finally:
        double.stop()
    assert proc.returncode == 1
    assert "is not running (failed)" in proc.stderr
