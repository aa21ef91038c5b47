import os

import pytest


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Settings() in these tests sees neither a developer's .env nor their OPENCITE_* variables."""
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.startswith("OPENCITE_"):
            monkeypatch.delenv(key)
