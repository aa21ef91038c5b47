"""`opencite eval citations`: given answers attributed against the product's own retrieval over
a real tiny index (MiniLM + embedded Chroma); no LLM involved."""

import json

from typer.testing import CliRunner

from opencite.eval.citations import run_citations
from tests.app.conftest import add_pages
from tests.eval.test_run import PAGES

ANSWERS = [
    {"id": "wrong", "question": "When was the Eiffel Tower completed?", "kind": "ignored",
     "answer": "The Eiffel Tower was completed in 1889 [2].", "sources": ["/blog/paris"]},
    {"id": "missing", "question": "When did the Berlin Wall fall?",
     "answer": "The Berlin Wall fell in 1989. It fell in 1991 [1].", "sources": ["https://blog.example/blog/berlin"]},
    {"id": "unknown", "question": "What is the capital of Spain?", "answer": "Madrid is the capital of Spain [1]."},
]


def write(tmp_path, lines):
    path = tmp_path / "answers.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def test_given_answers_get_outcomes_quotes_precision_and_recall(settings, tmp_path):
    add_pages(settings, PAGES)
    out = tmp_path / "out"
    result = run_citations(settings, write(tmp_path, ANSWERS), out=out, base_url="https://blog.example")
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == ["wrong", "missing", "unknown"]
    wrong = lines[0]["sentences"][0]
    assert wrong["outcome"] == "repointed" and wrong["cited"] == ["https://blog.example/blog/paris"]
    assert wrong["quote"] == "The Eiffel Tower was completed in 1889." and wrong["score"] > 0.5
    assert [s["outcome"] for s in lines[1]["sentences"]] == ["added", "unsupported"]
    fell = lines[1]["sentences"][1]  # "It fell in 1991 [1]": the page says 1989 in its place
    assert fell["verdict"] == "contradicted" and fell["cited"] == []
    assert fell["differs"] == [{"claim": "1991", "source": "1989"}]
    assert lines[2]["sentences"][0]["outcome"] == "supported"
    s = result["summary"]
    # Known gold pages: wrong (1 citation, gold) and missing (1 added citation, gold; 1 unsupported).
    assert s["citation_precision"] == 1.0 and s["citation_recall"] == 2 / 3
    assert (s["supported"], s["repointed"], s["added"], s["unsupported"]) == (1, 1, 1, 1)
    assert (s["contradicted"], s["not_found"]) == (1, 0) and s["answers_flagged"] == 1 / 3
    report = (out / "report.md").read_text()
    assert "citation_recall" in report and "It fell in 1991" in report and "“1989” (not “1991”)" in report
    assert json.loads((out / "summary.json").read_text())["summary"] == s


def test_cli_refuses_a_line_without_an_answer(settings_env, tmp_path):
    from opencite.cli import app

    bad = write(tmp_path, [{"id": "a", "question": "q?"}])
    res = CliRunner().invoke(app, ["eval", "citations", str(bad)])
    said = " ".join(res.output.split())  # rich wraps long lines
    assert res.exit_code == 2 and "answers.jsonl line 1: needs an 'answer'" in said
    res = CliRunner().invoke(app, ["eval", "citations", str(tmp_path / "nope.jsonl")])
    assert res.exit_code == 2 and "does not exist" in " ".join(res.output.split())


def test_cli_checks_against_the_kb_given_with_kb(settings_env, tmp_path):
    """`--kb NAME`: retrieval (and the lookup beyond the prompt) read that KB's index only."""
    from opencite.cli import app
    from opencite.store import kb

    kb.create(settings_env, "capitals")
    add_pages(kb.kb_settings(settings_env, "capitals"), PAGES)  # the default KB stays empty
    answers = write(tmp_path, ANSWERS[:1])
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["eval", "citations", str(answers), "--kb", "capitals", "--out", str(out),
                                   "--base-url", "https://blog.example"])
    assert res.exit_code == 0, res.output
    line = json.loads((out / "results.jsonl").read_text())
    assert line["sentences"][0]["outcome"] == "repointed"
    assert line["sentences"][0]["cited"] == ["https://blog.example/blog/paris"]
    res = CliRunner().invoke(app, ["eval", "citations", str(answers), "--kb", "nope"])
    assert res.exit_code == 2 and "nope" in res.output and "Traceback" not in res.output


def test_answers_are_checked_against_the_prompt_the_chain_would_send(settings, tmp_path):
    """The sources an answer is checked against are the chain's prompt (the passages filling the
    sources' token budget), not every retrieved hit whole: what the chain's answer stood on."""
    from opencite.app.rag.chain import RagChain
    from opencite.app.rag.retrieval import retrieve_spans
    from opencite.eval.run import RetrievalOnly

    add_pages(settings, PAGES)
    settings.retrieval.source_tokens = 64
    chain = RagChain(settings)
    question = [{"role": "user", "content": ANSWERS[0]["question"]}]
    k, mode = settings.retrieval.k, settings.retrieval.mode
    whole = RetrievalOnly(chain, settings).invoke(question, k=k, retrieval_mode=mode)
    prompt = RetrievalOnly(chain, settings, prompt=True).invoke(question, k=k, retrieval_mode=mode)
    hits = retrieve_spans(chain.index, ANSWERS[0]["question"], k, settings, mode)
    assert prompt.sources == chain.prompt_for(ANSWERS[0]["question"], hits).sources
    counter = chain.counter()
    tokens = sum(counter.count(s.snippet) for s in prompt.sources)
    assert 0 < tokens <= 64 < sum(counter.count(s.snippet) for s in whole.sources)
    assert prompt.usage["prompt_tokens"] > tokens

    result = run_citations(settings, write(tmp_path, ANSWERS[:1]), out=tmp_path / "out", base_url="https://blog.example",
                           chain=chain)
    assert result["config"]["source_tokens"] == 64
    assert result["records"][0]["prompt_tokens"] == prompt.usage["prompt_tokens"]
