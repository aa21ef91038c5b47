import pytest
from langchain_core.documents import Document

from opencite.store import constants as C
from opencite.store.embedder_choice import resolve_embedder
from opencite.store.index import ModelMismatchError, IndexBusyError, chroma_client, find_collection, open_index


def test_open_creates_collection_recording_model(settings):
    with open_index(settings, write=True) as idx:
        idx.store.add_documents([Document("hello world", metadata={C.SOURCE: "u"})], ids=["a"])
        assert idx.collection.metadata[C.COLLECTION_MODEL] == resolve_embedder(settings.embedding).model
        assert idx.collection.metadata[C.COLLECTION_DIM] == 384
    reader = open_index(settings)
    assert reader.count() == 1
    assert reader.record_manager is None


def test_other_model_is_refused_with_rebuild_hint(settings):
    open_index(settings, write=True).close()
    other = settings.model_copy(deep=True)
    other.embedding.model = "/some/other-model"
    # The folder does not exist: the refusal must come from the collection's record, before
    # any model is loaded.
    with pytest.raises(ModelMismatchError) as err:
        open_index(other)
    assert resolve_embedder(settings.embedding).model in str(err.value)
    assert "--reindex" in str(err.value)


def test_second_writer_is_refused(settings):
    first = open_index(settings, write=True)
    try:
        with pytest.raises(IndexBusyError, match="Another ingest"):
            open_index(settings, write=True)
    finally:
        first.close()
    open_index(settings, write=True).close()


def test_chroma_server(settings, chroma_server):
    settings.chroma.url = chroma_server
    settings.chroma.collection = "server_test"
    with open_index(settings, write=True, reindex=True) as idx:
        idx.store.add_documents([Document("served text", metadata={C.SOURCE: "u"})], ids=["x"])
    reader = open_index(settings)
    assert reader.count() == 1
    hits = reader.store.similarity_search("served", k=1)
    assert hits[0].page_content == "served text"


def test_existing_collection_opens_without_loading_the_model(settings):
    with open_index(settings, write=True) as idx:
        idx.store.add_documents([Document("hello world", metadata={C.SOURCE: "u"})], ids=["a"])
    reader = open_index(settings)
    assert reader.dimension == 384
    assert not reader.embeddings.is_loaded  # listing and counting need no model
    assert reader.count() == 1
    assert reader.store.similarity_search("hello", k=1)[0].page_content == "hello world"
    assert reader.embeddings.is_loaded


def test_find_collection_is_none_only_when_missing(settings):
    client = chroma_client(settings)
    assert find_collection(client, "never-created") is None

    class BrokenStoreDouble:  # a store that fails for another reason than "no such collection"
        def get_collection(self, name):
            raise RuntimeError("database disk image is malformed")

    with pytest.raises(RuntimeError, match="malformed"):
        find_collection(BrokenStoreDouble(), "opencite")
