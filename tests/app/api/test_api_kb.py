"""Knowledge bases as models and keys scoped to them, through the OpenAI Python client against
a live API: two KBs ingested (real pipeline) from two local sites, the scripted LLM double."""

from __future__ import annotations

import openai
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from opencite.app.api.server import create_app
from opencite.app.api.keys import KeysFileError
from opencite.store import kb
from opencite.ingest.pipeline import SourceSet, run_ingest
from tests.app.api_server import live_api
from tests.ingest.pages import article

ALL_KEY = "sk-all-0123456789"
SPACE_KEY = "sk-space-0123456789"
KEYS = f"""
[[keys]]
name = "ops"
key = "{ALL_KEY}"
kbs = ["*"]

[[keys]]
name = "space-team"
key = "{SPACE_KEY}"
kbs = ["space"]
"""


@pytest.fixture
def two_kbs(llm_settings, site, second_site, tmp_path):
    llm_settings.llm.api_key = SecretStr("not-needed")
    animals = site.put("/llamas", article("Llamas", {"Wool": "Llamas grow soft wool in the Andes."}))
    rockets = second_site.put("/rockets", article("Rockets", {"Fuel": "Rockets burn kerosene and oxygen."}))
    for name, url in (("animals", animals), ("space", rockets)):
        kb.create(llm_settings, name)
        run_ingest(kb.kb_settings(llm_settings, name), SourceSet([url]))
    keys = tmp_path / "keys.toml"
    keys.write_text(KEYS)
    llm_settings.api.keys_file = keys
    return llm_settings, site, second_site


@pytest.fixture
def api(two_kbs, scripted_llm):
    with live_api(create_app(two_kbs[0])) as server:
        yield server


def client(api, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=api.base_url, api_key=key, max_retries=0)


def ask(c: openai.OpenAI, model: str):
    return c.chat.completions.create(model=model, messages=[{"role": "user", "content": "What do you know?"}])


def test_each_kb_is_a_model_and_answers_cite_only_its_own_site(api, two_kbs, scripted_llm):
    _, site, second_site = two_kbs
    ops = client(api, ALL_KEY)
    assert [m.id for m in ops.models.list().data] == [
        "opencite-rag", "opencite-rag/default", "opencite-rag/animals", "opencite-rag/space"]
    assert ops.models.retrieve("opencite-rag/space").id == "opencite-rag/space"
    for model, own, other in (("opencite-rag/animals", site, second_site),
                              ("opencite-rag/space", second_site, site)):
        scripted_llm.reply("From the pages [1].")
        resp = ask(ops, model)
        assert resp.model == model
        urls = [s["url"] for s in resp.model_extra["sources"]]
        assert urls and all(u.startswith(own.base) for u in urls), urls
        assert not any(u.startswith(other.base) for u in urls)
        assert resp.model_extra["citations"][0]["url"].startswith(own.base)
        stream = ops.chat.completions.create(model=model, stream=True,
                                             messages=[{"role": "user", "content": "More?"}])
        chunks = list(stream)
        assert chunks[0].model == model
        final = [c for c in chunks if c.choices and c.choices[0].finish_reason][0]
        assert all(s["url"].startswith(own.base) for s in final.model_extra["sources"])
    # The default KB (the conftest's five pages) is still the bare model.
    scripted_llm.reply("Paris [1].")
    assert ask(ops, "opencite-rag").model_extra["sources"][0]["url"].startswith("https://blog.example/")


# Each case ingests two KBs and starts a live API; tests/app/api/test_api_models.py resolves every case
# in-process and the test above keeps the keys file over a live API in the fast tier.
@pytest.mark.slow
@pytest.mark.parametrize("model", ["opencite-rag/animals", "opencite-rag", "opencite-rag/default",
                                   "opencite-rag/nope", "opencite-rag/../space", "gpt-4o"])
def test_a_scoped_key_sees_and_queries_only_its_kbs(api, scripted_llm, model):
    space = client(api, SPACE_KEY)
    assert [m.id for m in space.models.list().data] == ["opencite-rag/space"]
    with pytest.raises(openai.NotFoundError) as err:
        ask(space, model)
    assert err.value.code == "model_not_found" and err.value.body["param"] == "model"
    assert "opencite-rag/space" in err.value.message  # what the key may use
    with pytest.raises(openai.NotFoundError):
        space.models.retrieve(model)
    scripted_llm.reply("Rockets [1].")
    assert ask(space, "opencite-rag/space").choices[0].message.content == "Rockets [1]."
    with pytest.raises(openai.AuthenticationError):
        client(api, "sk-wrong-0123456789").models.list()


@pytest.mark.slow  # tests/app/api/test_api_models.py checks deletion in-process; this runs it over a live API
def test_deleting_a_kb_removes_its_model_and_leaves_the_other(api, two_kbs, scripted_llm):
    settings, _, second_site = two_kbs
    ops = client(api, ALL_KEY)
    scripted_llm.reply("Llamas [1].")
    ask(ops, "opencite-rag/animals")  # its chain is open in the API
    kb.delete(settings, "animals")
    with pytest.raises(openai.NotFoundError) as err:
        ask(ops, "opencite-rag/animals")
    assert err.value.code == "model_not_found"
    assert "opencite-rag/animals" not in [m.id for m in ops.models.list().data]
    scripted_llm.reply("Rockets [1].")
    resp = ask(ops, "opencite-rag/space")
    assert [s["url"] for s in resp.model_extra["sources"]] == [second_site.url("/rockets")]
    # Made again under the same name: a new, empty KB, not the old chain's collection.
    kb.create(settings, "animals")
    scripted_llm.reply("Nothing.")
    with pytest.raises(openai.APIStatusError) as err:
        ask(ops, "opencite-rag/animals")
    assert err.value.code == "empty_index"


@pytest.mark.parametrize("text, problem", [
    ("[[keys]\nname = 'x'", "is not valid TOML"),
    ("[[keys]]\nname = 'x'\nkey = 'sk-secret-value-1'\nkbs = ['../etc']", "Invalid knowledge base name '../etc'"),
    ("[[keys]]\nname = 'x'\nkey = 'sk-secret-value-1'", "keys.0.kbs: Field required"),
    ("[[keys]]\nname = 'x'\nkey = 'sk-secret-value-1'\nkbs = ['*']\n[[keys]]\nname = 'y'\n"
     "key = 'sk-secret-value-1'\nkbs = ['*']", "the same key is listed twice"),
])
def test_a_keys_file_that_does_not_parse_stops_startup_clearly(llm_settings, settings_env, tmp_path,
                                                               monkeypatch, text, problem):
    from opencite.cli import app
    from opencite.settings import get_settings

    keys = tmp_path / "keys.toml"
    keys.write_text(text)
    llm_settings.api.keys_file = keys
    with pytest.raises(KeysFileError) as err:
        create_app(llm_settings)
    assert problem in str(err.value) and str(keys) in str(err.value)
    assert "sk-secret-value-1" not in str(err.value)  # keys are never echoed
    monkeypatch.setenv("OPENCITE_API__KEYS_FILE", str(keys))
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["api", "--port", "1"])
    assert result.exit_code == 2 and "keys file" in result.output and "Fix:" in result.output
    assert "sk-secret-value-1" not in result.output
