"""Sentence splitting of markdown answers and sources (spans must point into the text)."""

from opencite.app.citations.sentences import plain_text, split_sentences


def texts(text, **kw):
    out = split_sentences(text, **kw)
    for s in out:  # every span is exact
        assert text[s.start:s.end] == s.text
    return [s.text for s in out]


def test_abbreviations_decimals_and_versions_do_not_end_a_sentence():
    text = ("Mixtral has 46.7B parameters, e.g. about 45B active in total [1]. TGI v1.4.0 added it, "
            "approx. in Jan. 2024 [2]. Dr. Smith agreed! Really? Yes.")
    assert texts(text) == [
        "Mixtral has 46.7B parameters, e.g. about 45B active in total [1].",
        "TGI v1.4.0 added it, approx. in Jan. 2024 [2].",
        "Dr. Smith agreed!", "Really?", "Yes."]


def test_list_items_are_sentences_without_their_bullets():
    text = "Options:\n\n- Use vLLM [1]. It is fast.\n- Use TGI\n  on one GPU [2]\n\n1. First step.\n2. Second step [3]."
    assert texts(text) == ["Options:", "Use vLLM [1].", "It is fast.", "Use TGI\n  on one GPU [2]",
                           "First step.", "Second step [3]."]
    assert [s.markers for s in split_sentences(text)][-1] == (3,)


def test_code_headings_and_tables_are_not_sentences_but_table_rows_are_for_sources():
    text = ("# Serving. It works.\n\nRun it like this [1].\n\n```bash\npip install x. Then y.\n```\n\n"
            "    indented code. More.\n\n| model | ctx |\n|---|---|\n| Mixtral | 32k |\n\n"
            "Inline `a.b. c()` code stays inside.")
    assert texts(text) == ["Run it like this [1].", "Inline `a.b. c()` code stays inside."]
    # On the sources' side, code lines and table rows are evidence too (a row with its header).
    assert texts(text, tables=True)[1:4] == ["pip install x. Then y.", "indented code. More.", "| Mixtral | 32k |"]
    row = split_sentences(text, tables=True)[3]
    assert row.claim == "Mixtral 32k" and row.context == "| model | ctx |"


def test_markers_after_the_full_stop_belong_to_the_sentence_before():
    text = "Paris is the capital. [1] [2] Rome is another one. [3]"
    out = split_sentences(text)
    assert [s.text for s in out] == ["Paris is the capital. [1] [2]", "Rome is another one. [3]"]
    assert [s.markers for s in out] == [(1, 2), (3,)]
    assert out[0].claim == "Paris is the capital."


def test_claims_are_plain_text_and_links_are_not_markers():
    out = split_sentences("See **the [docs](https://x.example/a.b)** for `vllm serve` [2, 3].")
    assert out[0].markers == (2, 3)
    assert out[0].claim == "See the docs for vllm serve."
    assert split_sentences("") == [] and split_sentences("```\ncode only.\n```") == []


def test_plain_text_drops_markdown_syntax():
    assert plain_text("A *b* [c](http://x) \\_d\\_ <b>e</b>") == "A b c _d_ e"


def test_a_call_written_one_argument_per_line_is_one_statement_of_the_source():
    """A reader takes `pipeline(...)` with its arguments as one statement ("samples with top_k=10
    and caps the output at max_length 200"); brackets inside strings and comments do not count."""
    code = ("```python\nimport torch\nout = pipeline(\n    'a (quoted', # a comment (\n    top_k=10,\n"
            "    max_length=200,\n)\nprint(out)\n```")
    spans = texts("Text.\n\n" + code, tables=True)
    assert spans[1:] == ["import torch",
                         "out = pipeline(\n    'a (quoted', # a comment (\n    top_k=10,\n    max_length=200,",
                         "print(out)"]
    long = "```\nx = f(\n" + "".join(f"    a{i}={i},\n" for i in range(20)) + ")\n```"
    assert len(texts(long, tables=True)) == 21  # past MAX_STATEMENT_LINES: line by line
