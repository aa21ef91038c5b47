"""/metrics (Prometheus) and the per-request log line, against a live API with the real chain,
a real small index and the scripted LLM double."""

from __future__ import annotations

import io
import json
import logging
import logging.config

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from opencite.app.api.server import create_app
from opencite.app.api.metrics import log_config
from tests.app.api_server import live_api

OPS, READER = "sk-ops-0123456789", "sk-reader-0123456789"


@pytest.fixture
def api(llm_settings, tmp_path):
    keys = tmp_path / "keys.toml"
    keys.write_text(f'[[keys]]\nname = "ops"\nkey = "{OPS}"\nkbs = ["*"]\n'
                    f'[[keys]]\nname = "reader"\nkey = "{READER}"\nkbs = ["default"]\n')
    llm_settings.api.keys_file = keys
    with live_api(create_app(llm_settings)) as server:
        yield server


def samples(api) -> dict:
    text = httpx.get(f"{api.url}/metrics", headers={"Authorization": f"Bearer {OPS}"}).text
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(m: dict, name: str, **labels) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_requests_answers_and_failures(api, scripted_llm):
    c = openai.OpenAI(base_url=api.base_url, api_key=READER, max_retries=0)
    before = samples(api)
    q = [{"role": "user", "content": "What is the capital of France?"}]
    scripted_llm.reply("Paris [1] and [9].", "Paris [1].", "I cannot tell.")
    c.chat.completions.create(model="opencite-rag", messages=q)
    list(c.chat.completions.create(model="opencite-rag", messages=q, stream=True))
    c.chat.completions.create(model="opencite-rag/default", messages=q)
    with pytest.raises(openai.NotFoundError):
        c.chat.completions.create(model="opencite-rag/other", messages=q)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=api.base_url, api_key="sk-bad-0123456789", max_retries=0).models.list()
    scripted_llm.fail(503)
    with pytest.raises(openai.APIStatusError):
        c.chat.completions.create(model="opencite-rag", messages=q)

    m = samples(api)
    chat = "/v1/chat/completions"
    assert value(m, "opencite_requests_total", route=chat, kb="default", status="200") \
        - value(before, "opencite_requests_total", route=chat, kb="default", status="200") == 3
    assert value(m, "opencite_requests_total", route=chat, kb="default", status="502") == 1
    assert value(m, "opencite_requests_total", route=chat, kb="", status="404") == 1
    assert value(m, "opencite_requests_total", route="/v1/models", kb="", status="401") == 1
    assert value(m, "opencite_answers_total", kb="default", outcome="cited") == 2
    assert value(m, "opencite_answers_total", kb="default", outcome="uncited") == 1
    assert value(m, "opencite_answers_total", kb="default", outcome="error") == 1
    assert value(m, "opencite_dropped_citation_markers_total", kb="default") == 1
    assert value(m, "opencite_retrieval_seconds_count", kb="default") >= 3
    assert value(m, "opencite_first_token_seconds_count", kb="default") == 3
    assert value(m, "opencite_active_generations") == 0


def test_metrics_need_a_key_that_reads_every_kb(api):
    assert httpx.get(f"{api.url}/metrics").status_code == 401
    denied = httpx.get(f"{api.url}/metrics", headers={"Authorization": f"Bearer {READER}"})
    assert denied.status_code == 403 and denied.json()["error"]["type"] == "permission_error"
    ok = httpx.get(f"{api.url}/metrics", headers={"Authorization": f"Bearer {OPS}"})
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")


@pytest.fixture
def json_log():
    """`opencite api`'s logging set-up with JSON lines, its handler writing into a buffer."""
    logger = logging.getLogger("opencite")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logging.config.dictConfig(log_config(json_logs=True))
    buffer = io.StringIO()
    logger.handlers[0].setStream(buffer)
    yield buffer
    logger.handlers[:], logger.level, logger.propagate = saved


def test_json_logs_one_object_per_request_with_kb_and_key_name_never_the_key(api, json_log, scripted_llm):
    scripted_llm.reply("Paris [1].")
    openai.OpenAI(base_url=api.base_url, api_key=READER, max_retries=0).chat.completions.create(
        model="opencite-rag", messages=[{"role": "user", "content": "Capital of France?"}])
    err = json_log.getvalue()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    req = [r for r in lines if r.get("path") == "/v1/chat/completions"]
    assert len(req) == 1
    assert req[0]["status"] == 200 and req[0]["kb"] == "default" and req[0]["key_name"] == "reader"
    assert req[0]["name"] == "opencite.api.requests" and "time" in req[0]
    assert READER not in err and OPS not in err
