"""The API answers while `opencite ingest` writes to the same index on a Chroma server
(a real `chroma run`, the real ingest CLI in another process)."""

from __future__ import annotations

import pytest
import os
import subprocess
import sys
import threading
import uuid

import httpx
from pydantic import SecretStr

from opencite.app.api.server import create_app
from tests.app.api_server import live_api


pytestmark = pytest.mark.slow  # a Chroma server and an ingest subprocess


def _write_pages(folder, prefix: str, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (folder / f"{prefix}-{i}.md").write_text(
            f"# {prefix.title()} note {i}\n\nThe {prefix} fact number {i} is that {prefix} item {i} "
            f"weighs {i * 7 + 3} kilograms and was catalogued in {1900 + i}.\n" * 3, encoding="utf-8")


def _ingest(folder, env) -> subprocess.Popen:
    exe = [sys.executable, "-m", "opencite.cli", "ingest", str(folder)]
    return subprocess.Popen(exe, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_api_answers_during_an_ingest_on_a_chroma_server(settings_env, chroma_server, scripted_llm,
                                                           tmp_path, monkeypatch):
    collection = f"api-ingest-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("OPENCITE_CHROMA__URL", chroma_server)
    monkeypatch.setenv("OPENCITE_CHROMA__COLLECTION", collection)
    settings = settings_env.model_copy(deep=True)
    settings.chroma.url = chroma_server
    settings.chroma.collection = collection
    settings.llm.base_url = scripted_llm.base_url
    settings.llm.model = scripted_llm.model
    settings.llm.api_key = SecretStr(scripted_llm.api_key)
    settings.llm.context_window = 4096
    settings.llm.max_retries = 0
    scripted_llm.reply("From the notes [1].")
    env = dict(os.environ)

    _write_pages(tmp_path / "seed", "apple", 3)
    seed = _ingest(tmp_path / "seed", env)
    assert seed.wait(300) == 0, seed.stdout.read()

    _write_pages(tmp_path / "more", "granite", 40)
    answers, failures = [], []
    with live_api(create_app(settings)) as api:
        ingest = _ingest(tmp_path / "more", env)
        stop = threading.Event()

        def ask_repeatedly():
            with httpx.Client(timeout=60) as http:
                while not stop.is_set():
                    resp = http.post(f"{api.base_url}/chat/completions", json={
                        "model": api.model, "messages": [{"role": "user", "content": "What does apple item 1 weigh?"}]})
                    (answers if resp.status_code == 200 else failures).append(resp)

        askers = [threading.Thread(target=ask_repeatedly) for _ in range(2)]
        for t in askers:
            t.start()
        try:
            code = ingest.wait(600)
        finally:
            stop.set()
            for t in askers:
                t.join(60)
        assert code == 0, ingest.stdout.read()
        assert not failures, [f.text for f in failures[:3]]
        assert len(answers) >= 2 and all(r.json()["citations"] for r in answers)
        print(f"{len(answers)} answers during the ingest")
        # the new pages are answerable through the API once the ingest is done
        resp = httpx.post(f"{api.base_url}/chat/completions", timeout=60, json={
            "model": api.model, "messages": [{"role": "user", "content": "What does granite item 7 weigh?"}]})
        assert resp.status_code == 200
        assert any("granite" in s["url"] for s in resp.json()["sources"])
