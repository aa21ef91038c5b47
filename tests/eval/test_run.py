"""`eval run` end to end: a real tiny index (MiniLM + embedded Chroma), the real RagChain, and the
ScriptedLLMDouble playing both the answering LLM and the judge."""

import json

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from opencite.eval.run import RunConfigError, run_eval
from tests.app.conftest import add_pages

SITE = "https://blog.example"
PAGES = [
    (f"{SITE}/blog/paris", "Paris facts", "Paris is the capital of France. The Eiffel Tower was completed in 1889."),
    (f"{SITE}/blog/rome", "Rome facts", "Rome is the capital of Italy. The Colosseum was finished in 80 AD."),
    (f"{SITE}/blog/berlin", "Berlin facts", "Berlin is the capital of Germany. The Berlin Wall fell in 1989."),
    (f"{SITE}/blog/madrid", "Madrid facts", "Madrid is the capital of Spain. The Prado museum opened in 1819."),
]
QUESTIONS = [
    {"id": "france", "question": "What is the capital of France?", "reference": "Paris.",
     "sources": ["/blog/paris/"]},
    {"id": "two", "question": "When was the Eiffel Tower completed and when did the Berlin Wall fall?",
     "sources": ["/blog/paris", "/blog/berlin#wall"]},
    {"id": "none", "question": "Who painted the Sistine Chapel ceiling?", "sources": []},
    {"id": "free", "question": "Tell me about Madrid."},
]


def scripted(messages):
    """Judge prompts get a verdict; the chain's answer prompt gets an answer by question."""
    text = messages[-1]["content"]
    if text.startswith("You check"):
        return '{"score": 1, "reason": "says not covered"}'
    if text.startswith("You grade"):
        return '{"score": 4, "reason": "fine"}'
    question = text.rsplit("Question:", 1)[-1]  # the page texts come before it
    if "Sistine" in question:
        return "The indexed pages do not cover this."
    if "Eiffel" in question:
        return "It was completed in 1889 [1] and the Wall fell in 1989 [2]. See also [9]."
    return "The answer is in the sources [1]."


@pytest.fixture
def eval_settings(settings, scripted_llm, tmp_path):
    add_pages(settings, PAGES)
    settings.llm.base_url = scripted_llm.base_url
    settings.llm.model = scripted_llm.model
    settings.llm.api_key = SecretStr(scripted_llm.api_key)
    settings.llm.context_window = 4096
    settings.llm.max_retries = 0
    settings.attribution.mode = "flag"  # answers kept as written; outcomes still recorded
    scripted_llm.responder = scripted
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    return settings, path


def _chain_requests(scripted_llm):
    return [r for r in scripted_llm.requests if r["messages"][0]["role"] == "system"]


