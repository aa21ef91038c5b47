"""`opencite up`: the main job's launcher, run for real as a subprocess."""

from __future__ import annotations

import pytest
import os
import subprocess
import sys

import httpx

from tests.app.conftest import PAGES, add_pages
from tests.conftest import free_port, wait_http

UP = [sys.executable, "-m", "opencite.cli", "up", "--no-browser"]


pytestmark = pytest.mark.slow  # each test runs `opencite up` as a subprocess


def run(env: dict, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(UP + list(args), env=env, capture_output=True, text=True, timeout=timeout)


def test_embedding_model_not_downloadable_says_which_and_how(settings_env, tmp_path):
    env = dict(os.environ, OPENCITE_EMBEDDING__MODEL="no-such-org/no-such-embedder", HF_HUB_OFFLINE="1")
    done = run(env)
    assert done.returncode == 1
    out = " ".join((done.stderr + done.stdout).split())
    assert "no-such-org/no-such-embedder" in out and "OPENCITE_EMBEDDING__MODEL=/path/to/model" in out


def test_empty_index_without_sources_file_says_how(settings_env, tmp_path):
    done = run(dict(os.environ), "--from", str(tmp_path / "missing.txt"))
    assert done.returncode == 1
    assert "missing.txt" in done.stderr and "does not exist" in done.stderr


def test_llm_model_not_loadable_says_which_and_how(settings_env, tmp_path):
    add_pages(settings_env, PAGES)
    env = dict(os.environ, OPENCITE_SERVE__MODEL=str(tmp_path / "no-model-here"),
               OPENCITE_SERVE__PORT=str(free_port()), OPENCITE_SERVE__STARTUP_TIMEOUT="120",
               HF_HUB_OFFLINE="1")
    done = run(env, timeout=240)
    assert done.returncode == 1
    out = " ".join((done.stderr + done.stdout).split())
    assert "no-model-here" in out and "OPENCITE_SERVE__MODEL=/path/to/model" in out
    assert "OPENCITE_LLM__BASE_URL" in out


def test_configured_llm_and_filled_index_open_the_chat(settings_env, scripted_llm):
    add_pages(settings_env, PAGES)
    port = free_port()
    env = dict(os.environ, OPENCITE_LLM__BASE_URL=scripted_llm.base_url,
               OPENCITE_LLM__MODEL=scripted_llm.model)
    proc = subprocess.Popen(UP + ["--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=90, proc=proc)
        assert httpx.get(f"http://127.0.0.1:{port}/").status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "index: 5 chunks" in err and "answers" in err and "ingesting" not in err


def test_empty_index_is_ingested_from_the_sources_file_then_the_chat_opens(settings_env, scripted_llm,
                                                                          site, tmp_path):
    from opencite.store.index import open_index
    from tests.ingest.pages import blog

    urls = [site.put(path, html) for path, html in blog(3).items()]
    sources = tmp_path / "sources.txt"
    sources.write_text("\n".join(urls) + "\n")
    port = free_port()
    env = dict(os.environ, OPENCITE_LLM__BASE_URL=scripted_llm.base_url,
               OPENCITE_LLM__MODEL=scripted_llm.model, OPENCITE_FETCH__RESPECT_ROBOTS="false")
    proc = subprocess.Popen(UP + ["--from", str(sources), "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=240, proc=proc)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "ingesting" in err
    with open_index(settings_env) as idx:
        got = {m["source"] for m in idx.collection.get(include=["metadatas"])["metadatas"]}
    assert got == set(urls)


def test_on_a_fresh_home_up_chooses_llamacpp_and_the_chat_answers_through_it(settings_env, tmp_path):
    from tests.fixtures.tiny_gguf import write_tiny_gguf

    add_pages(settings_env, PAGES)
    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    home = tmp_path / "home"
    home.mkdir()
    port, llm_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENCITE_LLM__")}
    env.update(HOME=str(home), OPENCITE_SERVE__MODEL=str(gguf), OPENCITE_SERVE__PORT=str(llm_port),
               OPENCITE_SERVE__MAX_MODEL_LEN="2048", OPENCITE_SERVE__THREADS="1", HF_HUB_OFFLINE="1")
    proc = subprocess.Popen(UP + ["--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", timeout=240, proc=proc)
        models = httpx.get(f"http://127.0.0.1:{llm_port}/v1/models").json()
        assert models["data"]  # the llama.cpp server `up` started answers
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=60)
    assert "running:" in err and "llama_cpp.server" in err  # `opencite serve --engine auto` chose llama.cpp
    assert "llama.cpp is not used" not in err
