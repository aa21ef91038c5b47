"""The BM25 index beside Chroma (tantivy): add / replace / delete per page in step with a real
Chroma collection, a write killed by SIGKILL then synced equals a clean build, readers in other
processes during writes, a missing or unreadable index."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from langchain_core.documents import Document

from opencite.store import constants as C
from opencite.store.bm25 import BM25Index, BM25IndexError, Chunk, bm25_path, delete_bm25_index
from opencite.store import bm25_keep
from opencite.store.bm25_keep import in_step_index
from opencite.store.index import open_index

REPO = Path(__file__).resolve().parents[2]
PAGE_A = [("a#0", "Solar panels convert sunlight into electricity."),
          ("a#1", "Inverters turn direct current into alternating current.")]
PAGE_B = [("b#0", "Sourdough bread rises with wild yeast and lactobacilli."),
          ("b#1", "Bakers feed the starter with flour and water daily.")]
QUERIES = ["solar sunlight", "wind turbine", "sourdough yeast", "current", "bakers feed starters", "page 7 words"]


def chunks(source, rows):
    return [Chunk(i, source, text) for i, text in rows]


def write_page(idx, bm25: BM25Index, source, rows):
    """What ingest does for one page: replace its chunks in Chroma, then in BM25 (the page hook)."""
    old = idx.collection.get(where={C.SOURCE: source})["ids"]
    if old:
        idx.store.delete(ids=old)
    if rows:
        idx.store.add_documents([Document(t, metadata={C.SOURCE: source}) for _, t in rows],
                                ids=[i for i, _ in rows])
    bm25.replace_source(source, chunks(source, rows))


def chroma_ids(idx) -> set[str]:
    return set(idx.collection.get()["ids"])


def add_to_chroma(idx, rows, source):
    """Chunks straight into the collection with fixed vectors (sync reads text and ids only)."""
    idx.collection.add(ids=[i for i, _ in rows], documents=[t for _, t in rows],
                       embeddings=[[1.0] + [0.0] * (idx.dimension - 1)] * len(rows),
                       metadatas=[{C.SOURCE: source}] * len(rows))


def test_add_replace_delete_per_page_stay_in_step_with_chroma(settings):
    with open_index(settings, write=True) as idx:
        bm25 = BM25Index(bm25_path(settings))
        write_page(idx, bm25, "https://x/a", PAGE_A)
        write_page(idx, bm25, "https://x/b", PAGE_B)
        assert set(BM25Index(bm25_path(settings)).ids()) == chroma_ids(idx) == {"a#0", "a#1", "b#0", "b#1"}

        # The page changed: one chunk fewer, new text. Then a page disappeared: deleted.
        write_page(idx, bm25, "https://x/a", [("a#0", "Wind turbines generate power from moving air.")])
        write_page(idx, bm25, "https://x/b", [])

        reader = BM25Index(bm25_path(settings))  # another connection sees every committed page at once
        assert set(reader.ids()) == chroma_ids(idx) == {"a#0"}
        assert reader.search("wind turbine", 5)[0][0] == "a#0"
        assert reader.search("sunlight solar", 5) == []  # the old text is gone
        assert reader.search("sourdough yeast", 5) == []
        assert bm25.sync(idx.collection) == {"added": 0, "removed": 0}


def test_search_ranks_by_bm25_with_stemming_and_stopwords(tmp_path):
    ix = BM25Index(tmp_path / "bm25.tantivy")
    ix.add(chunks("a", PAGE_A) + chunks("b", PAGE_B) + [Chunk(f"f#{n}", "f", f"filler text number {n}") for n in range(8)])
    hits = ix.search("How do the bakers feed starters?", 4)
    assert hits[0][0] == "b#1"  # "starters" -> "starter", "feed" matches; stopwords ignored
    assert all(s > 0 for _, s in hits)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert ix.search("the of and", 4) == []  # only stopwords: no match rather than noise
    assert ix.search("zzzunknownword", 4) == []
    assert ix.search('quote " and OR NEAR( * punctuation', 4) == []  # query syntax is just text
    assert len(ix.search("current", 100)) == 1  # k larger than the index is fine


def test_sync_writes_only_the_difference_and_builds_a_missing_index(settings):
    with open_index(settings, write=True) as idx:
        add_to_chroma(idx, PAGE_A, "https://x/a")
        path = bm25_path(settings)
        assert in_step_index(idx.collection, settings).search("solar", 3)[0][0] == "a#0"  # built: was missing
        add_to_chroma(idx, PAGE_B, "https://x/b")
        idx.collection.delete(ids=["a#1"])
        assert BM25Index(path).sync(idx.collection) == {"added": 2, "removed": 1}
        # Sources come from Chroma's metadata, so a later delete by page works.
        assert BM25Index(path).delete_source("https://x/b") == 2

        # Deleted under a running reader: the next search rebuilds it from Chroma.
        delete_bm25_index(settings)
        assert not path.exists()
        ix = in_step_index(idx.collection, settings)
        assert path.exists() and set(ix.ids()) == chroma_ids(idx) == {"a#0", "b#0", "b#1"}


def test_a_reader_follows_chunks_written_to_chroma_by_other_means(settings):
    with open_index(settings, write=True) as idx:
        add_to_chroma(idx, PAGE_A, "https://x/a")
        assert in_step_index(idx.collection, settings).search("sourdough", 3) == []
        add_to_chroma(idx, PAGE_B, "https://x/b")
        deadline = time.monotonic() + 10
        while not in_step_index(idx.collection, settings).search("sourdough", 3):
            assert time.monotonic() < deadline, "the reader never caught up with Chroma"
            time.sleep(0.05)


def test_a_reader_never_waits_for_the_writer_lock_and_catches_up_once_it_is_free(settings):
    with open_index(settings, write=True) as idx:
        add_to_chroma(idx, PAGE_A, "https://x/a")
        assert in_step_index(idx.collection, settings).search("solar", 3)
        # An ingest holds the writer (tantivy's lock refuses a second writer in any process).
        ingest = BM25Index(bm25_path(settings), commit_interval=3600, hold_writer=True)
        ingest.replace_source("https://x/a", chunks("https://x/a", PAGE_A))
        add_to_chroma(idx, PAGE_B, "https://x/b")
        time.sleep(bm25_keep.MAX_CHECK_INTERVAL)
        started = time.monotonic()
        assert in_step_index(idx.collection, settings).search("sourdough", 3) == []  # what is committed
        assert time.monotonic() - started < 5  # not the writer's 600 s wait
        ingest.close()
        time.sleep(bm25_keep.MAX_CHECK_INTERVAL)
        assert in_step_index(idx.collection, settings).search("sourdough", 3)[0][0] == "b#0"


KILLED_WRITER = """
import sys, time
from opencite.store.bm25 import BM25Index, Chunk

