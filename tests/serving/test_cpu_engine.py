"""`opencite serve --engine cpu` really serves the tiny model through `transformers serve`."""

from __future__ import annotations

import json
import subprocess

import httpx

from tests.fixtures.tiny_llm import opencite_cli


def test_cpu_engine_answers_chat_completions(cpu_engine):
    resp = httpx.post(
        cpu_engine.base_url + "/chat/completions",
        json={"model": cpu_engine.model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 5},
        timeout=60,
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["usage"]["completion_tokens"] >= 1


def test_cpu_engine_leaves_pid_and_log_in_runtime_dir(cpu_engine):
    runtime = cpu_engine.data_dir / "runtime"
    state = json.loads((runtime / "serve.json").read_text())
    assert state["url"] == cpu_engine.base_url
    assert "Uvicorn running" in (runtime / "serve.log").read_text()


def test_second_serve_for_same_data_dir_is_refused(cpu_engine, tiny_model_dir):
    proc = subprocess.run(
        opencite_cli() + ["serve", "--engine", "cpu", "--model", str(tiny_model_dir), "--timeout", "5"],
        env=cpu_engine.env, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode != 0
    assert "already running" in proc.stderr
