import json
import subprocess
import sys

import pytest
from pydantic import ValidationError

from opencite.settings import Settings


def test_env_and_dotenv_layering(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("OPENCITE_CHROMA__COLLECTION=from_dotenv\nOPENCITE_LLM__MODEL=dotenv-model\n")
    monkeypatch.setenv("OPENCITE_LLM__MODEL", "env-model")
    s = Settings()
    assert s.chroma.collection == "from_dotenv"
    assert s.llm.model == "env-model"  # the environment wins over .env


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


def test_precision_accepts_only_known_values():
    with pytest.raises(ValidationError, match="precision"):
        Settings(embedding={"precision": "int4"})


def test_printing_the_config_loads_no_torch(tmp_path):
    probe = "import sys, opencite.settings as s; s.masked_dump(s.Settings()); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout.strip() == "False"
