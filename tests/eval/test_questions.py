import json

import pytest

from opencite.eval.questions import QuestionsError, load_questions, normalize_url


@pytest.mark.parametrize("a,b", [
    ("HTTPS://Blog.Example/a/", "https://blog.example/a"),
    ("https://blog.example/a#section", "https://blog.example/a"),
    ("https://blog.example:443/a", "https://blog.example/a"),
    ("http://127.0.0.1:8765/blog/x/", "http://127.0.0.1:8765/blog/x"),
])
def test_urls_compare_after_normalisation(a, b):
    assert normalize_url(a) == normalize_url(b) == b


def test_query_and_path_case_are_kept():
    assert normalize_url("https://x.org/A?b=1") == "https://x.org/A?b=1"


def _write(tmp_path, rows):
    path = tmp_path / "q.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_load_maps_paths_onto_the_served_site(tmp_path):
    path = _write(tmp_path, [
        {"id": 1, "question": "q one", "sources": ["/blog/mixtral", "https://Other.org/p/"]},
        {"id": "two", "question": "q two", "reference": "r", "sources": []},
        {"id": "three", "question": "q three"},
        "",
    ])
    qs = load_questions(path, base_url="http://127.0.0.1:9000/")
    assert [q.id for q in qs] == ["1", "two", "three"]
    assert qs[0].sources == ["http://127.0.0.1:9000/blog/mixtral", "https://other.org/p"]
    assert qs[1].sources == [] and qs[1].answerable is False and qs[1].reference == "r"
    assert qs[2].sources is None and qs[2].answerable is None


@pytest.mark.parametrize("rows,match", [
    (["{not json"], "line 1: not JSON"),
    ([{"question": "no id"}], "needs 'id'"),
    ([{"id": 1, "question": "a"}, {"id": 1, "question": "b"}], "used twice"),
    ([{"id": 1, "question": "a", "sources": "/blog/x"}], "must be a list"),
    ([{"id": 1, "question": "a", "sources": ["/blog/x"]}], "--base-url"),
])
def test_bad_questions_are_refused_with_the_line(tmp_path, rows, match):
    with pytest.raises(QuestionsError, match=match):
        load_questions(_write(tmp_path, rows))


def test_missing_file(tmp_path):
    with pytest.raises(QuestionsError, match="does not exist"):
        load_questions(tmp_path / "nope.jsonl")