@pytest.mark.slow  # a whole run end to end or real timeouts: the full suite runs it
def test_run_end_to_end_then_resume(eval_settings, scripted_llm, tmp_path):
    settings, path = eval_settings
    out = tmp_path / "run"
    result = run_eval(settings, path, out=out, k=2, concurrency=2, base_url="HTTPS://BLOG.example/")
    by_id = {r["id"]: r for r in result["questions"]}
    assert list(by_id) == ["france", "two", "none", "free"]  # question order, not finish order
    assert len(_chain_requests(scripted_llm)) == 4

    france = by_id["france"]
    assert france["sources"][0]["url"] == f"{SITE}/blog/paris"
    assert france["retrieval"] == {"hit@2": 1.0, "recall@2": 1.0, "mrr@10": 1.0, "ndcg@10": 1.0}
    assert france["judge"]["correctness"]["score"] == 4
    assert france["judge"]["faithfulness"]["raw"] == '{"score": 4, "reason": "fine"}'
    two = by_id["two"]
    assert two["citations"]["citations"] == 3 and two["citations"]["to_retrieved"] == 2  # [9] dropped
    assert by_id["none"]["says_not_covered"] and by_id["none"]["judge"]["abstention"]["score"] == 1
    assert "retrieval" not in by_id["free"] and by_id["free"]["citations"]["to_relevant"] is None

    s = result["summary"]
    assert s["questions"] == 4 and s["errors"] == 0
    assert s["retrieval"]["questions"] == 2 and s["retrieval"]["hit@2"] >= 0.5
    assert s["answers"]["faithfulness"] == 4.0 and s["answers"]["correctness_n"] == 1
    assert s["citations"]["answers_with_citations"] == 1.0
    assert s["citations"]["to_retrieved"] == pytest.approx(4 / 5)  # 1 + 3 + 1 citations, one dropped
    assert s["not_covered"]["says_not_covered_phrase"] == 1.0 and s["not_covered"]["says_not_covered_judge"] == 1.0
    # Attribution of the live answers: "two" joins two cited pages, both gold.
    assert [x["outcome"] for x in two["sentences"]] == ["supported"]
    assert two["attribution"]["to_gold"] == 2 and two["attribution"]["sentences_citing_gold"] == 1
    assert s["attribution"]["citation_precision"] is not None and s["attribution"]["supported"] >= 1
    assert s["latency"]["first_token_p50_s"] > 0 and s["latency"]["total_p95_s"] >= s["latency"]["total_p50_s"]

    saved = json.loads((out / "results.json").read_text())
    assert saved["summary"] == s and len(saved["questions"]) == 4
    report = (out / "report.md").read_text()
    assert "## retrieval" in report and "![latency](latency.png)" in report
    for png in ("scores.png", "retrieval.png", "latency.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Re-run: everything finished, so the LLM is not asked again.
    scripted_llm.requests.clear()
    again = run_eval(settings, path, out=out, k=2, concurrency=2, base_url="https://blog.example")
    assert scripted_llm.requests == [] and again["summary"]["questions"] == 4

    # A question lost from the results (killed mid-run) is the only one asked again.
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text("\n".join(l for l in lines if '"id": "two"' not in l) + "\n")
    run_eval(settings, path, out=out, k=2, base_url="https://blog.example")
    asked = [r["messages"][-1]["content"] for r in _chain_requests(scripted_llm)]
    assert len(asked) == 1 and "Berlin Wall fall?" in asked[0]

    with pytest.raises(RunConfigError, match="k: 2 -> 3"):
        run_eval(settings, path, out=out, k=3, base_url="https://blog.example")


@pytest.mark.slow  # a whole run end to end or real timeouts: the full suite runs it
def test_failed_answers_are_retried_on_the_next_run(eval_settings, scripted_llm, tmp_path):
    settings, path = eval_settings
    out = tmp_path / "run"
    scripted_llm.fail(503)
    first = run_eval(settings, path, out=out, k=2, judge=False, base_url=SITE)
    assert first["summary"]["errors"] == 4
    assert all(r["error_kind"] for r in first["questions"]) and first["questions"][0]["sources"]
    scripted_llm.fail_status = None
    second = run_eval(settings, path, out=out, k=2, judge=False, base_url=SITE)
    assert second["summary"]["errors"] == 0 and "judge" not in second["questions"][0]


def test_cli_run_and_compare(eval_settings, scripted_llm, tmp_path, settings_env, monkeypatch):
    from opencite.cli import app

    settings, path = eval_settings
    monkeypatch.setenv("OPENCITE_LLM__BASE_URL", scripted_llm.base_url)
    monkeypatch.setenv("OPENCITE_LLM__MODEL", scripted_llm.model)
    monkeypatch.setenv("OPENCITE_LLM__API_KEY", scripted_llm.api_key)
    monkeypatch.setenv("OPENCITE_LLM__CONTEXT_WINDOW", "4096")
    runner = CliRunner()
    for k in ("1", "2"):
        res = runner.invoke(app, ["eval", "run", str(path), "--base-url", SITE, "--k", k,
                                  "--concurrency", "2", "--out", str(tmp_path / f"k{k}")])
        assert res.exit_code == 0, res.output
        assert "retrieval.hit@" in res.output
    res = runner.invoke(app, ["eval", "compare", str(tmp_path / "k1/results.json"), str(tmp_path / "k2/results.json")])
    assert res.exit_code == 0, res.output
    assert "retrieval.questions" in res.output and "B - A" in res.output

    bad = runner.invoke(app, ["eval", "run", str(path), "--out", str(tmp_path / "x")])  # paths, no --base-url
    assert bad.exit_code == 2 and "--base-url" in " ".join(bad.output.split())
    bad = runner.invoke(app, ["eval", "compare", str(tmp_path / "nope.json"), str(tmp_path / "k1/results.json")])
    assert bad.exit_code == 2 and "does not exist" in " ".join(bad.output.split())


@pytest.mark.slow  # a whole run end to end or real timeouts: the full suite runs it
def test_retrieval_only_needs_no_llm(eval_settings, scripted_llm, tmp_path):
    settings, path = eval_settings
    settings.llm.base_url = "http://127.0.0.1:9/v1"  # nothing listens there
    result = run_eval(settings, path, out=tmp_path / "r", k=2, base_url=SITE, retrieval_only=True)
    assert scripted_llm.requests == []
    by_id = {r["id"]: r for r in result["questions"]}
    assert by_id["france"]["retrieval"]["hit@2"] == 1.0 and by_id["france"]["answer"] == ""
    s = result["summary"]
    assert s["errors"] == 0 and s["retrieval"]["questions"] == 2
    assert s["answers"] == {} and s["citations"] == {} and s["latency"]["retrieve_p50_s"] > 0


def test_empty_index_is_refused_up_front(settings, tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"id": 1, "question": "anything?"}\n')
    with pytest.raises(ValueError, match="is empty. Fix: run `opencite ingest"):
        run_eval(settings, path, out=tmp_path / "r", retrieval_only=True)
