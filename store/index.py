"""The index: embedder + Chroma collection + record manager, opened one way for everyone.

`ingest` writes through `open_index(settings, write=True)`; the app and eval read through
`open_index(settings)`. The collection records which embedding model (and dimension) built
it, and opening it with another model is refused rather than silently mixing vector spaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import chromadb
from chromadb.errors import NotFoundError
from filelock import FileLock, Timeout
from langchain_chroma import Chroma
from langchain_huggingface import HuggingFaceEmbeddings
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from opencite.store import constants as C
from opencite.store.errors import IndexError_
from opencite.store.embeddings import LazyEmbeddings, embedding_dimension
from opencite.store.embedder_choice import resolve_embedder
from opencite.store.records import RecordManager
from opencite.settings import Settings


class ModelMismatchError(IndexError_):
    pass


class IndexBusyError(IndexError_):
    pass


class ChromaUnreachableError(IndexError_):
    pass


@dataclass
class OpenIndex:
    settings: Settings
    embeddings: HuggingFaceEmbeddings | LazyEmbeddings
    client: chromadb.ClientAPI
    store: Chroma
    record_manager: RecordManager | None
    model: str
    dimension: int
    _lock: FileLock | None = None

    @property
    def collection(self):
        return self.store._collection

    def count(self) -> int:
        return self.collection.count()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> "OpenIndex":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def record_namespace(settings: Settings) -> str:
    """The record manager's namespace of the configured collection (the registry uses it too)."""
    return f"chroma/{settings.chroma.collection}"


@lru_cache(maxsize=8)
def _records_engine(url: str):
    return create_engine(url)


def records_marker(settings: Settings) -> list | None:
    """(count, latest write) of the collection's records in the record manager: moves with every
    page an ingest stores or deletes, on whichever host it ran. None while there are no records."""
    url = make_url(settings.record_manager_url)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).exists():
        return None  # connecting would create the file
    try:
        with _records_engine(settings.record_manager_url).connect() as conn:
            count, latest = conn.execute(
                text("SELECT COUNT(*), MAX(updated_at) FROM upsertion_record WHERE namespace = :ns"),
                {"ns": record_namespace(settings)},
            ).one()
    except (OperationalError, ProgrammingError):  # no records table yet (nothing ingested)
        return None
    return [count, latest]


def chroma_client(settings: Settings) -> chromadb.ClientAPI:
    chroma_settings = chromadb.config.Settings(anonymized_telemetry=False, allow_reset=False)
    if settings.chroma.url:
        url = urlparse(settings.chroma.url)
        try:
            client = chromadb.HttpClient(
                host=url.hostname or "localhost",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
        except Exception as exc:
            raise ChromaUnreachableError(
                f"Chroma server at {settings.chroma.url} did not answer ({exc}). Fix: start it "
                f"(`chroma run --path data/index/chroma --port {url.port or 8000}`) or unset "
                "OPENCITE_CHROMA__URL to use the embedded index."
            ) from exc
        return client
    path = settings.chroma_path
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


def writer_lock(settings: Settings) -> FileLock:
    """One writer per index. Embedded Chroma is single-process; a server index shares the
    record manager, so writers serialise on it too."""
    settings.index_dir.mkdir(parents=True, exist_ok=True)
    name = f"{settings.chroma.collection}.write.lock"
    return FileLock(str(settings.index_dir / name))


def open_index(
    settings: Settings,
    *,
    write: bool = False,
    reindex: bool = False,
    embeddings: HuggingFaceEmbeddings | None = None,
) -> OpenIndex:
    """Open (creating when writing) the configured collection.

    write=True takes the writer lock (refusing clearly if another ingest holds it) and opens
    the record manager. reindex=True drops the collection and its records first.
    """
    lock = None
    if write:
        lock = writer_lock(settings)
        try:
            lock.acquire(timeout=0)
        except Timeout as exc:
            raise IndexBusyError(
                f"Another ingest is writing to the index {settings.chroma.collection!r} "
                f"(lock {lock.lock_file}). Wait for it to finish, then run again."
            ) from exc
    try:
        return _open(settings, write=write, reindex=reindex, embeddings=embeddings, lock=lock)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _open(settings, *, write, reindex, embeddings, lock) -> OpenIndex:
    embeddings = embeddings or LazyEmbeddings(settings.embedding)
    model = resolve_embedder(settings.embedding).model
    client = chroma_client(settings)
    name = settings.chroma.collection

    if reindex:
        if not write:
            raise ValueError("reindex needs write=True")
        _drop(client, settings)

    existing = find_collection(client, name)
    meta = (existing.metadata or {}) if existing is not None else {}
    built_with, built_dim = meta.get(C.COLLECTION_MODEL), meta.get(C.COLLECTION_DIM)
    if built_with is not None and built_with != model:
        raise ModelMismatchError(
            f"The index {name!r} was built with the embedding model {built_with!r} "
            f"({built_dim} dims), but {model!r} is configured. Either set "
            f"OPENCITE_EMBEDDING__MODEL={built_with} or rebuild the index with "
            f"`opencite ingest --reindex ...` (re-embeds every source)."
        )
    # The collection records its model's dimension: only a new collection needs the model loaded
    # to learn it, so runs that embed nothing never load the model.
    dim = built_dim if built_with is not None and built_dim else embedding_dimension(embeddings)

    store = Chroma(
        collection_name=name,
        embedding_function=embeddings,
        client=client,
        collection_metadata={
            "hnsw:space": "cosine",
            C.COLLECTION_MODEL: model,
            C.COLLECTION_DIM: dim,
            C.COLLECTION_SCHEMA: C.SCHEMA_VERSION,
        },
        create_collection_if_not_exists=True,
    )
    record_manager = None
    if write:
        settings.index_dir.mkdir(parents=True, exist_ok=True)
        record_manager = RecordManager(
            namespace=record_namespace(settings), db_url=settings.record_manager_url
        )
        record_manager.create_schema()
    return OpenIndex(settings, embeddings, client, store, record_manager, model, dim, lock)


def drop_index(settings: Settings) -> None:
    """Delete the configured collection and its record-manager keys (the caller holds the writer lock)."""
    settings.index_dir.mkdir(parents=True, exist_ok=True)  # the records database lives there
    _drop(chroma_client(settings), settings)


def find_collection(client, name: str):
    """The collection `name`, or None when it does not exist. Any other failure (a broken store,
    an unreachable server) raises: it must never look like an empty index to be ingested again."""
    try:
        return client.get_collection(name)
    except NotFoundError:
        return None


def _drop(client, settings: Settings) -> None:
    name = settings.chroma.collection
    if find_collection(client, name) is not None:
        client.delete_collection(name)
    records = RecordManager(namespace=record_namespace(settings), db_url=settings.record_manager_url)
    records.create_schema()
    keys = records.list_keys()
    if keys:
        records.delete_keys(keys)

