"""`opencite serve --engine cpu` really serves the tiny model through `transformers serve`."""

from __future__ import annotations

import pytest
import json
import subprocess

import httpx

from tests.fixtures.tiny_llm import opencite_cli


pytestmark = pytest.mark.slow  # the CPU LLM engine


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


def test_serve_failure_shows_the_servers_own_error(tmp_path):
    from tests.fixtures.tiny_llm import cpu_engine_env
    from tests.conftest import free_port

    env = cpu_engine_env(tmp_path / "data", tmp_path / "hf-home")
    missing = tmp_path / "no-such-model"
    missing.mkdir()  # a folder without a model in it: only the server itself can tell
    proc = subprocess.run(
        opencite_cli() + ["serve", "--engine", "cpu", "--model", str(missing), "--port", str(free_port()),
                          "--timeout", "120"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 1
    assert "server process exited" in proc.stderr
    assert "--- server log" in proc.stderr and "no-such-model" in proc.stderr.split("--- server log")[1]
    # Nothing is left registered as running.
    assert not (tmp_path / "data" / "runtime" / "serve.json").exists()


def test_serve_refuses_a_missing_model_folder_before_starting(tmp_path):
    proc = subprocess.run(
        opencite_cli() + ["serve", "--engine", "cpu", "--model", str(tmp_path / "gone")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1 and "model folder" in proc.stderr and "does not exist" in proc.stderr


def test_foreground_serve_is_the_engine_and_stops_with_one_terminate(tiny_model_dir, tmp_path):
    from tests.conftest import free_port, wait_http
    from tests.fixtures.tiny_llm import cpu_engine_env

    port = free_port()
    env = cpu_engine_env(tmp_path / "data", tmp_path / "hf-home")
    proc = subprocess.Popen(
        opencite_cli() + ["serve", "--engine", "cpu", "--model", str(tiny_model_dir), "--port", str(port), "--foreground"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/health", timeout=180, proc=proc)
    finally:
        proc.terminate()
        proc.wait(30)
    # The port is free again: no engine was left behind as an orphan.
    import socket

    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
