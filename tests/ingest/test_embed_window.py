"""The pipeline embeds windows of whole pages as one length-sorted call each, then stores the
pages in groups with those vectors: every chunk embedded once, the index as with one big window."""

import numpy as np

from opencite.store import constants as C
from opencite.store.index import open_index
from opencite.ingest import pipeline
from opencite.ingest.pipeline import SourceSet, run_ingest


def write_site(folder):
    folder.mkdir()
    for n in range(5):
        parts = "".join(f"## Part {p}\n\n" + f"Page {n} part {p} says something. " * (4 + 6 * p) + "\n\n" for p in range(3))
        (folder / f"p{n}.md").write_text(f"# Page {n}\n\n{parts}", encoding="utf-8")


def stored(settings) -> dict[str, tuple]:
    got = open_index(settings).collection.get(include=["metadatas", "documents", "embeddings"])
    return {i: (m[C.SOURCE], m[C.CHUNK_INDEX], d, np.asarray(e))
            for i, m, d, e in zip(got["ids"], got["metadatas"], got["documents"], got["embeddings"])}


def test_small_windows_store_the_same_index_embedding_each_chunk_once(settings, tmp_path, monkeypatch):
    from opencite.store.embeddings import PrecisionHuggingFaceEmbeddings

    # float32: a text's vector then depends on its batch-mates by rounding only (bf16 and int8 paths
    # round activations per batch, see tests/store), so the two runs' vectors must agree closely.
    settings.embedding.precision = "float32"
    write_site(tmp_path / "docs")
    one_window = run_ingest(settings, SourceSet([str(tmp_path / "docs")]))
    expected = stored(settings)

    calls: list[list[str]] = []
    original = PrecisionHuggingFaceEmbeddings.embed_documents
    monkeypatch.setattr(PrecisionHuggingFaceEmbeddings, "embed_documents",
                        lambda self, texts: calls.append(list(texts)) or original(self, texts))
    monkeypatch.setattr(pipeline, "EMBED_WINDOW", 4)
    monkeypatch.setattr(pipeline, "GROUP_CHUNKS", 2)
    small = settings.model_copy(update={"data_dir": tmp_path / "small"})
    report = run_ingest(small, SourceSet([str(tmp_path / "docs")]))
    got = stored(small)

    assert report.embedded == one_window.embedded == len(expected) > 5
    assert sorted(t for call in calls for t in call) == sorted(v[2] for v in expected.values())  # each once
    assert len(calls) > 1  # several windows...
    pages = {}
    for source, _, text, _ in expected.values():
        pages.setdefault(source, set()).add(text)
    for call in calls:  # ...each of whole pages, within the window unless one page is larger
        sources = {s for s, texts in pages.items() if texts & set(call)}
        assert sum(len(pages[s]) for s in sources) == len(call)
        assert len(call) <= 4 or len(sources) == 1
    assert got.keys() == expected.keys()
    for key, (source, position, text, vector) in got.items():
        assert expected[key][:3] == (source, position, text)
        # Another batch, the same text: float32 rounding only.
        assert float(vector @ expected[key][3]) > 0.99999
