"""Neighbour expansion in `retrieve()`: each hit sent with the chunks either side of it on the same
page, on a real MiniLM + Chroma index."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document

from opencite.app.rag.retrieval import join_adjacent, retrieve, with_table_header
from opencite.store import constants as C
from opencite.store.index import open_index

PAGE = "https://blog.example/falcon"
# Consecutive chunks of one page; each starts with the last paragraph of the one before (the
# chunker's overlap), as ingest writes them.
CHUNKS = [
    "Falcon 180B is a large open model.\n\nIt was released by TII in September 2023.",
    "It was released by TII in September 2023.\n\nFalcon 180B was trained on 3.5 trillion tokens of RefinedWeb.",
    "Falcon 180B was trained on 3.5 trillion tokens of RefinedWeb.\n\nIts licence allows commercial use.",
    "The chat variant was tuned on conversations.",
    "The hardware needed is eight A100 GPUs for inference.",
]


def _add(idx, chunks, content_hash):
    docs = [Document(text, metadata={C.SOURCE: PAGE, C.TITLE: "Falcon 180B", C.CONTENT_HASH: content_hash,
                                     C.CHUNK_INDEX: i}) for i, text in enumerate(chunks)]
    idx.store.add_documents(docs, ids=[f"{PAGE}@{content_hash}#{i}" for i in range(len(chunks))])


@pytest.fixture(scope="module")
def falcon(tmp_path_factory, minilm_path):
    """One index for the module (the tests only read it): the page's chunks, an older version of
    the page still stored, and a document with no position on any page."""
    from opencite.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("neighbours") / "data",
                        embedding={"model": minilm_path, "device": "cpu"})
    with open_index(settings, write=True) as idx:
        _add(idx, CHUNKS, "v2")
        _add(idx, ["An old introduction.", "Old news about the 40B model.", "An old licence note."], "v1")
        idx.store.add_documents([Document("Oslo is the capital of Norway.", metadata={C.SOURCE: "x"})], ids=["x"])
    with open_index(settings) as index:
        yield index, settings


def _settings(settings, neighbours):
    return settings.model_copy(update={"retrieval": settings.retrieval.model_copy(update={"neighbours": neighbours})})


def test_a_hit_carries_the_chunks_either_side_with_the_overlap_once(falcon):
    index, settings = falcon
    question = "When was Falcon 180B released by TII?"
    alone = retrieve(index, question, 1, _settings(settings, 0))
    (doc, score), = retrieve(index, question, 1, _settings(settings, 1))
    assert alone[0][0].page_content == CHUNKS[0]
    assert doc.id == alone[0][0].id and score == alone[0][1] and doc.metadata[C.CHUNK_INDEX] == 0
    # Chunk 0 has no chunk before it; chunk 1 follows, its first paragraph (the overlap) once.
    assert doc.page_content == (
        "Falcon 180B is a large open model.\n\nIt was released by TII in September 2023.\n\n"
        "Falcon 180B was trained on 3.5 trillion tokens of RefinedWeb.")
    assert "old" not in doc.page_content.lower()  # never a chunk of another version of the page


def test_both_sides_and_two_deep(falcon):
    index, settings = falcon
    question = "Is the licence of Falcon 180B open to commercial use?"
    (one, _), = retrieve(index, question, 1, _settings(settings, 1))
    (two, _), = retrieve(index, question, 1, _settings(settings, 2))
    assert one.metadata[C.CHUNK_INDEX] == 2
    assert one.page_content == (
        "It was released by TII in September 2023.\n\n"
        "Falcon 180B was trained on 3.5 trillion tokens of RefinedWeb.\n\nIts licence allows commercial use."
        "\n\nThe chat variant was tuned on conversations.")
    assert two.page_content.startswith("Falcon 180B is a large open model.")
    assert two.page_content.endswith("The hardware needed is eight A100 GPUs for inference.")


def test_a_chunk_goes_into_one_source_only_and_hits_stay_themselves(falcon):
    index, settings = falcon
    hits = [h for h in retrieve(index, "Falcon 180B trained tokens RefinedWeb released", 9, _settings(settings, 2))
            if h[0].metadata.get(C.CONTENT_HASH) == "v2"]
    assert sorted(d.metadata[C.CHUNK_INDEX] for d, _ in hits) == [0, 1, 2, 3, 4]
    paragraphs = [p for d, _ in hits for p in d.page_content.split("\n\n")]
    # Every hit is one of the page's chunks, so none has a neighbour left to take: nothing repeats
    # beyond the overlap the chunks themselves carry.
    assert [d.page_content for d, _ in hits] == [CHUNKS[d.metadata[C.CHUNK_INDEX]] for d, _ in hits]
    assert len(paragraphs) == sum(len(c.split("\n\n")) for c in CHUNKS)


def test_neighbours_taken_by_a_better_hit_are_not_sent_twice(falcon):
    index, settings = falcon
    (first, _), (second, _) = retrieve(index, "What hardware does Falcon 180B need for inference?", 2,
                                       _settings(settings, 1))
    # The best hit (chunk 4) takes chunk 3; the second hit cannot take it again.
    assert first.metadata[C.CHUNK_INDEX] == 4 and CHUNKS[3] in first.page_content
    assert CHUNKS[3] not in second.page_content


def test_chunks_without_a_position_are_left_alone(falcon):
    index, settings = falcon
    hits = retrieve(index, "capital of Norway", 1, _settings(settings, 1))
    assert hits[0][0].page_content == "Oslo is the capital of Norway."


def test_join_adjacent_keeps_the_repeated_overlap_once():
    assert join_adjacent(CHUNKS[0], CHUNKS[1]) == (
        "Falcon 180B is a large open model.\n\nIt was released by TII in September 2023.\n\n"
        "Falcon 180B was trained on 3.5 trillion tokens of RefinedWeb.")
    assert join_adjacent("A short one.", "Another section.") == "A short one.\n\nAnother section."
    # A coincidence shorter than the minimum overlap is not an overlap.
    assert join_adjacent("ends with a.", "a. starts") == "ends with a.\n\na. starts"


def test_chunks_linked_by_ingest_are_fetched_by_id_with_the_same_text(tmp_path, minilm_path, monkeypatch):
    """Chunks stored by ingest name their neighbours' ids: one key lookup replaces the page read."""
    from opencite.ingest.pages import link_neighbours
    from opencite.settings import Settings

    settings = _settings(Settings(data_dir=tmp_path / "data", embedding={"model": minilm_path, "device": "cpu"}), 1)
    docs = [Document(text, metadata={C.SOURCE: PAGE, C.TITLE: "Falcon 180B", C.CONTENT_HASH: "v2", C.CHUNK_INDEX: i},
                     id=f"{PAGE}@v2#{i}") for i, text in enumerate(CHUNKS)]
    link_neighbours(docs)
    assert (docs[0].metadata.get(C.PREV_CHUNK), docs[0].metadata[C.NEXT_CHUNK]) == (None, docs[1].id)
    assert (docs[4].metadata[C.PREV_CHUNK], docs[4].metadata.get(C.NEXT_CHUNK)) == (docs[3].id, None)
    with open_index(settings, write=True) as idx:
        idx.store.add_documents(docs, ids=[d.id for d in docs])
    with open_index(settings) as index:
        reads = []
        original = index.collection.get
        monkeypatch.setattr(index.collection, "get", lambda **kw: reads.append(kw) or original(**kw))
        # dense: the reads counted are the neighbours' alone (hybrid also reads BM25-only hits by id)
        (doc, _), = retrieve(index, "Falcon 180B trained on 3.5 trillion tokens of RefinedWeb", 1, settings, "dense")
    n = doc.metadata[C.CHUNK_INDEX]
    assert 0 < n < len(CHUNKS) - 1  # a chunk with a neighbour on each side
    assert doc.page_content == join_adjacent(join_adjacent(CHUNKS[n - 1], CHUNKS[n]), CHUNKS[n + 1])
    assert [sorted(r["ids"]) for r in reads] == [sorted([docs[n - 1].id, docs[n + 1].id])] and "where" not in reads[0]


