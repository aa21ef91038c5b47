"""Format checks of the citation dev set (data/eval/citations-dev-{tune,test}.jsonl).

Fast and offline: reads only the two JSONL files (no corpus, no network, no models).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[2] / "data" / "eval"
HALVES = ("tune", "test")
KINDS = {"paraphrase", "surface", "code", "table_list", "merge", "compare", "framing"}
ALTERATIONS = {"figure", "entity", "version", "negation"}
MIN_FACTUAL = 130


def load(half: str) -> list[dict]:
    rows = []
    for n, line in enumerate((DATA / f"citations-dev-{half}.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        assert line.strip(), f"{half} line {n}: empty line"
        rows.append(json.loads(line))  # fails on invalid JSON
    return rows


@pytest.fixture(scope="module")
def halves() -> dict[str, list[dict]]:
    return {half: load(half) for half in HALVES}


def factual(rows: list[dict]) -> list[dict]:
    return [s for r in rows for s in r["sentences"] if s["kind"] != "framing"]


def pages(rows: list[dict]) -> set[str]:
    return {p for r in rows for p in r["sources"]} | {p for s in factual(rows) for p in s["sources"]}


def test_ids_unique_across_halves(halves):
    ids = [r["id"] for rows in halves.values() for r in rows]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


@pytest.mark.parametrize("half", HALVES)
def test_answers_are_their_sentences(halves, half):
    for r in halves[half]:
        assert {"id", "question", "answer", "sources", "sentences"} <= r.keys(), r.get("id")
        assert isinstance(r["question"], str) and r["question"].strip(), r["id"]
        texts = [s["text"] for s in r["sentences"]]
        assert 2 <= len(texts) <= 5, r["id"]
        assert r["answer"] == " ".join(texts), r["id"]
        for t in texts:
            assert t in r["answer"] and t == t.strip() and t, (r["id"], t)
        assert r["sources"] and all(p.startswith("/blog/") for p in r["sources"]), r["id"]


@pytest.mark.parametrize("half", HALVES)
def test_sentence_kinds_sources_and_twins(halves, half):
    for r in halves[half]:
        for s in r["sentences"]:
            assert s["kind"] in KINDS, (r["id"], s["kind"])
            if s["kind"] == "framing":
                assert s["sources"] == [] and "twin" not in s, (r["id"], s["text"])
                continue
            assert s["sources"] and set(s["sources"]) <= set(r["sources"]), (r["id"], s["text"])
            if s["kind"] == "compare":
                assert len(set(s["sources"])) >= 2, (r["id"], s["text"])
            twin = s.get("twin")
            assert twin and twin["alteration"] in ALTERATIONS, (r["id"], s["text"])
            assert twin["text"].strip() and twin["text"] != s["text"], (r["id"], s["text"])


@pytest.mark.parametrize("half", HALVES)
def test_enough_factual_sentences(halves, half):
    assert len(factual(halves[half])) >= MIN_FACTUAL


def test_halves_share_no_page(halves):
    assert not pages(halves["tune"]) & pages(halves["test"])


def test_split_rule(halves):
    # The split rule of data/eval/README.md: sha256 of the page slug, even -> tune, odd -> test.
    for half, rows in halves.items():
        for page in pages(rows):
            slug = page.removeprefix("/blog/")
            parity = int(hashlib.sha256(slug.encode("utf-8")).hexdigest(), 16) % 2
            assert HALVES[parity] == half, (half, page)


def _split_sentences():
    try:
        from opencite.app.citations.sentences import split_sentences
    except ImportError:
        from opencite.app.sentences import split_sentences
    return split_sentences


@pytest.mark.parametrize("half", HALVES)
def test_project_splitter_finds_the_listed_sentences(halves, half):
    split_sentences = _split_sentences()
    for r in halves[half]:
        assert [s.text for s in split_sentences(r["answer"])] == [s["text"] for s in r["sentences"]], r["id"]
        for s in r["sentences"]:
            if "twin" in s:
                assert [t.text for t in split_sentences(s["twin"]["text"])] == [s["twin"]["text"]], r["id"]
