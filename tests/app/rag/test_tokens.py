"""Token counting for the prompt budget: a local GGUF is counted with its own vocabulary
(llama.cpp, vocabulary only), and a file that is no tokenizer folder is never handed to
transformers (which spent seconds failing on it before every first answer)."""

from __future__ import annotations

import pytest

from opencite.app.rag.tokens import EstimateCounter, GGUFCounter, token_counter


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    pytest.importorskip("llama_cpp")
    from tests.fixtures.tiny_gguf import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def test_a_local_gguf_is_counted_with_its_own_tokenizer(tiny_gguf):
    import llama_cpp

    counter = token_counter(str(tiny_gguf))
    assert isinstance(counter, GGUFCounter) and counter.exact
    text = "The Eiffel Tower was completed in 1889."
    vocab = llama_cpp.Llama(str(tiny_gguf), vocab_only=True, verbose=False)
    assert counter.count(text) == len(vocab.tokenize(text.encode(), add_bos=False, special=False)) > 0
    assert counter.count("") == 0
    head = counter.truncate(text, 3)
    assert text.startswith(head.strip()[:1]) and counter.count(head) <= 3


def test_a_file_that_is_no_tokenizer_falls_back_to_the_estimate(tmp_path):
    junk = tmp_path / "model.gguf"
    junk.write_bytes(b"not a gguf at all")
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    counter = token_counter(str(junk), str(other))
    assert isinstance(counter, EstimateCounter)
    assert counter.count("abcdef") == 2
