"""`--engine auto` (the default): llama.cpp where it is installed and loads, else `transformers
serve`, with one line saying why."""

from __future__ import annotations

import importlib.util
import shlex

import pytest
from typer.testing import CliRunner

from opencite.cli import app
from opencite.serving import engine_choice
from opencite.serving.engine_choice import choose_engine, llamacpp_loads
from opencite.serving.llamacpp_build import missing_instructions
from opencite.settings import Settings, get_settings


@pytest.fixture(autouse=True)
def fresh_check():
    llamacpp_loads.cache_clear()
    yield
    llamacpp_loads.cache_clear()


def settings(**serve) -> Settings:
    return Settings(_env_file=None, serve=serve)


def test_a_named_engine_is_kept_and_a_hugging_face_model_means_cpu():
    assert choose_engine(settings(engine="cpu")) == ("cpu", "")
    assert choose_engine(settings(engine="vllm")) == ("vllm", "")
    assert choose_engine(settings(model="Qwen/Qwen2.5-0.5B-Instruct")) == ("cpu", "")
    assert choose_engine(settings(model="/models/tiny-llm")) == ("cpu", "")


def test_auto_is_llamacpp_where_it_loads():
    assert importlib.util.find_spec("llama_cpp") is not None  # the test extra installs it
    assert choose_engine(settings()) == ("llamacpp", "")
    assert choose_engine(settings(model="/models/q8.gguf")) == ("llamacpp", "")


def test_not_installed_falls_back_with_the_install_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    engine, why = choose_engine(settings())
    assert engine == "cpu" and "not installed" in why and "opencite.serving.llamacpp_build" in why


def test_a_build_for_another_cpu_falls_back_instead_of_crashing(tmp_path, monkeypatch):
    # What a -march=native build does on a CPU without the builder's instructions: SIGILL on load.
    fake = tmp_path / "llama_cpp"
    fake.mkdir()
    (fake / "__init__.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    engine, why = choose_engine(settings())
    assert engine == "cpu" and "instructions this machine lacks" in why


def test_a_build_with_instructions_the_cpu_lacks_falls_back_before_any_crash(tmp_path, monkeypatch):
    # A build for a newer CPU often loads fine and dies on its first matmul: what it was built
    # with is compared against the CPU's flags instead.
    fake = tmp_path / "llama_cpp"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "def llama_backend_init(): pass\n"
        "def llama_print_system_info(): return b'CPU : SSE3 = 1 | AVX2 = 1 | AVX512 = 1 | AVX512_BF16 = 1 |'\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(engine_choice, "missing_instructions",
                        lambda info: missing_instructions(info, flags={"sse4_2", "avx", "avx2", "fma", "f16c"}))
    engine, why = choose_engine(settings())
    assert engine == "cpu" and "uses AVX512, AVX512_BF16, which this CPU lacks" in why
    assert "opencite.serving.llamacpp_build" in why


def test_serve_says_in_one_line_why_llamacpp_is_passed_over(settings_env, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    get_settings.cache_clear()
    done = CliRunner().invoke(app, ["serve", "--dry-run"])
    assert done.exit_code == 0, done.output
    assert "llama.cpp is not used: llama-cpp-python is not installed" in done.output
    assert "transformers" in shlex.split(done.output.strip().splitlines()[-1])[0]
