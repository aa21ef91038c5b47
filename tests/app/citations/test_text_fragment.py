"""Text fragment URLs (`#:~:text=`), percent-encoded per the WICG spec."""

from opencite.app.citations.text_fragment import encode_term, fragment_url, text_directive


def test_terms_encode_the_directive_syntax_characters():
    assert encode_term("a-b, c & d") == "a%2Db%2C%20c%20%26%20d"
    assert encode_term("100% über") == "100%25%20%C3%BCber"


def test_short_quote_travels_whole_long_one_as_start_and_end():
    assert text_directive("The Berlin  Wall fell.") == "text=The%20Berlin%20Wall%20fell."
    quote = "Mixtral has a context length of 32k tokens and it outperforms Llama 2 70B on most benchmarks."
    assert text_directive(quote) == "text=Mixtral%20has%20a%20context,70B%20on%20most%20benchmarks."


def test_start_grows_until_unique_in_the_context():
    quote = "The model is fast and it runs on a single GPU with room to spare."
    context = "The model is fast. Later: " + quote
    assert text_directive(quote, context).startswith("text=The%20model%20is%20fast%20and,")


def test_fragment_url_keeps_existing_fragment_and_skips_non_http():
    assert fragment_url("https://x.example/p", "Hello there") == "https://x.example/p#:~:text=Hello%20there"
    assert fragment_url("https://x.example/p#sec", "Hi") == "https://x.example/p#sec:~:text=Hi"
    assert fragment_url("/local/file.md", "Hi") == "/local/file.md"
    assert fragment_url("https://x.example/p", "  ") == "https://x.example/p"
