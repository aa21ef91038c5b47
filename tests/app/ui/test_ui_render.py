import json

from opencite.app.ui.render import escape_md, link_markers, safe_url, save_feedback


def test_escape_md_makes_titles_inert():
    out = escape_md('<script>alert("x")</script> **b** [l](javascript:1)')
    assert "<" not in out.replace("\\<", "") and "[" not in out.replace("\\[", "")
    assert "\n" not in escape_md("a\nb")


def test_link_markers_only_for_existing_sources():
    out = link_markers("A [1] b [2, 3] c [9] [x](y)", "m1", 3)
    assert "[\\[1\\]](#src-m1-1)" in out and "(#src-m1-3)" in out
    assert "[9]" in out and "[x](y)" in out


def test_safe_url_allows_http_only():
    assert safe_url("https://a.example/x") and safe_url("http://a") == "http://a"
    assert safe_url("javascript:alert(1)") is None and safe_url("file:///etc/passwd") is None


def test_feedback_lines_are_whole_json(tmp_path):
    path = tmp_path / "runtime" / "feedback.jsonl"
    record = {"id": "m", "question": "q", "content": "a [1]", "sources": [{"n": 1, "url": "u"}], "cited": [1]}
    save_feedback(path, record, "down", model="x")
    save_feedback(path, record, "up")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["rating"] for line in lines] == ["down", "up"]
    assert lines[0]["answer"] == "a [1]" and lines[0]["sources"][0]["url"] == "u"
