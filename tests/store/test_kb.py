"""Knowledge bases through the real CLI: two KBs ingested from different pages of a local site,
listed, searched and deleted; the default KB is today's single collection."""

import json

import pytest
from typer.testing import CliRunner

from opencite.cli import app
from opencite.store import kb
from opencite.store.bm25 import bm25_path
from opencite.store.index import open_index
from opencite.settings import get_settings
from tests.ingest.pages import article


@pytest.fixture
def run(settings_env):
    runner = CliRunner()

    def invoke(*args):
        get_settings.cache_clear()
        return runner.invoke(app, list(args))

    return invoke


def chunk_sources(settings, name):
    with open_index(kb.kb_settings(settings, name)) as idx:
        return {m["source"] for m in idx.collection.get(include=["metadatas"])["metadatas"]}


@pytest.mark.parametrize("name", ["../x", "a/b", "Docs", "", ".", "a b", "x" * 49, "x-"])
def test_bad_names_are_refused_naming_the_input_and_the_fix(run, name):
    for args in (["kb", "create", name], ["ingest", "--kb", name, "http://127.0.0.1:9/x"],
                 ["sources", "--kb", name]):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert f"Invalid knowledge base name {name!r}" in " ".join(result.output.split())
        assert "lower-case letters" in result.output
    assert not (get_settings().data_dir / "kbs").exists() or not any((get_settings().data_dir / "kbs").iterdir())


def test_unknown_kb_is_refused_with_the_create_command(run):
    result = run("ingest", "--kb", "nope", "http://127.0.0.1:9/x")
    assert result.exit_code == 2 and "opencite kb create nope" in " ".join(result.output.split())


def test_default_kb_is_the_original_collection_and_sources_file(settings):
    d = kb.describe(settings, "default")
    assert d.collection == settings.chroma.collection == "opencite"
    assert d.sources_file == settings.data_dir / "sources.txt"
    assert kb.kb_settings(settings, "default") is settings
    assert kb.kb_settings(settings, "default").record_manager_url == settings.record_manager_url


@pytest.mark.slow  # repeated whole ingest runs; the fast tier keeps per-KB answers (test_api_kb.py) and KB deletion (test_api_models.py)
def test_two_kbs_ingest_apart_and_deleting_one_leaves_the_other(run, site, settings):
    a = site.put("/a/llamas", article("Llamas", {"Wool": "Llamas grow soft wool in the Andes."}))
    b = site.put("/b/rockets", article("Rockets", {"Fuel": "Rockets burn kerosene and liquid oxygen."}))
    d = site.put("/d/tea", article("Tea", {"Brew": "Green tea brews at eighty degrees."}))
    assert run("kb", "create", "animals").exit_code == 0
    assert run("kb", "create", "space").exit_code == 0
    again = run("kb", "create", "space")
    assert again.exit_code == 2 and "already exists" in again.output
    # A KB's own sources file is its default list.
    kb.describe(settings, "space").sources_file.write_text(b + "\n")
    assert run("ingest", "--kb", "animals", a).exit_code == 0
    assert run("ingest", "--kb", "space").exit_code == 0
    assert run("ingest", d).exit_code == 0  # default

    assert chunk_sources(settings, "animals") == {a}
    assert chunk_sources(settings, "space") == {b}
    assert chunk_sources(settings, "default") == {d}
    assert [r["url"] for r in json.loads(run("sources", "--kb", "space", "--json").output)] == [b]
    listed = {r["name"]: r for r in json.loads(run("kb", "list", "--json").output)}
    assert list(listed) == ["default", "animals", "space"]
    assert listed["animals"]["pages"] == 1 and listed["animals"]["chunks"] >= 1
    # The BM25 index follows the KB too.
    space_settings = kb.kb_settings(settings, "space")
    assert bm25_path(space_settings).exists()

    deleted = run("kb", "delete", "space", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert not bm25_path(space_settings).exists()
    assert not (settings.data_dir / "kbs" / "space").exists()
    gone = run("sources", "--kb", "space")
    assert gone.exit_code == 2 and "no knowledge base 'space'" in gone.output
    # Recreating it starts empty: nothing of the old one survived (collection, records, registry).
    assert run("kb", "create", "space").exit_code == 0
    assert json.loads(run("sources", "--kb", "space", "--json").output) == []
    assert chunk_sources(settings, "space") == set()
    # The others are intact, and an unchanged re-run of them embeds nothing.
    assert chunk_sources(settings, "animals") == {a} and chunk_sources(settings, "default") == {d}
    assert bm25_path(kb.kb_settings(settings, "animals")).exists()
    rerun = run("ingest", "--kb", "animals", a)
    assert rerun.exit_code == 0 and "unchanged" in rerun.output
    refused = run("kb", "delete", "default", "--yes")
    assert refused.exit_code == 2 and "cannot be deleted" in refused.output
