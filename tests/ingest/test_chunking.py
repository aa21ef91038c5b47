import pytest
from sentence_transformers import SentenceTransformer

from opencite.store import constants as C
from opencite.ingest.chunking import Chunker, chunk_id, merge_blocks, split_sections, token_counter
from opencite.ingest.documents import SourceDocument
from opencite.settings import ChunkingSettings

CODE = "```python\ndef serve():\n    # a comment, not a heading\n    x = 1\n\n\n    return x\n```"
TEXT = (
    "# Guide\n\nIntro words.\n\n## Setup\n\n" + "Install the server first. " * 40
    + "\n\n" + CODE + "\n\nAfter the code.\n\n### Deep\n\nDeep text.\n\n## Use\n\nUse text."
)


@pytest.fixture(scope="module")
def tokenizer(minilm_path):
    return SentenceTransformer(minilm_path, device="cpu").tokenizer


def _chunks(tokenizer, size=64, overlap=16, text=TEXT):
    chunker = Chunker(tokenizer, ChunkingSettings(chunk_tokens=size, overlap_tokens=overlap), 256)
    doc = SourceDocument(url="https://x/p", title="Guide", text=text, description="d", language="en",
                         fetched_at="2026-01-01T00:00:00+00:00")
    return chunker, chunker.chunk(doc)


def test_sections_follow_headings_outside_code():
    sections = split_sections(TEXT)
    assert [s.heading_path for s in sections] == ["Guide", "Guide > Setup", "Guide > Setup > Deep", "Guide > Use"]
    assert "# a comment, not a heading" in sections[1].text  # inside a fence: not a heading


def test_heading_only_section_opens_the_next():
    sections = split_sections("# Title\n\n## First\n\nText.")
    assert len(sections) == 1 and sections[0].heading_path == "Title > First"
    assert sections[0].text.startswith("# Title")


def test_chunks_are_sized_in_tokens_and_carry_metadata(tokenizer):
    chunker, chunks = _chunks(tokenizer)
    for c in chunks:
        # a heading may ride along with the first piece of its section
        assert len(tokenizer.tokenize(c.page_content)) <= 64 + 8
        assert set(c.metadata) == {C.SOURCE, C.TITLE, C.DESCRIPTION, C.LANGUAGE, C.HEADING_PATH,
                                   C.CHUNK_INDEX, C.CONTENT_HASH, C.FETCHED_AT}
    assert [c.metadata[C.CHUNK_INDEX] for c in chunks] == list(range(len(chunks)))
    assert len(chunks) > 3  # the long paragraph really was split


def test_code_block_is_never_cut_when_it_fits(tokenizer):
    _, chunks = _chunks(tokenizer)
    holding = [c for c in chunks if "def serve" in c.page_content]
    assert len(holding) == 1 and CODE in holding[0].page_content
    assert "    x = 1\n\n\n    return x" in holding[0].page_content  # indentation and blank lines kept


def test_overlap_and_size_limit_by_model(tokenizer):
    chunker = Chunker(tokenizer, ChunkingSettings(chunk_tokens=1000, overlap_tokens=100), 256)
    assert chunker.chunk_tokens == 254  # never past what the model reads


def test_chunk_ids_are_stable_and_change_with_content(tokenizer):
    _, first = _chunks(tokenizer)
    _, again = _chunks(tokenizer)
    assert [chunk_id(c) for c in first] == [chunk_id(c) for c in again]
    _, changed = _chunks(tokenizer, text=TEXT.replace("Use text.", "Other text."))
    assert chunk_id(first[-1]) != chunk_id(changed[-1])
    assert len({chunk_id(c) for c in first}) == len(first)


def test_token_counter_counts_like_tokenize_past_the_model_limit(tokenizer):
    count = token_counter(tokenizer)
    long_text = TEXT * 20  # far past MiniLM's 256 tokens: the count must not be truncated
    for text in (TEXT, CODE, long_text, "", "naïve café — ünïcode"):
        assert count(text) == len(tokenizer.tokenize(text))
    assert count(long_text) > 1000
    # the tokenizer the model uses is untouched: it still truncates when asked
    assert len(tokenizer(long_text, truncation=True)["input_ids"]) == tokenizer.model_max_length


def _words(text: str) -> int:
    return len(text.split())


def test_merge_blocks_fills_chunks_and_overlaps_whole_blocks():
    blocks = ["a b", "c d", "e f", "g h", "i j"]
    assert merge_blocks(blocks, "\n\n", _words, size=4, overlap=2) == [
        "a b\n\nc d", "c d\n\ne f", "e f\n\ng h", "g h\n\ni j"]
    assert merge_blocks(blocks, "\n\n", _words, size=6, overlap=0) == ["a b\n\nc d\n\ne f", "g h\n\ni j"]


def test_merge_blocks_keeps_an_oversized_block_whole_and_drops_blank_ones():
    assert merge_blocks(["a", "b c d e f", "g"], " ", _words, size=3, overlap=1) == ["a", "b c d e f", "g"]
    assert merge_blocks([" ", ""], " ", _words, size=3, overlap=1) == []


TABLE = "## Results\n\nThe scores:\n\n| Model | Open weights | DocVQA |\n| --- | --- | --- |\n" + "".join(
    f"| Model-{i} | yes | {50 + i}.5 |\n" for i in range(40)) + "\nAfter the table."


def test_a_chunk_that_starts_inside_a_table_carries_the_tables_header(tokenizer):
    """A long table is cut between rows: the chunks after the first hold rows without the header
    that says what their cells are. The header rides in their metadata; text and ids unchanged."""
    _, chunks = _chunks(tokenizer, text=TABLE)
    inside = [c for c in chunks if c.page_content.startswith("| Model-")]
    assert inside, "the table was not cut between rows"
    for c in inside:
        assert c.metadata[C.TABLE_HEADER] == "| Model | Open weights | DocVQA |\n| --- | --- | --- |"
        assert not c.page_content.startswith("| Model |")
    # The chunk holding the header itself, and prose, carry none.
    assert all(C.TABLE_HEADER not in c.metadata for c in chunks if c not in inside)
