import pytest
"""`opencite feedback export` → `opencite eval run`: answers from the real chain, rated through the
chat's own writer (`save_feedback`), exported and run again (scripted LLM double as LLM and judge)."""

import json

from typer.testing import CliRunner

from opencite.app.rag.chain import RagChain
from opencite.app.ui.render import answer_record, save_feedback
from opencite.cli import app
from opencite.eval.feedback import read_feedback
from opencite.eval.run import run_eval
from opencite.settings import get_settings
from tests.eval.test_run import PAGES, eval_settings, scripted  # noqa: F401  (fixture)


def rate(settings, question, rating, note="", message_id=None):
    answer = RagChain(settings).invoke([{"role": "user", "content": question}])
    record = {**answer_record(answer), "id": message_id or question[:12], "kb": "default"}
    save_feedback(settings.feedback_path, record, rating, note=note)
    return record


@pytest.mark.slow  # a whole run end to end or real timeouts: the full suite runs it
def test_feedback_export_round_trips_into_eval_run(eval_settings, scripted_llm, tmp_path, monkeypatch):  # noqa: F811
    settings, _ = eval_settings
    up = rate(settings, "What is the capital of France?", "up", message_id="m-up")
    rate(settings, "Tell me about Madrid.", "up", message_id="m-down")
    # The user changes the vote to 👎, then adds a note: the last vote and the note win.
    record = rate(settings, "Tell me about Madrid.", "down", message_id="m-down")
    save_feedback(settings.feedback_path, record, "down", note="  cites the wrong\npage ")
    assert len(read_feedback(settings.feedback_path)) == 2

    monkeypatch.setenv("OPENCITE_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    out = tmp_path / "fb.jsonl"
    result = CliRunner().invoke(app, ["feedback", "export", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 questions (1 👍, 1 👎)" in result.output
    questions = {q["id"]: q for q in map(json.loads, out.read_text().splitlines())}
    good, bad = questions["fb-m-up"], questions["fb-m-down"]
    assert good["question"] == "What is the capital of France?"
    assert good["reference"] == up["content"] and good["sources"] == ["https://blog.example/blog/paris"]
    assert good["sources_shown"][0] == "https://blog.example/blog/paris"
    assert bad["rating"] == "down" and bad["note"] == "cites the wrong page"
    assert "reference" not in bad and "sources" not in bad  # a 👎 says what was wrong, not what is right
    assert bad["answer_given"] == record["content"]
    assert len(bad["sources_shown"]) == min(settings.retrieval.k, len(PAGES))

    down_only = CliRunner().invoke(app, ["feedback", "export", "--out", str(out), "--rating", "down"])
    assert down_only.exit_code == 0 and [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["fb-m-down"]

    # eval run accepts the export as it is.
    CliRunner().invoke(app, ["feedback", "export", "--out", str(out)])
    run = run_eval(settings, out, out=tmp_path / "run")
    rows = {q["id"]: q for q in run["questions"]}
    assert set(rows) == {"fb-m-up", "fb-m-down"}
    assert run["summary"]["retrieval"]["questions"] == 1  # only the 👍 names its pages


def test_export_without_feedback_or_with_a_broken_line_says_how_to_fix(settings_env, tmp_path):
    get_settings.cache_clear()
    missing = CliRunner().invoke(app, ["feedback", "export"])
    assert missing.exit_code == 2 and "No feedback file" in missing.output and "opencite ui" in missing.output
    broken = tmp_path / "fb.jsonl"
    broken.write_text('{"rating": "up"}\n{not json\n')
    bad = CliRunner().invoke(app, ["feedback", "export", "--feedback", str(broken), "--out", str(tmp_path / "o.jsonl")])
    assert bad.exit_code == 2 and "line 2" in bad.output
    assert not (tmp_path / "o.jsonl").exists()
