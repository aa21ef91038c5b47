import pytest

from opencite.app.citations.markers import CitationFilter, check_citations


@pytest.mark.parametrize("text,n,clean,cited,dropped", [
    ("Paris [1].", 2, "Paris [1].", [1], 0),
    ("Paris [3].", 2, "Paris .", [], 1),
    ("A [1][7] b [2, 9].", 2, "A [1] b [2].", [1, 2], 2),
    ("a [link](http://x) and [x]", 2, "a [link](http://x) and [x]", [], 0),
    ("empty [] and [ , ] stay", 2, "empty [] and [ , ] stay", [], 0),
    ("zero [0] is no source", 3, "zero  is no source", [], 1),
    ("unclosed [12", 2, "unclosed [12", [], 0),
    ("[[1]] nested", 1, "[[1]] nested", [1], 0),
])
def test_check_citations(text, n, clean, cited, dropped):
    assert check_citations(text, n) == (clean, cited, dropped)


def test_invalid_marker_never_leaves_the_filter_even_split_across_chunks():
    f = CitationFilter(2)
    emitted = []
    for piece in ["Rome", " [", "1", "2", "]", " and [", "2", "]", "."]:
        emitted.append(f.feed(piece))
    emitted.append(f.flush())
    assert "".join(emitted) == "Rome  and [2]."
    # While the marker was open, nothing of it was emitted.
    assert emitted[1] == " " and emitted[2] == "" and emitted[3] == ""
    assert f.dropped == 1 and f.cited == {2}