class Slow(Chunk):
    # Reading this chunk's text (while the writer lock is held, before any commit) announces it and stalls.
    @property
    def text(self):
        print("MIDWAY", flush=True)
        time.sleep(60)
    @text.setter
    def text(self, value):
        pass

ix = BM25Index(sys.argv[1])
new = [Chunk(f"p7#{n}", "https://x/p7", f"page 7 new words {n}") for n in range(50)]
ix.replace_source("https://x/p7", new[:25] + [Slow("p7#slow", "https://x/p7", "")] + new[25:])
"""


@pytest.mark.slow
def test_a_write_killed_mid_transaction_then_synced_equals_a_clean_build(settings, tmp_path):
    with open_index(settings, write=True) as idx:
        add_to_chroma(idx, PAGE_A, "https://x/a")
        add_to_chroma(idx, [(f"p7#old{n}", f"page 7 old words {n}") for n in range(5)], "https://x/p7")
        path = bm25_path(settings)
        BM25Index(path).sync(idx.collection)
        # Chroma moves on (the new page 7), then the BM25 write of that page is killed midway.
        idx.collection.delete(where={C.SOURCE: "https://x/p7"})
        add_to_chroma(idx, [(f"p7#{n}", f"page 7 new words {n}") for n in range(50)], "https://x/p7")
        proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], cwd=REPO, stdout=subprocess.PIPE,
                                text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert proc.stdout.readline().strip() == "MIDWAY"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

        killed = BM25Index(path)
        assert {i for i in killed.ids() if i.startswith("p7")} == {f"p7#old{n}" for n in range(5)}  # rolled back
        assert killed.sync(idx.collection) == {"added": 50, "removed": 5}
        clean = BM25Index(tmp_path / "clean.tantivy")
        clean.sync(idx.collection)
        assert sorted(killed.ids()) == sorted(clean.ids()) == sorted(chroma_ids(idx))
        for q in QUERIES:
            # Every match (k above the 57 chunks), each scored alike: the scores differ only by the
            # five deleted chunks, which (as in Lucene) count in the term statistics until their
            # segment is merged away.
            got, want = dict(killed.search(q, 100)), dict(clean.search(q, 100))
            assert got.keys() == want.keys(), q
            assert got == pytest.approx(want, rel=0.15), q


READER = """
import sys, time
from opencite.store.bm25 import BM25Index
ix, versions, seen = BM25Index(sys.argv[1]), ({"p#a0", "p#a1", "p#a2"}, {"p#b0", "p#b1"}), set()
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    got = {i for i, _ in ix.search("alpha beta", 10)}
    assert got in versions, got  # a page's chunks change together, never half
    seen.add(min(got))
