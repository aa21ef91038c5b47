"""The BEIR loader and `eval beir` on a tiny BEIR folder written here (real MiniLM + Chroma)."""

import json

import pytest
from typer.testing import CliRunner

from opencite.eval.beir import BeirFormatError, beir_metrics, load_beir, run_beir

DOCS = [
    ("d1", "Paris", "Paris is the capital of France."),
    ("d2", "Rome", "Rome is the capital of Italy."),
    ("d3", "Cats", "Cats are small domestic animals that purr."),
    ("d4", "Volcanoes", "A volcano erupts molten rock called lava."),
]


def write_beir(root, qrels="query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td3\t1\nq3\td4\t1\n"):
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, t, x in DOCS))
    queries = [("q1", "What is the capital of France?"), ("q2", "Which animal purrs?"),
               ("q3", "What comes out of an erupting volcano?"), ("q9", "a query without judgements")]
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries))
    (root / "qrels" / "test.tsv").write_text(qrels)
    return root


def test_loader(tmp_path):
    corpus, queries, qrels = load_beir(write_beir(tmp_path / "tiny"))
    assert [d["_id"] for d in corpus] == ["d1", "d2", "d3", "d4"]
    assert set(queries) == {"q1", "q2", "q3"}  # q9 has no judgement
    assert qrels == {"q1": {"d1": 1}, "q2": {"d3": 1}, "q3": {"d4": 1}}


@pytest.mark.parametrize("breakage,match", [
    (lambda r: (r / "corpus.jsonl").unlink(), "missing .*corpus.jsonl"),
    (lambda r: (r / "corpus.jsonl").write_text('{"_id": "d1"}\n'), "line 1: needs the fields _id, text"),
    (lambda r: (r / "queries.jsonl").write_text("{oops\n"), "line 1: not JSON"),
    (lambda r: (r / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\thigh\n"), "line 2"),
])
def test_loader_refuses_bad_folders(tmp_path, breakage, match):
    root = write_beir(tmp_path / "tiny")
    breakage(root)
    with pytest.raises(BeirFormatError, match=match):
        load_beir(root)


def test_metrics_in_percent_by_hand():
    qrels = {"q1": {"d1": 1}, "q2": {"d3": 1}}
    run = {"q1": {"d1": 0.9, "d2": 0.1}, "q2": {"d1": 0.9, "d3": 0.8}}  # ranks 1 and 2; q2 nDCG = 1/log2(3)
    m = beir_metrics(qrels, run)
    assert m["mrr@10"] == 75.0 and m["recall@10"] == 100.0 and m["recall@100"] == 100.0
    assert m["ndcg@10"] == pytest.approx(100 * (1 + 1 / 1.5849625) / 2, abs=0.01)


def test_run_beir_indexes_once_into_its_own_collection(settings, tmp_path):
    root = write_beir(tmp_path / "tiny")
    first = run_beir(settings, root)
    assert first["documents"] == 4 and first["queries"] == 3 and first["embedded_now"] == 4
    assert first["mode"] == settings.retrieval.mode  # no mode named: the settings' (as `eval beir` passes)
    assert first["metrics"]["ndcg@10"] == 100.0 and first["metrics"]["mrr@10"] == 100.0
    assert list(first["run"]["q1"])[0] == "d1"
    assert first["collection"].startswith("beir-tiny-") and first["collection"] != settings.chroma.collection
    assert not settings.index_dir.exists()  # the product index is not touched
    again = run_beir(settings, root)
    assert again["embedded_now"] == 0 and again["metrics"] == first["metrics"]
    with pytest.raises(ValueError, match="not available"):
        run_beir(settings, root, mode="sparse-magic")


def test_cli_beir(settings_env, tmp_path, minilm_path):
    from opencite.cli import app

    root = write_beir(tmp_path / "tiny")
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["eval", "beir", str(root), "--model", minilm_path, "--out", str(out)])
    assert res.exit_code == 0, res.output
    saved = json.loads((out / "beir-results.json").read_text())
    assert saved["metrics"]["ndcg@10"] == 100.0 and saved["model"] == minilm_path
    bad = CliRunner().invoke(app, ["eval", "beir", str(tmp_path)])
    assert bad.exit_code == 2 and "not a BEIR folder" in " ".join(bad.output.split())
