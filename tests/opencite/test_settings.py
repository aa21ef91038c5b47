import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from opencite.settings import BGE_QUERY_INSTRUCTION, Settings


def test_env_and_dotenv_layering(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("OPENCITE_CHROMA__COLLECTION=from_dotenv\nOPENCITE_LLM__MODEL=dotenv-model\n")
    monkeypatch.setenv("OPENCITE_LLM__MODEL", "env-model")
    s = Settings()
    assert s.chroma.collection == "from_dotenv"
    assert s.llm.model == "env-model"  # the environment wins over .env


def test_bge_instruction_only_for_bge_models():
    s = Settings(embedding={"model": "BAAI/bge-small-en-v1.5"})
    assert s.embedding.resolved_query_instruction() == BGE_QUERY_INSTRUCTION
    s = Settings(embedding={"model": "sentence-transformers/all-MiniLM-L6-v2"})
    assert s.embedding.resolved_query_instruction() == ""


def test_cpu_default_is_the_light_model():
    s = Settings(embedding={"device": "cpu"})
    assert s.embedding.resolved_model() == "BAAI/bge-small-en-v1.5"


def test_overlap_must_be_below_chunk_size():
    with pytest.raises(ValidationError, match="overlap_tokens"):
        Settings(chunking={"chunk_tokens": 64, "overlap_tokens": 64})


def test_config_command_masks_secrets(tmp_path):
    env = {"OPENCITE_LLM__API_KEY": "sk-very-secret", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-m", "opencite.cli", "config", "--json"],
        capture_output=True, text=True, cwd=tmp_path, env=env, check=True,
    ).stdout
    data = json.loads(out)
    assert data["llm"]["api_key"] == "**********"
    assert "sk-very-secret" not in out


def test_auto_precision_is_bf16_only_on_a_cpu_with_native_bf16(monkeypatch):
    from opencite import settings as settings_module

    monkeypatch.setattr(settings_module, "_cpu_has_native_bf16", lambda: True)
    assert Settings(embedding={"device": "cpu"}).embedding.resolved_precision() == "bfloat16"
    assert Settings(embedding={"device": "cuda"}).embedding.resolved_precision() == "float32"
    monkeypatch.setattr(settings_module, "_cpu_has_native_bf16", lambda: False)
    assert Settings(embedding={"device": "cpu"}).embedding.resolved_precision() == "float32"
    forced = Settings(embedding={"device": "cpu", "precision": "bfloat16"})
    assert forced.embedding.resolved_precision() == "bfloat16"
    with pytest.raises(ValidationError, match="precision"):
        Settings(embedding={"precision": "int4"})