print(len(seen), flush=True)
"""


@pytest.mark.slow
def test_two_processes_read_while_one_writes(tmp_path):
    path = tmp_path / "bm25.tantivy"
    writer = BM25Index(path)
    version_a = [Chunk(f"p#a{n}", "p", f"alpha text {n}") for n in range(3)]
    version_b = [Chunk(f"p#b{n}", "p", f"beta text {n}") for n in range(2)]
    writer.replace_source("p", version_a)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    readers = [subprocess.Popen([sys.executable, "-c", READER, str(path), "2"], cwd=REPO, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    deadline = time.monotonic() + 30
    while any(r.poll() is None for r in readers) and time.monotonic() < deadline:
        writer.replace_source("p", version_b)
        writer.replace_source("p", version_a)
        time.sleep(0.005)  # leave the readers some of the two cores
    for r in readers:
        out, err = r.communicate(timeout=30)
        assert r.returncode == 0, err[-2000:]
        assert out.strip() == "2", "a reader never saw both versions of the page"


def test_an_unreadable_index_names_the_fix(tmp_path):
    path = tmp_path / "bm25.tantivy"
    path.mkdir()
    (path / "meta.json").write_text("this is not an index" * 100)
    with pytest.raises(BM25IndexError, match="delete"):
        BM25Index(path)


@pytest.mark.slow  # four ingest runs end to end; the per-page and sync tests above stay fast
def test_ingest_keeps_bm25_in_step_through_update_prune_and_a_killed_run(settings, site):
    from opencite.ingest.pipeline import SourceSet, run_ingest
    from tests.ingest.pages import article, blog

    urls = [site.put(path, html) for path, html in blog(3).items()]

    def in_step():
        with open_index(settings) as idx:
            ids = chroma_ids(idx)
        assert ids and set(BM25Index(bm25_path(settings)).ids()) == ids

    run_ingest(settings, SourceSet(urls))
    in_step()
    site.put("/post-1", article("Post 1", {"New part": "Completely rewritten text about quokkas."}))
    run_ingest(settings, SourceSet(urls))
    in_step()
    assert BM25Index(bm25_path(settings)).search("quokkas", 3)
    run_ingest(settings, SourceSet(urls[:2]), prune=True)
    in_step()

    # A run killed after Chroma was written but before the page hook ran: the next run repairs it.
    import opencite.store.bm25_keep as bm25_module

    def killed(self, source, chunks):
        raise KeyboardInterrupt("killed before the BM25 write")

    site.put("/post-0", article("Post 0", {"Other": "Wombats dig burrows."}))
    original = bm25_module.BM25Keeper.__call__
    bm25_module.BM25Keeper.__call__ = killed
    try:
        with pytest.raises(KeyboardInterrupt):
            run_ingest(settings, SourceSet(urls[:2]))
    finally:
        bm25_module.BM25Keeper.__call__ = original
    assert not BM25Index(bm25_path(settings)).search("wombats", 3)  # behind Chroma
    run_ingest(settings, SourceSet(urls[:2]))
    in_step()
    assert BM25Index(bm25_path(settings)).search("wombats", 3)