def test_join_adjacent_keeps_a_table_cut_between_rows_one_table():
    from opencite.app.citations.sentences import split_sentences

    first = "Results:\n\n| Model | Score |\n| --- | --- |\n| A | 1.5 |"
    second = "| B | 2.5 |\n| C | 3.5 |"
    joined = join_adjacent(first, second)
    assert joined == first + "\n" + second
    rows = split_sentences(joined, tables=True)
    assert [r.text for r in rows[1:]] == ["| A | 1.5 |", "| B | 2.5 |", "| C | 3.5 |"]
    assert {r.context for r in rows[1:]} == {"| Model | Score |"}


def test_a_text_starting_inside_a_table_is_read_under_its_header():
    header = "| Model | DocVQA |\n| --- | --- |"
    rows = "| Gemini 1.0 Pro | 88.1 |\n| Claude 3 Haiku | 88.8 |"
    headed = with_table_header(rows, {C.TABLE_HEADER: header})
    assert headed == header + "\n" + rows
    from opencite.app.citations.sentences import split_sentences

    assert [(r.text, r.context) for r in split_sentences(headed, tables=True)] == [
        ("| Gemini 1.0 Pro | 88.1 |", "| Model | DocVQA |"), ("| Claude 3 Haiku | 88.8 |", "| Model | DocVQA |")]
    # Once only; and neither text without a header in its metadata, nor prose, gets one.
    assert with_table_header(headed, {C.TABLE_HEADER: header}) == headed
    assert with_table_header(rows, {}) == rows
    assert with_table_header("Prose first.\n" + rows, {C.TABLE_HEADER: header}) == "Prose first.\n" + rows


def test_a_hit_whose_table_header_stands_in_a_taken_chunk_still_reads_it(tmp_path, minilm_path):
    """The chunk holding the header is a better hit of its own: the row chunk after it, widened
    without it, is still written under the header its metadata carries."""
    from opencite.settings import Settings

    settings = _settings(Settings(data_dir=tmp_path / "data", embedding={"model": minilm_path, "device": "cpu"}), 1)
    header = "| Model | DocVQA |\n| --- | --- |"
    chunks = ["Scores of closed models on documents:\n\n" + header, "| Gemini 1.0 Pro | 88.1 |\n| Claude 3 Haiku | 88.8 |"]
    docs = [Document(text, metadata={C.SOURCE: PAGE, C.CONTENT_HASH: "t", C.CHUNK_INDEX: i}) for i, text in enumerate(chunks)]
    docs[1].metadata[C.TABLE_HEADER] = header
    with open_index(settings, write=True) as idx:
        idx.store.add_documents(docs, ids=[f"{PAGE}@t#{i}" for i in range(2)])
    with open_index(settings) as index:
        hits = retrieve(index, "DocVQA scores of Gemini and Claude", 2, settings, "dense")
    texts = {doc.metadata[C.CHUNK_INDEX]: doc.page_content for doc, _ in hits}
    assert texts == {0: chunks[0], 1: header + "\n" + chunks[1]}
