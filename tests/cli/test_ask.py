"""`opencite ask` end to end over a small real index (MiniLM, embedded Chroma) against the
scripted LLM double (the answer's text must be exact to check markers, quotes and verdicts)."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from opencite.cli import app
from opencite.settings import get_settings


@pytest.fixture
def ask(indexed, settings_env, scripted_llm, monkeypatch):
    for key, value in {"OPENCITE_LLM__BASE_URL": scripted_llm.base_url, "OPENCITE_LLM__MODEL": scripted_llm.model,
                       "OPENCITE_LLM__API_KEY": scripted_llm.api_key, "OPENCITE_LLM__CONTEXT_WINDOW": "4096",
                       "OPENCITE_LLM__MAX_RETRIES": "0"}.items():
        monkeypatch.setenv(key, value)
    runner = CliRunner()

    def invoke(*args: str):
        get_settings.cache_clear()
        return runner.invoke(app, ["ask", *args])

    return invoke


def test_the_answer_streams_then_its_sources_with_quotes_and_verdicts(ask, scripted_llm):
    scripted_llm.reply("The Eiffel Tower was completed in 1889 [1]. The tower is painted bright green every spring [1].")
    result = ask("When was the Eiffel Tower completed?", "--timings")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "completed in 1889" in out and "https://blog.example/paris" in out and "Paris facts" in out
    assert "“The Eiffel Tower was completed in 1889.” supported" in out.replace("\n", " ").replace("    ", " ")
    assert "not supported by the sources: The tower is painted bright green" in out.replace("\n", " ")
    for line in ("retrieval", "first token", "last token", "attribution"):
        assert line in out
    assert re.search(r"prompt tokens\s+\d+", out) and re.search(r"answer tokens\s+\d+", out)


def test_json_is_the_apis_non_streamed_body(ask, scripted_llm):
    scripted_llm.reply("Rome is the capital of Italy [1].")
    result = ask("What is the capital of Italy?", "--json")
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["object"] == "chat.completion" and body["model"] == "opencite-rag"
    assert body["choices"][0]["message"]["content"].startswith("Rome is the capital of Italy")
    assert body["citations"][0]["url"] == "https://blog.example/rome"
    assert body["attributions"]["sentences"][0]["outcome"] == "supported"


@pytest.mark.parametrize("args, env, message", [
    (["  "], {}, "the question is empty"),
    (["Where?", "--kb", "nope"], {}, "nope"),
    (["Where?"], {"OPENCITE_LLM__BASE_URL": "http://127.0.0.1:9/v1"}, "no LLM engine answers"),
])
def test_bad_input_is_one_clear_line(ask, monkeypatch, args, env, message):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = ask(*args)
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output


@pytest.mark.slow  # a real llama.cpp server
def test_ask_end_to_end_through_llamacpp(indexed, settings_env, llamacpp_engine, monkeypatch):
    for key, value in {"OPENCITE_LLM__BASE_URL": llamacpp_engine.base_url, "OPENCITE_LLM__MODEL": llamacpp_engine.model,
                       "OPENCITE_LLM__CONTEXT_WINDOW": "2048", "OPENCITE_LLM__MAX_TOKENS": "16"}.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["ask", "What is the capital of Italy?", "--timings"])
    assert result.exit_code == 0, result.output
    for line in ("first token", "last token"):
        assert line in result.output
    body = CliRunner().invoke(app, ["ask", "What is the capital of Italy?", "--json"])
    assert body.exit_code == 0, body.output
    assert json.loads(body.output)["sources"][0]["url"] == "https://blog.example/rome"


@pytest.fixture
def live(llm_settings, scripted_llm, settings_env, monkeypatch):
    """`opencite api` for real (uvicorn, the real chain over the same index), at the address the
    command's settings name."""
    from opencite.app.api.server import create_app
    from tests.app.api_server import live_api

    with live_api(create_app(llm_settings)) as server:
        monkeypatch.setenv("OPENCITE_API__PORT", str(server.port))
        yield server


def test_a_running_api_on_the_same_index_answers(ask, live, scripted_llm):
    scripted_llm.reply("The Eiffel Tower was completed in 1889 [1]. The tower is painted bright green every spring [1].")
    before = live.health()["started_generations"]
    result = ask("When was the Eiffel Tower completed?", "--timings")
    assert result.exit_code == 0, result.output
    out = result.output.replace("\n", " ").replace("    ", " ")
    assert f"answered by the opencite API at {live.url}" in " ".join(out.split())
    assert "“The Eiffel Tower was completed in 1889.” supported" in out
    assert "not supported by the sources: The tower is painted bright green" in out
    assert re.search(r"first token\s+[\d.]+ s after the command started", result.output)
    assert re.search(r"retrieval\s+[\d.]+ s", result.output) and re.search(r"prompt tokens\s+\d+", result.output)
    assert live.health()["started_generations"] == before + 1

    scripted_llm.reply("Rome is the capital of Italy [1].")
    body = json.loads(ask("What is the capital of Italy?", "--json").output)
    assert body["object"] == "chat.completion" and body["citations"][0]["url"] == "https://blog.example/rome"
    assert live.health()["started_generations"] == before + 2


def test_local_answers_in_this_process(ask, live, scripted_llm):
    scripted_llm.reply("Rome is the capital of Italy [1].")
    before = live.health()["started_generations"]
    result = ask("What is the capital of Italy?", "--timings", "--local")
    assert result.exit_code == 0, result.output
    assert "answered by      this process" in result.output
    assert live.health()["started_generations"] == before


def test_an_api_reading_another_index_is_not_used(ask, live, scripted_llm, monkeypatch, tmp_path):
    import shutil

    other = tmp_path / "other-data"
    # The live API's BM25 index may be writing a temporary file (tantivy's .tmp*) as we copy:
    # it is not part of the index, and it can vanish mid-copy.
    shutil.copytree(get_settings().data_dir, other, ignore=shutil.ignore_patterns(".tmp*"))
    monkeypatch.setenv("OPENCITE_DATA_DIR", str(other))
    scripted_llm.reply("Rome is the capital of Italy [1].")
    result = ask("What is the capital of Italy?", "--timings")
    assert result.exit_code == 0, result.output
    assert "answered by      this process" in result.output


def test_an_api_wanting_a_key_leaves_the_question_to_this_process(indexed, settings_env, scripted_llm, ask,
                                                                  monkeypatch):
    from pydantic import SecretStr

    from opencite.app.api.server import create_app
    from tests.app.api_server import live_api

    indexed.api.api_key = SecretStr("sk-only-the-api-knows")
    with live_api(create_app(indexed)) as server:
        monkeypatch.setenv("OPENCITE_API__PORT", str(server.port))
        scripted_llm.reply("Rome is the capital of Italy [1].")
        result = ask("What is the capital of Italy?", "--timings")
    assert result.exit_code == 0, result.output
    assert "answered by      this process" in result.output


def test_the_api_loads_the_embedder_before_the_first_question(llm_settings):
    import time

    from opencite.app.api.server import create_app
    from tests.app.api_server import live_api

    app = create_app(llm_settings)
    with live_api(app):
        deadline = time.monotonic() + 120
        while not app.state.chain.index.embeddings.is_loaded:
            assert time.monotonic() < deadline, "the API did not load its embedder after starting"
            time.sleep(0.2)
