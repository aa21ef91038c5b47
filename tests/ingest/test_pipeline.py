import pytest

from opencite.store import constants as C
from opencite.ingest.documents import Outcome
from opencite.store.index import open_index
from opencite.ingest.pages import add_page_listener, remove_page_listener
from opencite.ingest.pipeline import SourceSet, registry_for, run_ingest
from tests.ingest.pages import article, blog


def snapshot(settings) -> dict[str, tuple]:
    """id -> (source, chunk_index, text) of every chunk in the collection."""
    idx = open_index(settings)
    got = idx.collection.get(include=["metadatas", "documents"])
    return {i: (m[C.SOURCE], m[C.CHUNK_INDEX], d) for i, m, d in zip(got["ids"], got["metadatas"], got["documents"])}


def outcomes(report) -> dict[str, str]:
    return {s.requested_url.rsplit("/", 1)[-1]: s.outcome.value for s in report.sources}


# The server variant starts a `chroma run` server: the slow tier, like every chroma_server user.
@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.slow)])
def backend(request, settings):
    if request.param == "server":
        settings.chroma.url = request.getfixturevalue("chroma_server")
        settings.chroma.collection = f"pipeline_{id(settings)}"
    return settings


def test_incremental_lifecycle(backend, site):
    settings = backend
    urls = [site.put(path, html) for path, html in blog(3, words=80).items()]
    changes = []
    hook = lambda source, chunks: changes.append((source, len(chunks)))  # noqa: E731

    first = run_ingest(settings, SourceSet(urls), listeners=[hook])
    assert outcomes(first) == {"post-0": "new", "post-1": "new", "post-2": "new"}
    before = snapshot(settings)
    assert len(before) == first.embedded > 3
    assert {len(set(s for s, _, _ in before.values()))} == {3}
    assert sorted(s for s, _ in changes) == sorted(urls)

    # Unchanged: conditional requests, 304s, nothing embedded.
    again = run_ingest(settings, SourceSet(urls))
    assert set(outcomes(again).values()) == {"unchanged"} and again.embedded == 0
    assert site.requests_for("/post-0")[-1].get("If-None-Match")
    assert snapshot(settings) == before

    # One page changes: exactly its chunks are replaced, the others keep their ids.
    site.put("/post-1", article("Post 1", {"New part": "Completely rewritten text about gpus."}))
    changed = run_ingest(settings, SourceSet(urls))
    assert outcomes(changed) == {"post-0": "unchanged", "post-1": "updated", "post-2": "unchanged"}
    after = snapshot(settings)
    others = {i: v for i, v in before.items() if v[0] != urls[1]}
    assert {i: v for i, v in after.items() if v[0] != urls[1]} == others
    page1 = [v for v in after.values() if v[0] == urls[1]]
    assert page1 and all("rewritten" in t or "Post 1" in t for _, _, t in page1)
    assert changed.deleted == sum(1 for v in before.values() if v[0] == urls[1])

    # A failing page that was indexed keeps its chunks and is reported failed.
    site.put("/post-2", "<h1>oops</h1>", status=500)
    failed = run_ingest(settings, SourceSet(urls))
    assert outcomes(failed)["post-2"] == "failed" and "HTTP 500" in failed.failed[0].reason
    assert {i: v for i, v in snapshot(settings).items() if v[0] == urls[2]} == \
        {i: v for i, v in before.items() if v[0] == urls[2]}

    # --prune: a page that left the source set loses its chunks and its registry row.
    pruned = run_ingest(settings, SourceSet(urls[:2]), prune=True)
    assert outcomes(pruned)["post-2"] == "pruned"
    assert all(v[0] != urls[2] for v in snapshot(settings).values())
    with open_index(settings, write=True) as idx:
        assert [r.url for r in registry_for(idx).all()] == sorted(urls[:2])


def test_content_hash_skips_unchanged_local_files(settings, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nAlpha text about llamas.\n", encoding="utf-8")
    (folder / "b.md").write_text("# B\n\nBeta text about serving.\n", encoding="utf-8")
    first = run_ingest(settings, SourceSet([str(folder)]))
    assert [s.outcome for s in first.sources] == [Outcome.NEW, Outcome.NEW]
    (folder / "a.md").touch()  # new mtime, same text: the content hash says unchanged
    again = run_ingest(settings, SourceSet([str(folder)]))
    assert [s.outcome for s in again.sources] == [Outcome.UNCHANGED, Outcome.UNCHANGED]
    assert again.embedded == 0


def test_a_group_of_pages_is_embedded_in_one_call(settings, tmp_path, monkeypatch):
    """sentence-transformers sorts one call's texts by length: one call per group, less padding."""
    from opencite.store.embeddings import PrecisionHuggingFaceEmbeddings

    calls: list[int] = []
    original = PrecisionHuggingFaceEmbeddings.embed_documents
    monkeypatch.setattr(PrecisionHuggingFaceEmbeddings, "embed_documents",
                        lambda self, texts: calls.append(len(texts)) or original(self, texts))
    folder = tmp_path / "docs"
    folder.mkdir()
    for n in range(6):
        sections = "".join(f"## Part {p}\n\n" + f"Page {n} part {p} says something. " * 8 + "\n\n" for p in range(4))
        (folder / f"p{n}.md").write_text(f"# Page {n}\n\n{sections}", encoding="utf-8")
    report = run_ingest(settings, SourceSet([str(folder)]))
    assert report.embedded >= 6 * 4  # several chunks per page...
    assert calls == [report.embedded]  # ...all in one embedding call


def test_global_listener_and_bad_pages_store_nothing(settings, site):
    good = site.put("/good", article("Good", {"Part": "Fine text."}))
    empty = site.put("/empty", "<html><body><nav>menu</nav></body></html>")
    missing = site.url("/missing")
    seen = []
    listener = lambda source, chunks: seen.append(source)  # noqa: E731
    add_page_listener(listener)
    try:
        report = run_ingest(settings, SourceSet([good, empty, missing]))
    finally:
        remove_page_listener(listener)
    assert outcomes(report) == {"good": "new", "empty": "failed", "missing": "failed"}
    assert seen == [good]
    assert {v[0] for v in snapshot(settings).values()} == {good}
    assert "404" in next(s.reason for s in report.sources if s.requested_url == missing)
