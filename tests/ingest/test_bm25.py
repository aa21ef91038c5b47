"""The BM25 index beside Chroma: add / replace / prune in step with a real Chroma collection,
atomic saves, rebuild when missing or stale."""

from __future__ import annotations

import json

import pytest
from langchain_core.documents import Document

from opencite.ingest import constants as C
from opencite.ingest.bm25 import BM25Index, BM25IndexError, Chunk, bm25_dir
from opencite.ingest.index import open_index

PAGE_A = [("a#0", "Solar panels convert sunlight into electricity."),
          ("a#1", "Inverters turn direct current into alternating current.")]
PAGE_B = [("b#0", "Sourdough bread rises with wild yeast and lactobacilli."),
          ("b#1", "Bakers feed the starter with flour and water daily.")]


def chunks(source, rows):
    return [Chunk(i, source, text) for i, text in rows]


def write_page(idx, bm25: BM25Index, source, rows):
    """What the ingest hook does for one page: replace its chunks in Chroma and in BM25."""
    old = idx.collection.get(where={C.SOURCE: source})["ids"]
    if old:
        idx.store.delete(ids=old)
    if rows:
        idx.store.add_documents([Document(t, metadata={C.SOURCE: source}) for _, t in rows],
                                ids=[i for i, _ in rows])
    bm25.replace_source(source, chunks(source, rows))


def chroma_ids(idx) -> set[str]:
    return set(idx.collection.get()["ids"])


def test_add_replace_prune_stay_in_step_with_chroma(settings):
    with open_index(settings, write=True) as idx:
        bm25 = BM25Index(bm25_dir(settings))
        write_page(idx, bm25, "https://x/a", PAGE_A)
        write_page(idx, bm25, "https://x/b", PAGE_B)
        bm25.save()
        assert set(BM25Index(bm25_dir(settings)).ids()) == chroma_ids(idx) == {"a#0", "a#1", "b#0", "b#1"}
        assert not bm25.is_stale(idx.collection)

        # The page changed: one chunk fewer, new text.
        write_page(idx, bm25, "https://x/a", [("a#0", "Wind turbines generate power from moving air.")])
        # The page disappeared: pruned.
        write_page(idx, bm25, "https://x/b", [])
        bm25.save()

        reader = BM25Index(bm25_dir(settings))
        assert set(reader.ids()) == chroma_ids(idx) == {"a#0"}
        assert reader.search("wind turbine", 5)[0][0] == "a#0"
        assert reader.search("sunlight solar", 5) == []  # the old text is gone
        assert reader.search("sourdough yeast", 5) == []


def test_search_ranks_by_bm25_with_stemming_and_stopwords(tmp_path):
    ix = BM25Index(tmp_path / "bm25")
    ix.add(chunks("a", PAGE_A) + chunks("b", PAGE_B))
    ix.save()
    hits = ix.search("How do the bakers feed starters?", 4)
    assert hits[0][0] == "b#1"  # "starters" -> "starter", "feed" matches; stopwords ignored
    assert all(s > 0 for _, s in hits)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert ix.search("the of and", 4) == []  # only stopwords: no match rather than noise
    assert ix.search("zzzunknownword", 4) == []
    assert len(ix.search("current", 100)) == 1  # k larger than the index is fine


def test_a_reader_sees_a_newer_save(tmp_path):
    writer, reader = BM25Index(tmp_path / "bm25"), BM25Index(tmp_path / "bm25")
    writer.add(chunks("a", PAGE_A))
    writer.save()
    assert reader.search("sourdough", 3) == []
    writer.add(chunks("b", PAGE_B))
    writer.save()
    assert reader.search("sourdough", 3)[0][0] == "b#0"
    # Only the live version stays on disk.
    versions = [p for p in (tmp_path / "bm25").iterdir() if p.is_dir()]
    assert len(versions) == 1


