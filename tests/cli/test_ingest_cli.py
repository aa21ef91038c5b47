import json

import pytest
from typer.testing import CliRunner

from opencite.cli import app
from opencite.settings import get_settings
from tests.ingest.pages import article


@pytest.fixture
def run(settings_env, monkeypatch):
    runner = CliRunner()

    def invoke(*args, env: dict | None = None):
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        return runner.invoke(app, list(args))

    return invoke


def test_ingest_report_sources_and_delete(run, site, tmp_path):
    good = site.put("/good", article("Good post", {"Part": "Fine text about llamas."}))
    bad = site.url("/gone")
    report = tmp_path / "out" / "report.json"
    result = run("ingest", good, bad, "--report", str(report))
    assert result.exit_code == 1, result.output  # a source failed
    assert "Good post" in result.output and "404" in result.output
    data = json.loads(report.read_text())
    assert {s["requested_url"]: s["outcome"] for s in data["sources"]} == {good: "new", bad: "failed"}
    assert data["summary"]["new"] == 1 and data["summary"]["failed"] == 1

    listed = run("sources", "--json")
    assert listed.exit_code == 0
    rows = json.loads(listed.output)
    assert [(r["url"], r["title"]) for r in rows] == [(good, "Good post")] and rows[0]["chunks"] >= 1

    again = run("ingest", good)
    assert again.exit_code == 0 and "unchanged" in again.output

    deleted = run("sources", "--delete", good)
    assert deleted.exit_code == 0 and "deleted" in deleted.output
    assert json.loads(run("sources", "--json").output) == []
    missing = run("sources", "--delete", good)
    assert missing.exit_code == 2 and "not in the index" in missing.output


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["ingest", "not a url"], {}, "is not an http(s) URL"),
        (["ingest", "--from", "/no/such/list.txt"], {}, "file not found"),
        (["ingest", "http://127.0.0.1:9/x"], {"OPENCITE_CHROMA__URL": "http://127.0.0.1:9"}, "did not answer"),
        (["ingest", "http://127.0.0.1:9/x"], {"OPENCITE_EMBEDDING__MODEL": "/no/such/model"}, "Could not load the embedding model"),
    ],
)
def test_clear_errors_exit_2_without_traceback(run, args, env, message):
    result = run(*args, env=env)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.slow  # three CLI ingests; the fast tier checks the refusal and its --reindex hint in-process (test_index.py)
def test_model_mismatch_is_refused(run, site, minilm_path, tmp_path):
    import shutil

    page = site.put("/p", article("P", {"Part": "Text."}))
    assert run("ingest", page).exit_code == 0
    other = tmp_path / "other-model"
    shutil.copytree(minilm_path, other)  # same weights, another name: a different model to the index
    result = run("ingest", page, env={"OPENCITE_EMBEDDING__MODEL": str(other)})
    assert result.exit_code == 2 and "--reindex" in result.output and "Traceback" not in result.output
    rebuilt = run("ingest", page, "--reindex", env={"OPENCITE_EMBEDDING__MODEL": str(other)})
    assert rebuilt.exit_code == 0 and "new" in rebuilt.output
