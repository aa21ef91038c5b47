"""Whatever an LLM writes (random-weight models write anything: lone carriage returns, control
characters, unbalanced markdown), sentence splitting neither fails nor points outside the text."""

from hypothesis import given, settings
from hypothesis import strategies as st

from opencite.app.citations.sentences import split_sentences

PIECES = st.sampled_from(["Paris is big.", " ", "\n", "\r", "\r\n", "\n\n", "[1]", "`x`", "```", "| a | b |",
                          "- item", "# Head", "\u2028", "\x0b", "\x00", "é", "1.5B", "e.g. this"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.lists(PIECES, max_size=40).map("".join)))
def test_any_text_splits_into_sentences_inside_it(text):
    for tables in (False, True):
        for sentence in split_sentences(text, tables=tables):
            assert 0 <= sentence.start <= sentence.end <= len(text)
