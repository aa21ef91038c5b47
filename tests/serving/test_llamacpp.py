"""`--engine llamacpp`: the `python -m llama_cpp.server` command, and a real llama.cpp server on a
tiny GGUF written at test time (tests/fixtures/tiny_gguf.py).

The command tests parse the built command with llama-cpp-python's own argument parser and
settings models (what the server itself runs at start), so a flag it lacks or a value it rejects
fails here. The Hub cannot be reached: where a preset's GGUF would be downloaded, a download
double stands in for `huggingface_hub.hf_hub_download` and hands back a local file.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import httpx
import pytest

from opencite.serving import llamacpp
from opencite.serving.commands import engine_command, redact
from opencite.serving.endpoint import served_context_window
from opencite.serving.presets import load_presets
from opencite.settings import Settings

server_settings = pytest.importorskip("llama_cpp.server.settings", reason="the llamacpp extra is not installed")


def parse(cmd: list[str]):
    """(ModelSettings, ServerSettings) exactly as `python -m llama_cpp.server` builds them."""
    from llama_cpp.server.cli import add_args_from_model, parse_model_from_args

    assert cmd[:3] == [sys.executable, "-m", "llama_cpp.server"]
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_args_from_model(parser, server_settings.Settings)
    args, unknown = parser.parse_known_args(cmd[3:])
    assert not unknown, f"flags llama_cpp.server does not have: {unknown}"
    return (parse_model_from_args(server_settings.ModelSettings, args),
            parse_model_from_args(server_settings.ServerSettings, args))


def hub_download_double(tmp_path: Path, calls: list):
    """Stands in for hf_hub_download (the Hub is unreachable here): a local file per requested name."""

    def download(repo_id: str, filename: str) -> str:
        calls.append((repo_id, filename))
        path = tmp_path / "hub" / repo_id / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"GGUF")
        return str(path)

    return download


def test_local_gguf_command_has_every_flag(tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    s = Settings(serve={"engine": "llamacpp", "model": str(gguf), "served_model_name": "local",
                        "host": "0.0.0.0", "port": 8123, "api_key": "s3cret"})
    cmd = engine_command(s)
    model, server = parse(cmd)
    assert (model.model, model.model_alias) == (str(gguf), "local")
    assert (server.host, server.port, server.api_key) == ("0.0.0.0", 8123, "s3cret")
    assert model.n_ctx == served_context_window(s) == 32768  # the default preset's window
    assert model.flash_attn is True and model.logits_all is False
    assert model.cache is True and model.cache_type == "ram"
    assert model.chat_format is None  # the GGUF's own chat template
    assert model.n_threads == model.n_threads_batch == llamacpp.physical_cores()
    assert "s3cret" not in shlex.join(redact(cmd))


@pytest.mark.parametrize("preset", sorted(p.name for p in load_presets().values() if "llamacpp" in p.engines))
def test_every_llamacpp_preset_fetches_its_gguf_and_sizes_the_context(preset, tmp_path):
    calls: list = []
    p = load_presets()[preset]
    s = Settings(serve={"engine": "llamacpp", "preset": preset})
    model, _ = parse(llamacpp.engine_command(s, download=hub_download_double(tmp_path, calls)))
    assert calls[0] == (p.gguf_repo, p.gguf_file)
    assert model.model == str(tmp_path / "hub" / p.gguf_repo / p.gguf_file)
    assert model.model_alias == p.served_model_name
    assert model.n_ctx == min(p.context_window, p.max_model_len or p.context_window)


def test_a_split_gguf_fetches_every_shard_and_loads_the_first(tmp_path):
    calls: list = []
    s = Settings(serve={"engine": "llamacpp", "preset": "qwen2.5-7b-instruct"})
    model, _ = parse(llamacpp.engine_command(s, download=hub_download_double(tmp_path, calls)))
    assert [f for _, f in calls] == ["qwen2.5-7b-instruct-q4_k_m-00001-of-00002.gguf",
                                     "qwen2.5-7b-instruct-q4_k_m-00002-of-00002.gguf"]
    assert model.model.endswith("-00001-of-00002.gguf") and model.n_ctx == 16384


def test_settings_override_the_file_threads_and_window(tmp_path):
    calls: list = []
    s = Settings(serve={"engine": "llamacpp", "preset": "qwen2.5-0.5b-instruct", "threads": 3,
                        "gguf_file": "qwen2.5-0.5b-instruct-q4_k_m.gguf", "max_model_len": 4096})
    model, _ = parse(llamacpp.engine_command(s, download=hub_download_double(tmp_path, calls)))
    assert calls == [("Qwen/Qwen2.5-0.5B-Instruct-GGUF", "qwen2.5-0.5b-instruct-q4_k_m.gguf")]
    assert (model.n_threads, model.n_threads_batch, model.n_ctx) == (3, 3, 4096)


def test_physical_cores_is_within_what_the_process_may_use():
    cores = llamacpp.physical_cores()
    assert 1 <= cores <= len(os.sched_getaffinity(0))


def test_dry_run_downloads_nothing():
    s = Settings(serve={"engine": "llamacpp", "preset": "qwen2.5-1.5b-instruct"})
    model, _ = parse(engine_command(s, resolve=False))
    # Not cached (the usual case): a placeholder naming what `serve` will fetch.
    assert model.model.endswith("qwen2.5-1.5b-instruct-q4_k_m.gguf") or "Qwen/Qwen2.5-1.5B-Instruct-GGUF" in model.model


def test_a_preset_without_a_gguf_and_a_missing_file_are_clear_errors(tmp_path):
    with pytest.raises(llamacpp.GGUFModelError, match="needs a GGUF file"):
        engine_command(Settings(serve={"engine": "llamacpp", "preset": "mixtral-8x7b-instruct"}))
    with pytest.raises(llamacpp.GGUFModelError, match="does not exist"):
        engine_command(Settings(serve={"engine": "llamacpp", "model": str(tmp_path / "gone.gguf")}))


# --- a real llama.cpp server on the tiny GGUF ---------------------------------------------------


def client(engine):
    from openai import OpenAI

    return OpenAI(base_url=engine.base_url, api_key=engine.api_key, max_retries=0, timeout=60)


@pytest.mark.slow
def test_models_lists_the_alias(llamacpp_engine):
    assert [m.id for m in client(llamacpp_engine).models.list()] == [llamacpp_engine.model]


@pytest.mark.slow
def test_chat_completion(llamacpp_engine):
    resp = client(llamacpp_engine).chat.completions.create(
        model=llamacpp_engine.model, messages=[{"role": "user", "content": "hello"}], max_tokens=8, temperature=0,
    )
    assert resp.choices[0].message.role == "assistant"
    assert isinstance(resp.choices[0].message.content, str)
    assert resp.choices[0].finish_reason in ("stop", "length")
    assert 1 <= resp.usage.completion_tokens <= 8


@pytest.mark.slow
def test_chat_completion_stream(llamacpp_engine):
    stream = client(llamacpp_engine).chat.completions.create(
        model=llamacpp_engine.model, messages=[{"role": "user", "content": "hello"}], max_tokens=8,
        temperature=0, stream=True,
    )
    chunks = list(stream)
    assert any(c.choices and c.choices[0].delta.content for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] in (
        ["stop"], ["length"])


@pytest.mark.slow
def test_the_ggufs_chatml_template_formats_the_prompt(llamacpp_engine):
    messages = [{"role": "system", "content": "Cite your sources."}, {"role": "user", "content": "Who serves models?"}]
    resp = client(llamacpp_engine).chat.completions.create(
        model=llamacpp_engine.model, messages=messages, max_tokens=1, temperature=0,
    )
    root = llamacpp_engine.base_url.removesuffix("/v1")

    def count(text: str) -> int:
        r = httpx.post(f"{root}/extras/tokenize", json={"input": text}, timeout=30)
        return len(r.json()["tokens"])

    chatml = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"
    llama2 = "<s>[INST] <<SYS>>\nCite your sources.\n<</SYS>>\n\nWho serves models? [/INST]"
    assert count("<|im_start|>") == 1  # one special token, not its characters
    assert resp.usage.prompt_tokens == count(chatml) != count(llama2)
    log = (llamacpp_engine.data_dir / "runtime" / "serve.log").read_text(errors="replace")
    assert "Using gguf chat template" in log and "Using fallback chat format" not in log


@pytest.mark.slow
def test_runtime_files_record_the_server(llamacpp_engine):
    import json

    runtime = llamacpp_engine.data_dir / "runtime"
    state = json.loads((runtime / "serve.json").read_text())
    assert state["url"] == llamacpp_engine.base_url
    assert state["command"][1:3] == ["-m", "llama_cpp.server"]
    assert "Uvicorn running" in (runtime / "serve.log").read_text(errors="replace")


@pytest.mark.slow
def test_api_key_is_enforced(tmp_path):
    from opencite.serving import process
    from opencite.serving.endpoint import served_base_url
    from tests.conftest import free_port
    from tests.fixtures.tiny_gguf import write_tiny_gguf

    gguf = write_tiny_gguf(tmp_path / "tiny.gguf")
    s = Settings(_env_file=None, data_dir=tmp_path / "data", serve={
        "engine": "llamacpp", "model": str(gguf), "served_model_name": "tiny", "port": free_port(),
        "max_model_len": 512, "threads": 1, "api_key": "k3y"})
    url = served_base_url(s)
    process.start_detached(s, engine_command(s), url, "k3y", timeout=120)
    try:
        assert httpx.get(f"{url}/models", timeout=10).status_code == 401
        assert httpx.get(f"{url}/models", headers={"Authorization": "Bearer k3y"}, timeout=10).status_code == 200
    finally:
        process.stop(s)