def test_a_save_killed_midway_leaves_the_previous_version_live(tmp_path, monkeypatch):
    ix = BM25Index(tmp_path / "bm25")
    ix.add(chunks("a", PAGE_A))
    ix.save()
    before = ix.current_version()

    ix.add(chunks("b", PAGE_B))
    import bm25s

    def killed(self, *a, **kw):
        raise KeyboardInterrupt("killed while writing the matrices")

    monkeypatch.setattr(bm25s.BM25, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        ix.save()
    monkeypatch.undo()

    reader = BM25Index(tmp_path / "bm25")
    assert reader.current_version() == before
    assert set(reader.ids()) == {"a#0", "a#1"}
    assert reader.search("solar", 3)[0][0] == "a#0"
    assert not [p for p in (tmp_path / "bm25").iterdir() if p.name.startswith(".tmp-")]


def test_rebuild_from_chroma_when_missing_or_stale(settings):
    with open_index(settings, write=True) as idx:
        idx.store.add_documents(
            [Document(t, metadata={C.SOURCE: "https://x/a"}) for _, t in PAGE_A], ids=[i for i, _ in PAGE_A])
        bm25 = BM25Index(bm25_dir(settings))
        assert bm25.is_stale(idx.collection)  # missing
        assert bm25.rebuild_from_chroma(idx.collection, batch_size=1) == 2
        assert not bm25.is_stale(idx.collection)

        idx.store.add_documents([Document(PAGE_B[0][1], metadata={C.SOURCE: "https://x/b"})], ids=["b#0"])
        assert bm25.is_stale(idx.collection)  # Chroma moved on without it
        bm25.rebuild_from_chroma(idx.collection)
        assert set(bm25.ids()) == chroma_ids(idx)
        # Sources come from Chroma's metadata, so a later prune by source works.
        assert bm25.delete_source("https://x/b") == 1


def test_an_unreadable_index_names_the_fix(tmp_path):
    ix = BM25Index(tmp_path / "bm25")
    ix.add(chunks("a", PAGE_A))
    ix.save()
    (tmp_path / "bm25" / ix.current_version() / "ids.json").write_text("{not json")
    with pytest.raises(BM25IndexError, match="delete"):
        BM25Index(tmp_path / "bm25").search("solar", 3)


def test_manifest_records_the_tokenizer(tmp_path):
    ix = BM25Index(tmp_path / "bm25")
    ix.add(chunks("a", PAGE_A))
    ix.save()
    m = json.loads((tmp_path / "bm25" / ix.current_version() / "manifest.json").read_text())
    assert m["count"] == 2 and m["tokenizer"]["stemmer"] == "english"


def test_ingest_keeps_bm25_in_step_through_update_prune_and_a_killed_run(settings, site):
    from opencite.ingest.pipeline import SourceSet, run_ingest
    from tests.ingest.pages import article, blog

    urls = [site.put(path, html) for path, html in blog(3).items()]

    def in_step():
        with open_index(settings) as idx:
            ids = chroma_ids(idx)
        assert ids and set(BM25Index(bm25_dir(settings)).ids()) == ids

    run_ingest(settings, SourceSet(urls))
    in_step()
    site.put("/post-1", article("Post 1", {"New part": "Completely rewritten text about quokkas."}))
    run_ingest(settings, SourceSet(urls))
    in_step()
    assert BM25Index(bm25_dir(settings)).search("quokkas", 3)
    run_ingest(settings, SourceSet(urls[:2]), prune=True)
    in_step()

    # A run killed after Chroma was written but before the BM25 save: the next run repairs it.
    import opencite.ingest.bm25 as bm25_module

    def killed(self):
        raise KeyboardInterrupt("killed before the BM25 save")

    site.put("/post-0", article("Post 0", {"Other": "Wombats dig burrows."}))
    original = bm25_module.BM25Keeper.finish
    bm25_module.BM25Keeper.finish = killed
    try:
        with pytest.raises(KeyboardInterrupt):
            run_ingest(settings, SourceSet(urls[:2]))
    finally:
        bm25_module.BM25Keeper.finish = original
    assert not BM25Index(bm25_dir(settings)).search("wombats", 3)  # behind Chroma
    run_ingest(settings, SourceSet(urls[:2]))
    in_step()
    assert BM25Index(bm25_dir(settings)).search("wombats", 3)
