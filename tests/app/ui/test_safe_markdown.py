"""Chunk markdown re-written as safe, compact Streamlit markdown with highlighted quotes."""

from opencite.app.ui.safe_markdown import escape, safe_markdown
from opencite.app.ui.render import mark_unsupported

CHUNK = ("## Table of Contents\n\n- [Intro](#intro)\n- [Evil](javascript:alert(1))\n- [Docs](https://x.example/a)\n\n"
         "Mixtral has **32k** context, costs $5 and :red[x] <b>raw</b> <script>alert(1)</script>. Next one.\n\n"
         "```py\nprint(1)\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![alt text](http://x.example/y.png)")


def test_headings_compact_links_checked_html_and_streamlit_syntax_inert():
    out = safe_markdown(CHUNK)
    assert out.startswith("**Table of Contents**\n\n- Intro\n\n")
    assert "[Docs](https://x.example/a)" in out
    assert "](javascript" not in out and "(#intro)" not in out
    assert "<b>" not in out and "\\<b\\>" in out and "\\<script\\>" in out
    assert "\\$5" in out and "\\:red\\[x\\]" in out
    assert "```py\nprint(1)\n```" in out
    assert "a · b\n\n1 · 2" in out and "alt text" in out and "![" not in out


def test_highlight_wraps_each_text_run_of_the_span():
    start = CHUNK.index("Next one.")
    out = safe_markdown(CHUNK, [(start, start + len("Next one."))])
    assert ":orange-background[Next one\\.]" in out
    assert out.count(":orange-background[") == 1
    start = CHUNK.index("Mixtral")
    out = safe_markdown(CHUNK, [(start, CHUNK.index(" context"))])
    assert ":orange-background[Mixtral has] **:orange-background[32k]**" in out


def test_escape_keeps_spaces_at_the_edges():
    assert escape(" a  *b* ") == " a \\*b\\* "


def test_unsupported_sentences_are_marked_not_hidden():
    answer = "Paris is the capital [1]. The moon is cheese."
    record = {"attribution": {"sentences": [
        {"start": 0, "end": 25, "text": "Paris is the capital [1].", "outcome": "supported"},
        {"start": 26, "end": 45, "text": "The moon is cheese.", "outcome": "unsupported"}]}}
    assert mark_unsupported(answer, record) == (
        "Paris is the capital [1]. :red-background[The moon is cheese.] :red[**⚠ unsupported**]")


def test_contradicted_sentences_show_the_sources_words_and_not_found_ones_are_unverified():
    answer = "It fell in 1991 [3]. The moon is cheese [1]."
    record = {"attribution": {"sentences": [
        {"start": 0, "end": 20, "text": "It fell in 1991 [3].", "outcome": "unsupported", "verdict": "contradicted",
         "evidence": [{"n": 3, "contradicts": True, "differs": [{"claim": "1991", "source": "1989*"}]}]},
        {"start": 21, "end": 44, "text": "The moon is cheese [1].", "outcome": "unsupported",
         "verdict": "not_found", "evidence": []}]}}
    assert mark_unsupported(answer, record) == (
        ":red-background[It fell in 1991 [3].] :red[**✗ contradicted** — the source says “1989\\*”] "
        ":orange-background[The moon is cheese [1].] :orange[**? unverified**]")
